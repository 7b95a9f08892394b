package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/clock/clocktest"
	"github.com/miaobu/miaobu/internal/logtest"
	"github.com/miaobu/miaobu/internal/outbox"
	"github.com/miaobu/miaobu/internal/store"
)

// recorder is a Sender that records every attempt and answers with the errors its test gives.
type recorder struct {
	mu    sync.Mutex
	calls []outbox.Message
	// answer returns the outcome of the n-th attempt (from 0) at m; nil means success.
	answer func(ctx context.Context, m outbox.Message, n int) error
}

func (r *recorder) send(ctx context.Context, m outbox.Message) error {
	r.mu.Lock()
	n := len(r.calls)
	r.calls = append(r.calls, m)
	r.mu.Unlock()
	if r.answer == nil {
		return nil
	}
	return r.answer(ctx, m, n)
}

// ids returns the ids of the messages attempted so far, in order.
func (r *recorder) ids() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []int64
	for _, m := range r.calls {
		ids = append(ids, m.ID)
	}
	return ids
}

// harness is a worker on a real store in a temporary directory, with a fake clock and a captured log.
type harness struct {
	dir   string
	store *store.Store
	clock *clocktest.Fake
	log   *logtest.Buffer
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{dir: filepath.Join(t.TempDir(), "data"), clock: clocktest.New(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)), log: &logtest.Buffer{}}
	h.open(t)
	return h
}

// open opens the harness's store, closed when the test ends.
func (h *harness) open(t *testing.T) {
	t.Helper()
	s, err := store.Open(h.dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h.store = s
	t.Cleanup(func() { s.Close() })
}

// start runs a worker with opts, sending kind "test" through r, until stop is called or the test
// ends; stop returns once Run has returned.
func (h *harness) start(t *testing.T, opts outbox.Options, r *recorder) (w *outbox.Worker, stop func()) {
	t.Helper()
	return h.startWith(t, opts, func(w *outbox.Worker) {
		if r != nil {
			w.Register("test", r.send)
		}
	})
}

// startWith is start with the senders that register registers before the worker runs.
func (h *harness) startWith(t *testing.T, opts outbox.Options, register func(w *outbox.Worker)) (w *outbox.Worker, stop func()) {
	t.Helper()
	opts.Clock, opts.Logger = h.clock, slog.New(slog.NewTextHandler(h.log, nil))
	w = outbox.New(h.store, opts)
	register(w)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		w.Run(ctx)
		close(done)
	}()
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after its context was cancelled")
		}
	}
	t.Cleanup(stop)
	return w, stop
}

