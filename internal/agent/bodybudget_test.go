package agent

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/api"
)

// TestByteBudgetAdmitsSmallestFirst checks the order in which waiters get room: the smallest that
// fits first, so that a small request is not held behind a large one that does not fit yet.
func TestByteBudgetAdmitsSmallestFirst(t *testing.T) {
	b := newByteBudget(100)
	ctx := context.Background()
	if err := b.acquire(ctx, 100); err != nil {
		t.Fatal(err)
	}
	admitted := make(chan string, 3)
	queued := 0
	waitFor := func(name string, n int64) {
		go func() {
			if err := b.acquire(ctx, n); err != nil {
				t.Error(err)
			}
			admitted <- name
		}()
		queued++
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			b.mu.Lock()
			waiting := len(b.waiters)
			b.mu.Unlock()
			if waiting == queued {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never queued", name)
			}
		}
	}
	next := func() string {
		select {
		case name := <-admitted:
			return name
		case <-time.After(5 * time.Second):
			t.Fatalf("nobody admitted, %d of 100 bytes in use", b.inUse())
			return ""
		}
	}
	waitFor("big", 80)
	waitFor("small", 30)
	waitFor("other small", 30)
	b.release(40) // 40 free: one small fits, the oldest; the big one does not
	if got := next(); got != "small" {
		t.Fatalf("admitted %s first, want small", got)
	}
	b.release(30) // the small one's 30 back: the other small fits
	if got := next(); got != "other small" {
		t.Fatalf("admitted %s second, want other small", got)
	}
	select {
	case name := <-admitted:
		t.Fatalf("%s admitted with %d of 100 bytes in use", name, b.inUse())
	case <-time.After(20 * time.Millisecond):
	}
	b.release(60 + 30) // the rest of the first 100 and the other small one's 30: 0 in use
	if got := next(); got != "big" || b.inUse() != 80 {
		t.Fatalf("admitted %s, %d in use", got, b.inUse())
	}

	// A waiter that gives up leaves no trace and takes nothing.
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := b.acquire(short, 30); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire past its deadline: %v", err)
	}
	b.mu.Lock()
	left := len(b.waiters)
	b.mu.Unlock()
	if left != 0 || b.inUse() != 80 {
		t.Fatalf("%d waiters and %d bytes in use after a timeout", left, b.inUse())
	}
}

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
func waitInUse(t *testing.T, ta *apiAgent, n int64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ta.webhookBodies.inUse() != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the budget holds %d bytes, want %d", ta.webhookBodies.inUse(), n)
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
	cfg := testConfig(t)
	cfg.Webhook.MaxInflightBytes = 256 << 10
	ta := startTestAgent(t, cfg)
	ta.webhookBodies.wait = 300 * time.Millisecond
	p := ta.addProject(t, "site", "master")
	url := ta.server.URL + api.PathWebhookPrefix + strconv.FormatInt(p.ID, 10)
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
	if status, got := ta.send(t, strconv.FormatInt(p.ID, 10), delivery{event: "push", body: fixture(t, "push.with-new-branch.payload.json"), secret: p.WebhookSecret}); status != http.StatusOK || got["status"] != "success" {
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
	cfg := testConfig(t)
	cfg.Webhook.MaxInflightBytes = 1 << 20
	ta := startTestAgent(t, cfg)
	p := ta.addProject(t, "site", "master")
	url := ta.server.URL + api.PathWebhookPrefix + strconv.FormatInt(p.ID, 10)
	const big = 512 << 10
	waitQueued := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			ta.webhookBodies.mu.Lock()
			queued := len(ta.webhookBodies.waiters)
			ta.webhookBodies.mu.Unlock()
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
		_, got := ta.send(t, strconv.FormatInt(p.ID, 10), delivery{event: "push", body: fixture(t, "push.with-new-branch.payload.json"), secret: p.WebhookSecret})
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
