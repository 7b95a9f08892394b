package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/miaobu/miaobu/internal/clock"
)

// Sender delivers one message of its kind; ctx ends at the send timeout or when the Worker stops.
type Sender func(ctx context.Context, m Message) error

// permanentError is an error that trying again cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that trying again cannot fix (a 4xx answer, a disabled target): the
// Worker drops the message at once.
func Permanent(err error) error { return &permanentError{err} }

// retryAfterError is an error whose receiver asked for no new attempt before a delay has passed.
type retryAfterError struct {
	err   error
	delay time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter marks err as retryable no sooner than delay from now, as a 429's Retry-After asks; a
// longer wait from the schedule still applies.
func RetryAfter(err error, delay time.Duration) error { return &retryAfterError{err, delay} }

// isPermanent reports whether err was marked with Permanent.
func isPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// MaxRetryAfter bounds the wait a receiver may ask for with RetryAfter for a kind retried with a
// Backoff: a bogus answer (a rate limit said to reset years ahead) delays its message by at most
// this. The kinds on the schedule bound it themselves.
const MaxRetryAfter = time.Hour

// retryAfter returns the delay err was marked with by RetryAfter, zero when none.
func retryAfter(err error) time.Duration {
	var r *retryAfterError
	if errors.As(err, &r) {
		return r.delay
	}
	return 0
}

// laterError is an error that asks the Worker to try a message again at a time, as no failure.
type laterError struct {
	err error
	at  time.Time
}

func (e *laterError) Error() string { return e.err.Error() }
func (e *laterError) Unwrap() error { return e.err }

// Later marks err as a turn not yet come (a receiver paced to a message a second): the Worker
// sends the message again at at, counting no attempt and writing nothing to the store, so that a
// restart sends it at once.
func Later(err error, at time.Time) error { return &laterError{err, at} }

// laterTime returns the time err was marked with by Later, and false when it was not.
func laterTime(err error) (time.Time, bool) {
	var l *laterError
	if errors.As(err, &l) {
		return l.at, true
	}
	return time.Time{}, false
}

// heldError is an error that asks the Worker to keep a message, unsent, until its group is released.
type heldError struct {
	err   error
	group string
}

func (e *heldError) Error() string { return e.err.Error() }
func (e *heldError) Unwrap() error { return e.err }

// Hold marks err as one that lasts until Release(group) (a receiver that refuses the sender until
// it is set up again): the Worker keeps the message, and the later ones of its key behind it,
// without counting an attempt, and sends them again, in order, once group is released or at the
// next Run.
func Hold(err error, group string) error { return &heldError{err, group} }

// heldGroup returns the group err was marked with by Hold, and false when it was not.
func heldGroup(err error) (string, bool) {
	var h *heldError
	if errors.As(err, &h) {
		return h.group, true
	}
	return "", false
}

// Backoff retries the failed messages of a kind without ever giving up on them (until a permanent
// error): the wait doubles after each failed attempt from First up to Max, each spread by jitter.
// Once a message of the kind is sent, the other messages of the kind waiting for a retry are tried
// at once, so that a backlog left by an outage drains as soon as the receiver answers again. A
// wait the receiver asks for with RetryAfter counts for at most MaxRetryAfter.
type Backoff struct {
	First, Max time.Duration
}

// wait returns the wait before the retry that follows a message's attempts-th failed attempt.
func (b Backoff) wait(attempts int) time.Duration {
	d := b.First
	for range attempts - 1 {
		if d >= b.Max {
			break
		}
		d *= 2
	}
	return min(d, b.Max)
}

// DefaultSchedule is the wait before each retry of a failed message; after the last one it is given up.
var DefaultSchedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour}

// Defaults of Options.
const (
	DefaultSendTimeout  = 15 * time.Second
	DefaultConcurrency  = 4
	DefaultPollInterval = 30 * time.Second
)

// jitter is the fraction by which each wait of the schedule is spread either way, so that messages
// failed together are not retried together.
const jitter = 0.2

// Options tune a Worker; a zero field takes its default.
type Options struct {
	// Schedule is the wait before each retry of the kinds registered without a Backoff; a message
	// that fails once more is given up.
	Schedule []time.Duration
	// SendTimeout bounds one attempt.
	SendTimeout time.Duration
	// Concurrency is how many messages of one kind, each of a different key, are sent at once; every
	// kind has slots of its own, so receivers that hang hold up no other kind.
	Concurrency int
	// KindConcurrency overrides Concurrency for the kinds it names.
	KindConcurrency map[string]int
	// PollInterval is the longest the Worker sleeps without looking at the store.
	PollInterval time.Duration
	// Clock gives the time; the system clock by default.
	Clock clock.Clock
	// Logger gets a line for every failed attempt and every message dropped; slog.Default() by default.
	Logger *slog.Logger
}

