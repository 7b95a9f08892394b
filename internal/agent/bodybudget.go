package agent

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"time"
)

// webhookBusyWait is how long a delivery waits for room in the webhook body budget before 503.
const webhookBusyWait = 5 * time.Second

// growStep is the least room a body's reservation grows by as its bytes arrive.
const growStep = 64 << 10

// webhookReadTimeout is how long a webhook body may take to arrive, waits for room included: GitHub
// itself gives up on a delivery after 10 s.
const webhookReadTimeout = 15 * time.Second

var (
	// errBusy is returned when a body found no room in the budget in time.
	errBusy = errors.New("no room for the body in the webhook budget")
	// errBodyTooLarge is returned for a body over the largest accepted size.
	errBodyTooLarge = errors.New("body too large")
)

// byteBudget bounds the bytes of request bodies held in memory at once. It admits the smallest
// waiting request that fits first, not the oldest: a signed push of a few kilobytes then gets in at
// the next release instead of queueing behind a flood of 32 MiB bodies. Requests of one size are
// admitted oldest first.
type byteBudget struct {
	size int64
	// wait is how long a body may wait for room in total; webhookBusyWait but in tests.
	wait time.Duration
	// readTimeout is how long a body may take to arrive; webhookReadTimeout but in tests.
	readTimeout time.Duration

	mu      sync.Mutex
	used    int64
	waiters []*budgetWaiter // none of them fits in size - used
}

// budgetWaiter is a request waiting for n bytes; ready is closed once they are its own.
type budgetWaiter struct {
	n     int64
	ready chan struct{}
}

// newByteBudget returns an empty budget of size bytes.
func newByteBudget(size int64) *byteBudget {
	return &byteBudget{size: size, wait: webhookBusyWait, readTimeout: webhookReadTimeout}
}

// inUse returns the bytes held.
func (b *byteBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// acquire takes n bytes (at most size), waiting until they fit or ctx is done.
func (b *byteBudget) acquire(ctx context.Context, n int64) error {
	b.mu.Lock()
	// Every waiter needs more than is free, so a request that fits is also the smallest.
	if b.used+n <= b.size {
		b.used += n
		b.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.ready: // admitted while giving up: hand the bytes on
		b.used -= n
		b.admit()
	default:
		if i := slices.Index(b.waiters, w); i >= 0 {
			b.waiters = slices.Delete(b.waiters, i, i+1)
		}
	}
	return ctx.Err()
}

// release gives back n bytes and admits the waiters that now fit, smallest first.
func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	b.admit()
}

// admit hands free bytes to waiters, smallest first (oldest first among equals), while they fit.
func (b *byteBudget) admit() {
	for {
		best := -1
		for i, w := range b.waiters {
			if b.used+w.n <= b.size && (best < 0 || w.n < b.waiters[best].n) {
				best = i
			}
		}
		if best < 0 {
			return
		}
		w := b.waiters[best]
		b.waiters = slices.Delete(b.waiters, best, best+1)
		b.used += w.n
		close(w.ready)
	}
}

// heldBody is a request body read into memory, with the room it holds in its budget until release.
type heldBody struct {
	data   []byte
	budget *byteBudget
	held   int64
	// wait is what is left of the body's time to wait for room.
	wait time.Duration
}

// release gives the body's room back; the body must not be used afterwards. It may be called again.
func (h *heldBody) release() {
	h.data = nil
	if h.held > 0 {
		h.budget.release(h.held)
		h.held = 0
	}
}

// hold grows the body's room to total bytes, waiting for what is left of its wait.
func (h *heldBody) hold(ctx context.Context, total int64) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, h.wait)
	defer cancel()
	err := h.budget.acquire(ctx, total-h.held)
	h.wait -= time.Since(start)
	if err != nil {
		return errBusy
	}
	h.held = total
	return nil
}

// read reads a request body of at most limit bytes (capped at the budget's size, and at
// contentLength when that is known, not -1), taking room only for bytes that arrived: each time its
// buffer is full it waits for the next byte, then grows the buffer and its room by growStep or a
// quarter of what it holds, whichever is more (a big body is copied a few times, not once per step).
// An idle connection thus holds no room, whatever length it declared. It returns errBodyTooLarge,
// errBusy or the reader's error; the caller releases the body.
func (b *byteBudget) read(ctx context.Context, r io.Reader, contentLength, limit int64) (*heldBody, error) {
	limit = min(limit, b.size)
	h := &heldBody{budget: b, wait: b.wait}
	if contentLength > limit {
		return h, errBodyTooLarge
	}
	if contentLength >= 0 {
		limit = contentLength
	}
	var buf []byte
	for {
		if len(buf) == cap(buf) {
			var next [1]byte
			_, err := io.ReadFull(r, next[:])
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return h, err
			}
			if int64(len(buf)) == limit {
				return h, errBodyTooLarge
			}
			grown := min(int64(len(buf))+max(growStep, int64(len(buf))/4), limit)
			if err := h.hold(ctx, grown); err != nil {
				return h, err
			}
			buf = append(append(make([]byte, 0, grown), buf...), next[0])
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return h, err
		}
	}
	h.data = buf
	return h, nil
}
