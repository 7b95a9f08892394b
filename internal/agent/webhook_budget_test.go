package agent_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
)

// heldDelivery is a webhook delivery whose body the test sends piece by piece.
type heldDelivery struct {
	body   *io.PipeWriter
	answer chan int
}

// startDelivery sends a push delivery with a wrong signature whose body arrives through a pipe:
// with a Content-Length of size, or chunked when size is -1.
func startDelivery(t *testing.T, url string, size int64) *heldDelivery {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest("POST", url, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
	d := &heldDelivery{body: pw, answer: make(chan int, 1)}
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			d.answer <- 0
			return
		}
		resp.Body.Close()
		d.answer <- resp.StatusCode
	}()
	t.Cleanup(func() { pw.CloseWithError(errors.New("test over")) })
	return d
}

// waitInUse waits until the agent's webhook budget holds n bytes.
func waitInUse(t *testing.T, ta *agenttest.Agent, n int64) {
	t.Helper()
	inUse := func() int64 { n, _ := ta.WebhookBodies(); return n }
	for deadline := time.Now().Add(5 * time.Second); inUse() != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the budget holds %d bytes, want %d", inUse(), n)
		}
	}
}

// postRaw posts a delivery with a wrong signature and returns the response and its body.
func postRaw(t *testing.T, url string, body []byte) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp, strings.TrimSpace(string(answer))
}

// TestWebhookBodyBudget holds one big body half sent: another big one waits for room and gets 503
// with Retry-After, a small signed push still gets in, and once the big body is answered its room
// serves the next one.
func TestWebhookBodyBudget(t *testing.T) {
	// Not parallel: it times how long a body waits for room.
	cfg := agenttest.Config(t)
	cfg.Webhook.MaxInflightBytes = 256 << 10
	ta := agenttest.StartWith(t, cfg, agenttest.Options{APIOnly: true})
	ta.SetWebhookBodyWait(300 * time.Millisecond)
	p := ta.AddProject(t, remoteProject("site", "master"))
	url := ta.URL + api.PathWebhookPrefix + strconv.FormatInt(p.ID, 10)
	const big = 200 << 10

	first := startDelivery(t, url, big)
	if _, err := first.body.Write(make([]byte, big/2)); err != nil {
		t.Fatal(err)
	}
	waitInUse(t, ta, big)

	started := time.Now()
	resp, answer := postRaw(t, url, make([]byte, big))
	if waited := time.Since(started); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" ||
		answer != `{"detail":"Busy, retry later"}` || waited < 300*time.Millisecond || waited > 4*time.Second {
		t.Fatalf("second big body: %d Retry-After %q %s after %v", resp.StatusCode, resp.Header.Get("Retry-After"), answer, waited)
	}
	chunked := startDelivery(t, url, -1)
	go func() { _, _ = chunked.body.Write(make([]byte, big)) }()
	if status := <-chunked.answer; status != http.StatusServiceUnavailable {
		t.Fatalf("chunked big body: %d, want 503", status)
	}
	if status, got := ta.Deliver(t, strconv.FormatInt(p.ID, 10), agenttest.Delivery{Event: "push", Body: fixture(t, "push.with-new-branch.payload.json"), Secret: p.WebhookSecret}); status != http.StatusOK || got["status"] != "success" {
		t.Fatalf("small signed push beside the held body: %d %v", status, got)
	}
	if resp, answer := postRaw(t, url, make([]byte, 256<<10+1)); resp.StatusCode != http.StatusRequestEntityTooLarge || answer != `{"detail":"Payload too large"}` {
		t.Fatalf("a body larger than the whole budget: %d %s", resp.StatusCode, answer)
	}

	if _, err := first.body.Write(make([]byte, big/2)); err != nil {
		t.Fatal(err)
	}
	first.body.Close()
	if status := <-first.answer; status != http.StatusUnauthorized {
		t.Fatalf("held body, once complete: %d, want 401", status)
	}
	waitInUse(t, ta, 0)
	if resp, _ := postRaw(t, url, make([]byte, big)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("big body after the room was given back: %d, want 401", resp.StatusCode)
	}
}

// TestWebhookSignedPushOvertakesBigBodies fills the budget with two held big bodies, queues a third
// and then a small signed push: when one big body is done, its room goes to the push first, which
// is answered while the third big body still waits.
func TestWebhookSignedPushOvertakesBigBodies(t *testing.T) {
	// Not parallel: it times how soon a waiting push gets in.
	cfg := agenttest.Config(t)
	cfg.Webhook.MaxInflightBytes = 1 << 20
	ta := agenttest.StartWith(t, cfg, agenttest.Options{APIOnly: true})
	p := ta.AddProject(t, remoteProject("site", "master"))
	url := ta.URL + api.PathWebhookPrefix + strconv.FormatInt(p.ID, 10)
	const big = 512 << 10
	waitQueued := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			_, queued := ta.WebhookBodies()
			if queued == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d deliveries wait for room, want %d", queued, n)
			}
		}
	}

	first, second := startDelivery(t, url, big), startDelivery(t, url, big)
	waitInUse(t, ta, 2*big)
	third := startDelivery(t, url, big)
	waitQueued(1)
	pushed := make(chan map[string]any, 1)
	go func() {
		_, got := ta.Deliver(t, strconv.FormatInt(p.ID, 10), agenttest.Delivery{Event: "push", Body: fixture(t, "push.with-new-branch.payload.json"), Secret: p.WebhookSecret})
		pushed <- got
	}()
	waitQueued(2)

	if _, err := first.body.Write(make([]byte, big)); err != nil {
		t.Fatal(err)
	}
	if status := <-first.answer; status != http.StatusUnauthorized {
		t.Fatalf("first big body: %d, want 401", status)
	}
	select {
	case got := <-pushed:
		if got["status"] != "success" {
			t.Fatalf("signed push: %v", got)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("the signed push is still waiting after a big body gave its room back")
	}
	select {
	case status := <-third.answer:
		t.Fatalf("third big body answered %d before the second gave its room back", status)
	default:
	}
	second.body.CloseWithError(errors.New("gone"))
	third.body.CloseWithError(errors.New("gone"))
	<-second.answer
	<-third.answer
	waitInUse(t, ta, 0)
}