// enqueue adds a message of kind to the store under key and returns its id.
func (h *harness) enqueue(t *testing.T, kind, key string) int64 {
	t.Helper()
	id, err := h.store.EnqueueMessage(outbox.Message{Kind: kind, Key: key, Payload: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// pending returns the oldest waiting message of each key, whenever it is due.
func (h *harness) pending(t *testing.T) []outbox.Message {
	t.Helper()
	due, _, err := h.store.DueMessages(h.clock.Now().Add(1000*time.Hour), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	return due
}

// waitAttempts waits until the oldest pending message has failed attempts times, and returns it.
func (h *harness) waitAttempts(t *testing.T, attempts int) outbox.Message {
	t.Helper()
	var m outbox.Message
	eventually(t, fmt.Sprintf("a message with %d failed attempts", attempts), func() bool {
		p := h.pending(t)
		if len(p) > 0 {
			m = p[0]
		}
		return len(p) > 0 && m.Attempts == attempts
	})
	return m
}

// eventually polls cond until it holds, failing the test after a while.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// never checks for a short while that cond does not come true.
func never(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(50 * time.Millisecond); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			t.Fatalf("unexpectedly: %s", what)
		}
	}
}

var errUnavailable = errors.New("503 Service Unavailable")

func TestUnsentMessageSurvivesCrash(t *testing.T) {
	h := newHarness(t)
	id := h.enqueue(t, "test", "deployment:1")

	// The first worker stops while its send is under way: the message stays, its attempt not counted.
	inFlight := &recorder{answer: func(ctx context.Context, _ outbox.Message, _ int) error {
		<-ctx.Done()
		return ctx.Err()
	}}
	_, stop := h.start(t, outbox.Options{}, inFlight)
	eventually(t, "the first send", func() bool { return len(inFlight.ids()) == 1 })
	stop()
	if err := h.store.Close(); err != nil {
		t.Fatal(err)
	}

	h.open(t)
	if p := h.pending(t); len(p) != 1 || p[0].ID != id || p[0].Attempts != 0 {
		t.Fatalf("after the crash the outbox holds %+v, want message %d with no failed attempt", p, id)
	}
	sent := &recorder{}
	h.start(t, outbox.Options{}, sent)
	eventually(t, "the message to be sent and removed", func() bool { return len(h.pending(t)) == 0 })
	if !slices.Equal(sent.ids(), []int64{id}) {
		t.Fatalf("sent %v, want %v once", sent.ids(), []int64{id})
	}
}

func TestRetriesKeepOrderOfKey(t *testing.T) {
	h := newHarness(t)
	first, second := h.enqueue(t, "test", "deployment:1"), h.enqueue(t, "test", "deployment:1")
	r := &recorder{answer: func(_ context.Context, _ outbox.Message, n int) error {
		if n < 2 {
			return errUnavailable
		}
		return nil
	}}
	h.start(t, outbox.Options{}, r)

	failed := h.waitAttempts(t, 1)
	if wait := failed.NextAttemptAt.Sub(h.clock.Now()); wait < 4*time.Second || wait > 6*time.Second || failed.LastError != errUnavailable.Error() {
		t.Fatalf("after the first failure: retry in %v (want 5s ± 20%%), last error %q", wait, failed.LastError)
	}
	h.clock.Advance(6 * time.Second)
	failed = h.waitAttempts(t, 2)
	if wait := failed.NextAttemptAt.Sub(h.clock.Now()); wait < 4*time.Minute || wait > 6*time.Minute {
		t.Fatalf("after the second failure: retry in %v, want 5m ± 20%%", wait)
	}
	never(t, "the second message was sent before the first succeeded", func() bool { return slices.Contains(r.ids(), second) })
	h.clock.Advance(6 * time.Minute)
	eventually(t, "both messages sent", func() bool { return len(h.pending(t)) == 0 })

	if want := []int64{first, first, first, second}; !slices.Equal(r.ids(), want) {
		t.Fatalf("attempts %v, want %v", r.ids(), want)
	}
	for n, want := range []int{0, 1, 2, 0} {
		if got := r.calls[n].Attempts; got != want {
			t.Errorf("attempt %d saw %d earlier failures, want %d", n, got, want)
		}
	}
}

func TestGivesUpAfterSchedule(t *testing.T) {
	h := newHarness(t)
	id := h.enqueue(t, "test", "notification:1")
	r := &recorder{answer: func(context.Context, outbox.Message, int) error { return errUnavailable }}
	h.start(t, outbox.Options{}, r)

	for n, wait := range outbox.DefaultSchedule {
		h.waitAttempts(t, n+1)
		h.clock.Advance(wait * 6 / 5)
	}
	eventually(t, "the message to be given up", func() bool { return len(h.pending(t)) == 0 })
	if got, want := len(r.ids()), len(outbox.DefaultSchedule)+1; got != want {
		t.Fatalf("%d attempts, want %d", got, want)
	}
	log := h.log.String()
	if !strings.Contains(log, "giving up") || !strings.Contains(log, fmt.Sprintf("message=%d", id)) || !strings.Contains(log, "attempts=7") {
		t.Fatalf("giving up was not logged with the message and its attempts:\n%s", log)
	}
}

func TestPermanentErrorDropsAtOnce(t *testing.T) {
	h := newHarness(t)
	refused, next := h.enqueue(t, "test", "deployment:1"), h.enqueue(t, "test", "deployment:1")
	r := &recorder{answer: func(_ context.Context, m outbox.Message, _ int) error {
		if m.ID == refused {
			return outbox.Permanent(errors.New("404 Not Found"))
		}
		return nil
	}}
	h.start(t, outbox.Options{}, r)
	eventually(t, "both messages handled", func() bool { return len(h.pending(t)) == 0 })
	if !slices.Equal(r.ids(), []int64{refused, next}) {
		t.Fatalf("attempts %v, want one of each: %v", r.ids(), []int64{refused, next})
	}
	if log := h.log.String(); !strings.Contains(log, "permanent error") || !strings.Contains(log, "404 Not Found") {
		t.Fatalf("the drop was not logged:\n%s", log)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	h := newHarness(t)
	h.enqueue(t, "test", "notification:1")
	r := &recorder{answer: func(_ context.Context, _ outbox.Message, n int) error {
		if n == 0 {
			return outbox.RetryAfter(errors.New("429 Too Many Requests"), time.Hour)
		}
		return nil
	}}
	h.start(t, outbox.Options{}, r)

	failed := h.waitAttempts(t, 1)
	if want := h.clock.Now().Add(time.Hour); !failed.NextAttemptAt.Equal(want) {
		t.Fatalf("retry at %v, want an hour later, %v, instead of the schedule's 5s", failed.NextAttemptAt, want)
	}
	h.clock.Advance(59 * time.Minute)
	never(t, "retried before the hour", func() bool { return len(r.ids()) > 1 })
	h.clock.Advance(time.Minute)
	eventually(t, "the retry after the hour", func() bool { return len(h.pending(t)) == 0 })
	if len(r.ids()) != 2 {
		t.Fatalf("%d attempts, want 2", len(r.ids()))
	}
}

func TestKeysDoNotBlockEachOther(t *testing.T) {
	h := newHarness(t)
	slow := h.enqueue(t, "test", "deployment:1")
	release := make(chan struct{})
	r := &recorder{answer: func(ctx context.Context, m outbox.Message, _ int) error {
		if m.ID == slow {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}}
	h.start(t, outbox.Options{}, r)
	eventually(t, "the slow send to start", func() bool { return len(r.ids()) == 1 })

	// Enqueued while the worker sleeps: the enqueue wakes it, no clock tick needed.
	fast := h.enqueue(t, "test", "deployment:2")
	eventually(t, "the other key's message sent while the slow one is under way", func() bool {
		p := h.pending(t)
		return slices.Contains(r.ids(), fast) && len(p) == 1 && p[0].ID == slow
	})
	close(release)
	eventually(t, "the slow message sent", func() bool { return len(h.pending(t)) == 0 })
}

func TestSendTimeout(t *testing.T) {
	h := newHarness(t)
	h.enqueue(t, "test", "deployment:1")
	r := &recorder{answer: func(ctx context.Context, _ outbox.Message, _ int) error {
		<-ctx.Done()
		return ctx.Err()
	}}
	h.start(t, outbox.Options{SendTimeout: 20 * time.Millisecond}, r)
	failed := h.waitAttempts(t, 1)
	if !strings.Contains(failed.LastError, "no answer within 20ms") {
		t.Fatalf("last error %q, want the timeout", failed.LastError)
	}
}

func TestUnregisteredKindWaitsForSender(t *testing.T) {
	h := newHarness(t)
	id := h.enqueue(t, "github.status", "deployment:1")
	w, _ := h.start(t, outbox.Options{}, nil)
	failed := h.waitAttempts(t, 1)
	if !strings.Contains(failed.LastError, `no sender is registered for kind "github.status"`) {
		t.Fatalf("last error %q", failed.LastError)
	}
	r := &recorder{}
	w.Register("github.status", r.send)
	h.clock.Advance(6 * time.Second)
	eventually(t, "the message sent by the sender registered late", func() bool { return len(h.pending(t)) == 0 })
	if !slices.Equal(r.ids(), []int64{id}) {
		t.Fatalf("sent %v, want %v", r.ids(), []int64{id})
	}
}

func TestHangingKindDoesNotDelayAnother(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	defer close(release)
	hanging := &recorder{answer: func(ctx context.Context, _ outbox.Message, _ int) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}}
	reports := &recorder{}
	w, _ := h.start(t, outbox.Options{Concurrency: 2, KindConcurrency: map[string]int{"notify": 3}}, reports)
	w.Register("notify", hanging.send)
	for i := range 3 {
		h.enqueue(t, "notify", fmt.Sprintf("notify:%d", i))
	}
	eventually(t, "all three hanging sends under way", func() bool { return len(hanging.ids()) == 3 })

	// The notify kind fills its three slots; another kind still has its own.
	report := h.enqueue(t, "test", "deployment:1")
	eventually(t, "the report sent while the notifications hang", func() bool { return slices.Contains(reports.ids(), report) })
	again := h.enqueue(t, "notify", "notify:3")
	never(t, "a fourth notification sent while its kind's three slots are taken", func() bool { return slices.Contains(hanging.ids(), again) })
}

// gitHubBackoff is a Backoff like the one of the reports to GitHub.
var gitHubBackoff = outbox.Backoff{First: 2 * time.Second, Max: 12*time.Minute + 30*time.Second}

func TestBackoffNeverGivesUp(t *testing.T) {
	h := newHarness(t)
	h.enqueue(t, "github", "deployment:1")
	r := &recorder{answer: func(context.Context, outbox.Message, int) error { return errUnavailable }}
	h.startWith(t, outbox.Options{}, func(w *outbox.Worker) { w.RegisterWithBackoff("github", r.send, gitHubBackoff) })

	// Two days of failures: the waits start small, double, and stay within 10 to 15 minutes.
	var waited time.Duration
	for n := 1; waited < 48*time.Hour; n++ {
		failed := h.waitAttempts(t, n)
		wait := failed.NextAttemptAt.Sub(h.clock.Now())
		want := min(gitHubBackoff.First<<min(n-1, 20), gitHubBackoff.Max)
		if wait < want*4/5 || wait > want*6/5 {
			t.Fatalf("after failure %d: retry in %v, want %v ± 20%%", n, wait, want)
		}
		h.clock.Advance(wait)
		waited += wait
	}
	if p := h.pending(t); len(p) != 1 {
		t.Fatalf("after two days of failures the outbox holds %+v, want the message still", p)
	}
	if strings.Contains(h.log.String(), "giving up") {
		t.Fatalf("the worker gave up:\n%s", h.log.String())
	}
}

func TestBackoffWakesKindOnSuccess(t *testing.T) {
	h := newHarness(t)
	var down sync.Map // key → failing
	down.Store("deployment:1", true)
	down.Store("deployment:2", true)
	r := &recorder{answer: func(_ context.Context, m outbox.Message, _ int) error {
		if _, failing := down.Load(m.Key); failing {
			return errUnavailable
		}
		return nil
	}}
	notifications := &recorder{answer: func(context.Context, outbox.Message, int) error { return errUnavailable }}
	h.startWith(t, outbox.Options{}, func(w *outbox.Worker) {
		w.Register("test", notifications.send)
		w.RegisterWithBackoff("github", r.send, gitHubBackoff)
	})

	h.enqueue(t, "github", "deployment:1")
	h.enqueue(t, "github", "deployment:2")
	notification := h.enqueue(t, "test", "notify:1")
	// Each waits a while: the first retries of an outage that lasts.
	for n := 1; n <= 5; n++ {
		eventually(t, fmt.Sprintf("failure %d of each", n), func() bool {
			p := h.pending(t)
			return len(p) == 3 && p[0].Attempts == n && p[1].Attempts == n && p[2].Attempts >= 1
		})
		if n < 5 {
			h.clock.Advance(gitHubBackoff.First << n)
		}
	}
	// GitHub answers again: a new report is sent, and the two waiting are tried at once.
	down.Delete("deployment:1")
	down.Delete("deployment:2")
	third := h.enqueue(t, "github", "deployment:3")
	eventually(t, "the waiting reports sent without the clock moving", func() bool {
		p := h.pending(t)
		return len(p) == 1 && p[0].ID == notification
	})
	if got := r.ids(); !slices.Contains(got, third) || got[len(got)-1] == third {
		t.Errorf("attempts %v: the new report should be sent before the two waiting ones", got)
	}
	// A notification keeps the schedule of contract section 10.
	if p := h.pending(t); !p[0].NextAttemptAt.After(h.clock.Now()) {
		t.Errorf("the notification waiting for its retry was woken: %+v", p[0])
	}
}

func TestHeldUntilReleased(t *testing.T) {
	h := newHarness(t)
	var paused sync.Map // group → paused
	paused.Store("project:1", true)
	r := &recorder{answer: func(_ context.Context, m outbox.Message, _ int) error {
		if _, ok := paused.Load("project:1"); ok && m.Key != "other" {
			return outbox.Hold(errors.New("403 Forbidden"), "project:1")
		}
		return nil
	}}
	_, stop := h.start(t, outbox.Options{}, r)
	first, second := h.enqueue(t, "test", "deployment:1"), h.enqueue(t, "test", "deployment:1")
	third := h.enqueue(t, "test", "deployment:2")
	other := h.enqueue(t, "test", "other")
	eventually(t, "the other key sent and both keys held", func() bool {
		return len(h.pending(t)) == 2 && slices.Contains(r.ids(), other) && slices.Contains(r.ids(), third)
	})
	h.clock.Advance(24 * time.Hour)
	never(t, "a held message attempted again", func() bool { return len(r.ids()) > 3 })
	for _, m := range h.pending(t) {
		if m.Attempts != 0 {
			t.Errorf("held message %d counts %d failed attempts, want none", m.ID, m.Attempts)
		}
	}

	// A restart tries them again: still paused, they are held again.
	stop()
	attempts := len(r.ids())
	w, _ := h.start(t, outbox.Options{}, r)
	eventually(t, "the held messages tried once after the restart", func() bool { return len(r.ids()) == attempts+2 })

	paused.Delete("project:1")
	w.Release("project:1")
	eventually(t, "the held messages sent", func() bool { return len(h.pending(t)) == 0 })
	got := r.ids()[attempts+2:]
	if !slices.Equal(got, []int64{first, third, second}) && !slices.Equal(got, []int64{third, first, second}) {
		t.Errorf("sent after the release: %v, want %d before %d, and %d", got, first, second, third)
	}
}

func TestRetryAfterBounded(t *testing.T) {
	h := newHarness(t)
	h.enqueue(t, "github", "deployment:1")
	r := &recorder{answer: func(_ context.Context, _ outbox.Message, n int) error {
		if n == 0 {
			return outbox.RetryAfter(errors.New("rate limit resets in 2030"), 5*365*24*time.Hour)
		}
		return nil
	}}
	h.startWith(t, outbox.Options{}, func(w *outbox.Worker) { w.RegisterWithBackoff("github", r.send, gitHubBackoff) })
	failed := h.waitAttempts(t, 1)
	if want := h.clock.Now().Add(outbox.MaxRetryAfter); !failed.NextAttemptAt.Equal(want) {
		t.Fatalf("retry at %v, want at most an hour later, %v", failed.NextAttemptAt, want)
	}
	h.clock.Advance(outbox.MaxRetryAfter)
	eventually(t, "the retry after the hour", func() bool { return len(h.pending(t)) == 0 })
}

func TestStoredWaitCappedAtStart(t *testing.T) {
	h := newHarness(t)
	id := h.enqueue(t, "github", "deployment:1")
	// Recorded by an earlier version from a rate limit said to reset years ahead.
	if err := h.store.RetryMessage(id, h.clock.Now().Add(5*365*24*time.Hour), "rate limited"); err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	h.startWith(t, outbox.Options{}, func(w *outbox.Worker) { w.RegisterWithBackoff("github", r.send, gitHubBackoff) })
	eventually(t, "the stored wait capped", func() bool {
		p := h.pending(t)
		return len(p) == 1 && p[0].NextAttemptAt.Equal(h.clock.Now().Add(outbox.MaxRetryAfter))
	})
	h.clock.Advance(outbox.MaxRetryAfter)
	eventually(t, "the message sent within the hour", func() bool { return len(h.pending(t)) == 0 })
}

// TestReleaseDuringSend releases a group while a send that ends held for it is under way: the send
// may have seen the pause the release ended, so the message is tried again rather than held.
func TestReleaseDuringSend(t *testing.T) {
	h := newHarness(t)
	released := make(chan struct{})
	r := &recorder{answer: func(_ context.Context, _ outbox.Message, n int) error {
		if n == 0 {
			<-released
			return outbox.Hold(errors.New("403 Forbidden"), "project:1")
		}
		return nil
	}}
	w, _ := h.start(t, outbox.Options{}, r)
	h.enqueue(t, "test", "deployment:1")
	eventually(t, "the first send under way", func() bool { return len(r.ids()) == 1 })
	w.Release("project:1")
	close(released)
	eventually(t, "the message sent by a second attempt", func() bool { return len(h.pending(t)) == 0 })
}

func TestLaterCountsNoAttempt(t *testing.T) {
	h := newHarness(t)
	turn := h.clock.Now().Add(time.Minute)
	r := &recorder{answer: func(_ context.Context, _ outbox.Message, n int) error {
		if n == 0 {
			return outbox.Later(errors.New("not its turn yet"), turn)
		}
		return nil
	}}
	h.start(t, outbox.Options{Schedule: []time.Duration{time.Hour}}, r)
	id := h.enqueue(t, "test", "target:1")
	eventually(t, "the message put off", func() bool { return len(r.ids()) == 1 })
	never(t, "the message sent before its turn", func() bool { return len(r.ids()) > 1 })
	if p := h.pending(t); len(p) != 1 || p[0].Attempts != 0 || p[0].LastError != "" {
		t.Fatalf("pending %+v, want the message with no failed attempt recorded", p)
	}
	h.clock.Advance(time.Minute)
	eventually(t, "the message sent at its turn", func() bool { return len(h.pending(t)) == 0 })
	if got := r.ids(); !slices.Equal(got, []int64{id, id}) {
		t.Fatalf("attempts %v, want message %d twice", got, id)
	}
}