// Worker sends the due messages of a Store through the Sender registered for their kind.
type Worker struct {
	store Store
	opts  Options

	// wake receives a value when held messages are released.
	wake chan struct{}

	mu      sync.Mutex
	senders map[string]Sender
	backoff map[string]Backoff
	// held maps the key of each held message to the group that releases it.
	held map[string]string
	// deferred maps the key of each message put off with Later to when it is tried again.
	deferred map[string]time.Time
	// releases counts the calls of Release, so that a message held by a send that a release
	// overlapped is tried again instead.
	releases int
	// settled holds the kinds with a Backoff that have no message waiting for a retry, as far as
	// the Worker knows: a kind missing here may have some, from an earlier Run.
	settled map[string]bool
}

// New returns a Worker for st, with opts' zero fields set to their defaults.
func New(st Store, opts Options) *Worker {
	if opts.Schedule == nil {
		opts.Schedule = DefaultSchedule
	}
	if opts.SendTimeout <= 0 {
		opts.SendTimeout = DefaultSendTimeout
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Worker{store: st, opts: opts, wake: make(chan struct{}, 1), senders: map[string]Sender{}, backoff: map[string]Backoff{},
		held: map[string]string{}, deferred: map[string]time.Time{}, settled: map[string]bool{}}
}

// Register makes send the Sender of messages of kind. A message whose kind has no Sender fails and
// is retried on the schedule, so a Sender registered later still gets it.
func (w *Worker) Register(kind string, send Sender) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.senders[kind] = send
}

// RegisterWithBackoff is Register for a kind whose messages must never be dropped while their
// receiver fails (reports to GitHub): they are retried with b instead of the schedule.
func (w *Worker) RegisterWithBackoff(kind string, send Sender, b Backoff) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.senders[kind] = send
	w.backoff[kind] = b
}

// sender returns the Sender of kind, nil when none is registered.
func (w *Worker) sender(kind string) Sender {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.senders[kind]
}

// backoffOf returns the Backoff of kind, and false when kind follows the schedule.
func (w *Worker) backoffOf(kind string) (Backoff, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	b, ok := w.backoff[kind]
	return b, ok
}

