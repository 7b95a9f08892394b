package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestFloodSendsWrongSignatures runs a short flood against a receiver that reads each body and
// refuses it, then answers busy: every body is sent whole, wrongly signed, and counted by answer.
func TestFloodSendsWrongSignatures(t *testing.T) {
	var received atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if n != 1<<16 || r.Header.Get("X-Hub-Signature-256") != "sha256="+strings.Repeat("0", 64) {
			t.Errorf("flood body of %d bytes, signature %q", n, r.Header.Get("X-Hub-Signature-256"))
		}
		if received.Add(1)%2 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	f := startFlood(srv.URL, 3, 1<<16)
	for deadline := time.Now().Add(10 * time.Second); received.Load() < 20; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d flood bodies received in 10s", received.Load())
		}
	}
	f.stop()
	if f.refused.Load() == 0 || f.busy.Load() == 0 || f.failures.Load() != 0 || f.sent.Load() != f.refused.Load()+f.busy.Load()+f.failures.Load() {
		t.Fatalf("sent %d: %d refused, %d busy, %d other", f.sent.Load(), f.refused.Load(), f.busy.Load(), f.failures.Load())
	}
	if got := peakMemory(os.Getpid()); !strings.Contains(got, "peak (VmHWM) ") || strings.Contains(got, "(VmHWM) ,") {
		t.Fatalf("peak memory of this process: %s", got)
	}
}
