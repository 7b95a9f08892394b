package agent

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/miaobu/miaobu/internal/logtest"
)

func TestCertFailuresBackOff(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := newCertFailures(func() time.Time { return now })
	if _, waiting := m.retryAt("blog.example.com"); waiting {
		t.Fatal("a name that never failed waits")
	}
	for _, wait := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute,
		32 * time.Minute, time.Hour, time.Hour} {
		start := now
		if retry := m.record("blog.example.com", "refused"); !retry.Equal(start.Add(wait)) {
			t.Fatalf("after a failure: retry at %s, want %s later", retry, wait)
		}
		if _, waiting := m.retryAt("blog.example.com"); !waiting {
			t.Fatal("a name that just failed does not wait")
		}
		now = now.Add(wait)
		if _, waiting := m.retryAt("blog.example.com"); waiting {
			t.Fatalf("still waiting %s after a failure", wait)
		}
	}
	m.forget("blog.example.com")
	if retry := m.record("blog.example.com", "refused"); !retry.Equal(now.Add(time.Minute)) {
		t.Fatalf("after a success, a failure waits until %s", retry)
	}
}

func TestCertFailuresAreBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := newCertFailures(func() time.Time { return now })
	for i := range maxCertFailures + 10 {
		now = now.Add(time.Second)
		m.record(fmt.Sprintf("n%d.example.com", i), "refused")
	}
	reasons := m.reasons()
	if len(reasons) != maxCertFailures {
		t.Fatalf("%d names remembered, want %d", len(reasons), maxCertFailures)
	}
	if _, kept := reasons["n9.example.com"]; kept {
		t.Fatal("the oldest failures were kept")
	}
	if _, kept := reasons[fmt.Sprintf("n%d.example.com", maxCertFailures+9)]; !kept {
		t.Fatal("the newest failure was dropped")
	}
}

func TestHandshakeErrorsAreCountedAndSummed(t *testing.T) {
	var logs logtest.Buffer
	count := prometheus.NewCounter(prometheus.CounterOpts{Name: "handshake_errors"})
	h := &handshakeLog{log: slog.New(slog.NewTextHandler(&logs, nil)), count: count, interval: time.Hour}
	for i := range 1000 {
		fmt.Fprintf(h, "http: TLS handshake error from 127.0.0.1:%d: certificate is not allowed for server name x%d.example\n", 40000+i, i)
	}
	fmt.Fprintln(h, "http: superfluous response.WriteHeader call")
	if got := testutil.ToFloat64(count); got != 1000 {
		t.Fatalf("counted %v handshake errors, want 1000", got)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "TLS handshakes failed") || !strings.Contains(lines[1], "superfluous") {
		t.Fatalf("log:\n%s", logs.String())
	}
	io.WriteString(h, "http: TLS handshake error from 127.0.0.1:1: EOF\n")
	if strings.Count(logs.String(), "\n") != 2 {
		t.Fatal("a second line within the interval")
	}
}