// Release sends again the messages held for group (see Hold), in order.
func (w *Worker) Release(group string) {
	w.mu.Lock()
	w.releases++
	for key, g := range w.held {
		if g == group {
			delete(w.held, key)
		}
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// deferUntil puts the messages of key off until at.
func (w *Worker) deferUntil(key string, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.deferred[key] = at
}

// isDeferred reports whether the messages of key are put off past now, forgetting a deferral that has ended.
func (w *Worker) isDeferred(key string, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	at, ok := w.deferred[key]
	if ok && !at.After(now) {
		delete(w.deferred, key)
		return false
	}
	return ok
}

// nextDeferred returns the earliest time a deferred message is tried again, zero when none is.
func (w *Worker) nextDeferred() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var next time.Time
	for _, at := range w.deferred {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next
}

// isHeld reports whether the messages of key are held.
func (w *Worker) isHeld(key string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.held[key]
	return ok
}

// releaseCount returns how many times Release was called.
func (w *Worker) releaseCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.releases
}

// hold keeps the messages of key until group is released, unless a release came after the send
// that asks for it started (releasesBefore counts those before): the send may have seen the state
// the release ended, so the message is tried again.
func (w *Worker) hold(key, group string, releasesBefore int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.releases == releasesBefore {
		w.held[key] = group
	}
}

// longestWait is the longest the Worker makes a message of kind wait for its next attempt, a wait
// asked for by the receiver aside for a kind on the schedule.
func (w *Worker) longestWait(kind string) time.Duration {
	if b, ok := w.backoffOf(kind); ok {
		return max(time.Duration(float64(b.Max)*(1+jitter)), MaxRetryAfter)
	}
	return time.Duration(float64(w.opts.Schedule[len(w.opts.Schedule)-1]) * (1 + jitter))
}

// limit returns how many messages of kind may be sent at once.
func (w *Worker) limit(kind string) int {
	if n := w.opts.KindConcurrency[kind]; n > 0 {
		return n
	}
	return w.opts.Concurrency
}

// Run sends due messages until ctx is cancelled, then waits for the sends under way, which ctx
// cancels too, and returns; an interrupted send stays in the store for the next Run.
func (w *Worker) Run(ctx context.Context) {
	var sends sync.WaitGroup
	defer sends.Wait()
	if err := w.store.CapRetries(w.opts.Clock.Now(), w.longestWait); err != nil {
		w.opts.Logger.Error("outbox: bounding the waits of stored messages", "error", err)
	}
	busy := map[string]bool{}   // keys with a send under way
	running := map[string]int{} // sends under way of each kind
	finished := make(chan Message)
	for {
		now := w.opts.Clock.Now()
		wake := now.Add(w.opts.PollInterval)
		// Every due message is read, as the kinds' free slots decide which of them go out.
		due, next, err := w.store.DueMessages(now, 0, func(key string) bool {
			return busy[key] || w.isHeld(key) || w.isDeferred(key, now)
		})
		if err != nil {
			w.opts.Logger.Error("outbox: reading due messages", "error", err)
		}
		for _, m := range due {
			if running[m.Kind] >= w.limit(m.Kind) {
				continue // sent when one of its kind finishes
			}
			busy[m.Key] = true
			running[m.Kind]++
			sends.Go(func() {
				w.attempt(ctx, m)
				select {
				case finished <- m:
				case <-ctx.Done():
				}
			})
		}
		for _, at := range []time.Time{next, w.nextDeferred()} {
			if !at.IsZero() && at.Before(wake) {
				wake = at
			}
		}
		select {
		case <-ctx.Done():
			return
		case m := <-finished:
			delete(busy, m.Key)
			running[m.Kind]--
		case <-w.store.MessageEnqueued():
		case <-w.wake:
		case <-w.opts.Clock.At(wake):
		}
	}
}

// attempt sends m once and records the outcome: deleted when sent, given up or refused for good,
// otherwise scheduled for another attempt.
func (w *Worker) attempt(ctx context.Context, m Message) {
	log := w.opts.Logger.With("message", m.ID, "kind", m.Kind, "key", m.Key)
	releases := w.releaseCount()
	err := w.send(ctx, m)
	if err != nil && ctx.Err() != nil {
		log.Info("outbox: send interrupted by shutdown; it is sent again at the next start")
		return
	}
	attempts := m.Attempts + 1
	backoff, forever := w.backoffOf(m.Kind)
	group, held := heldGroup(err)
	later, deferred := laterTime(err)
	switch {
	case err == nil:
		w.delete(log, m)
		if forever {
			w.wakeKind(log, m.Kind)
		}
		return
	case held:
		w.hold(m.Key, group, releases)
		return
	case deferred:
		w.deferUntil(m.Key, later)
		return
	case isPermanent(err):
		log.Warn("outbox: dropping message after a permanent error", "attempts", attempts, "error", err)
		w.delete(log, m)
		return
	case !forever && attempts > len(w.opts.Schedule):
		log.Error("outbox: giving up on message", "attempts", attempts, "created_at", m.CreatedAt, "error", err)
		w.delete(log, m)
		return
	}
	var delay time.Duration
	if forever {
		delay = max(spread(backoff.wait(attempts)), min(retryAfter(err), MaxRetryAfter))
	} else {
		delay = max(spread(w.opts.Schedule[attempts-1]), retryAfter(err))
	}
	next := w.opts.Clock.Now().Add(delay)
	if err := w.store.RetryMessage(m.ID, next, err.Error()); err != nil {
		log.Error("outbox: recording a failed attempt", "error", err)
		return
	}
	if forever {
		w.unsettle(m.Kind) // after the retry is recorded, so that the next success wakes it
	}
	log.Warn("outbox: send failed, will retry", "attempts", attempts, "retry_at", next, "error", err)
}

// unsettle records that messages of kind may wait for a retry.
func (w *Worker) unsettle(kind string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.settled, kind)
}

// wakeKind makes the messages of kind that wait for a retry due now, after one of them was sent:
// the receiver answers again. It reads the store only when some may wait.
func (w *Worker) wakeKind(log *slog.Logger, kind string) {
	w.mu.Lock()
	settled := w.settled[kind]
	w.settled[kind] = true
	w.mu.Unlock()
	if settled {
		return
	}
	if err := w.store.WakeMessages(kind, w.opts.Clock.Now()); err != nil {
		log.Error("outbox: waking the messages waiting for a retry", "error", err)
		w.unsettle(kind)
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// send runs m's Sender with the send timeout.
func (w *Worker) send(ctx context.Context, m Message) error {
	send := w.sender(m.Kind)
	if send == nil {
		return fmt.Errorf("no sender is registered for kind %q", m.Kind)
	}
	ctx, cancel := context.WithTimeout(ctx, w.opts.SendTimeout)
	defer cancel()
	err := send(ctx, m)
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within %s: %w", w.opts.SendTimeout, err)
	}
	return err
}

// delete removes m from the store, logging a failure (m is then sent again: at least once).
func (w *Worker) delete(log *slog.Logger, m Message) {
	if err := w.store.DeleteMessage(m.ID); err != nil {
		log.Error("outbox: removing message", "error", err)
	}
}

// spread returns d moved at random by up to jitter of itself either way.
func spread(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (1 + jitter*(2*rand.Float64()-1)))
}
