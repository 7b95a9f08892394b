package agent_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent"
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

// TestWebhookBodyBudget holds one big body sent but for its last byte: another big one waits for
// room and gets 503 with Retry-After, a small signed push still gets in, and once the big body is
// answered its room serves the next one.
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
	if _, err := first.body.Write(make([]byte, big-1)); err != nil {
		t.Fatal(err)
	}
	waitInUse(t, ta, big) // room is taken as bytes arrive, up to the Content-Length

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

	if _, err := first.body.Write([]byte{0}); err != nil {
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

// TestWebhookSignedPushOvertakesBigBodies fills the budget with two held bodies but for a few KiB,
// then queues a third big body, whose next step of room does not fit, and a small signed push: when
// the smaller held body is done, its room goes to the push, which is answered while the third big
// body still waits.
func TestWebhookSignedPushOvertakesBigBodies(t *testing.T) {
	// Not parallel: it times how soon a waiting push gets in.
	cfg := agenttest.Config(t)
	cfg.Webhook.MaxInflightBytes = 1 << 20
	ta := agenttest.StartWith(t, cfg, agenttest.Options{APIOnly: true})
	p := ta.AddProject(t, remoteProject("site", "master"))
	url := ta.URL + api.PathWebhookPrefix + strconv.FormatInt(p.ID, 10)
	push := fixture(t, "push.with-new-branch.payload.json")
	const small = 40 << 10
	free := int64(len(push)) / 2 // less than the push, less than growStep with small added
	large := 1<<20 - small - free
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

	first, second := startDelivery(t, url, small), startDelivery(t, url, large)
	for _, d := range []struct {
		held *heldDelivery
		size int64
	}{{first, small}, {second, large}} {
		if _, err := d.held.body.Write(make([]byte, d.size-1)); err != nil {
			t.Fatal(err)
		}
	}
	waitInUse(t, ta, small+large)
	third := startDelivery(t, url, 512<<10)
	if _, err := third.body.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	waitQueued(1)
	pushed := make(chan map[string]any, 1)
	go func() {
		_, got := ta.Deliver(t, strconv.FormatInt(p.ID, 10), agenttest.Delivery{Event: "push", Body: push, Secret: p.WebhookSecret})
		pushed <- got
	}()
	waitQueued(2)

	if _, err := first.body.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	if status := <-first.answer; status != http.StatusUnauthorized {
		t.Fatalf("first body: %d, want 401", status)
	}
	select {
	case got := <-pushed:
		if got["status"] != "success" {
			t.Fatalf("signed push: %v", got)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("the signed push is still waiting after a held body gave its room back")
	}
	waitQueued(1)
	second.body.CloseWithError(errors.New("gone"))
	third.body.CloseWithError(errors.New("gone"))
	<-second.answer
	<-third.answer
	waitInUse(t, ta, 0)
}

// openBody starts a webhook delivery on a raw connection to addr that declares a body of
// contentLength bytes and sends only sent of it.
func openBody(t *testing.T, addr, path string, contentLength int64, sent []byte) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nX-GitHub-Event: push\r\nX-Hub-Signature-256: sha256=00\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, addr, contentLength)
	if _, err := conn.Write(append([]byte(head), sent...)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// readAnswer reads the response on conn, failing the test if none comes within a few seconds.
func readAnswer(t *testing.T, conn net.Conn) (int, string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// TestWebhookIdleBodiesHoldNoRoom opens connections that declare 32 MiB bodies, as many as fill the
// default budget, and send nothing or one byte: they hold only room for what arrived, a signed push
// is answered at once, and each of them gets 408 once its body is late.
func TestWebhookIdleBodiesHoldNoRoom(t *testing.T) {
	// Not parallel: it times how soon the push beside idle bodies is answered.
	ta := agenttest.StartWith(t, agenttest.Config(t), agenttest.Options{APIOnly: true})
	ta.SetWebhookBodyReadTimeout(time.Second)
	p := ta.AddProject(t, remoteProject("site", "master"))
	addr, path := strings.TrimPrefix(ta.URL, "http://"), api.PathWebhookPrefix+strconv.FormatInt(p.ID, 10)
	var conns []net.Conn
	for _, sent := range [][]byte{nil, nil, {'{'}, {'{'}} {
		conns = append(conns, openBody(t, addr, path, agent.MaxWebhookBody, sent))
	}
	waitInUse(t, ta, 2*agent.WebhookGrowStep)

	started := time.Now()
	status, got := ta.Deliver(t, strconv.FormatInt(p.ID, 10), agenttest.Delivery{Event: "push", Body: fixture(t, "push.with-new-branch.payload.json"), Secret: p.WebhookSecret})
	if waited := time.Since(started); status != http.StatusOK || got["status"] != "success" || waited > time.Second {
		t.Fatalf("signed push beside idle bodies: %d %v after %v", status, got, waited)
	}
	for i, conn := range conns {
		if status, answer := readAnswer(t, conn); status != http.StatusRequestTimeout || answer != `{"detail":"Request body not received in time"}` {
			t.Errorf("idle body %d: %d %s, want 408", i, status, answer)
		}
	}
	waitInUse(t, ta, 0)
}
