// Package clocktest is a clock.Clock for tests that moves only when the test advances it.
package clocktest

import (
	"slices"
	"sync"
	"time"
)

// Fake is a clock.Clock that moves only when Advance is called; it is safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	// asleep receives a value each time a caller starts waiting for a time still to come.
	asleep chan struct{}
}

// waiter is a channel At returned, to receive once the clock reaches at.
type waiter struct {
	at time.Time
	ch chan time.Time
}

// New returns a Fake that shows start.
func New(start time.Time) *Fake {
	return &Fake{now: start, asleep: make(chan struct{}, 1024)}
}

// Now returns the time the Fake shows.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// At returns a channel that receives once the Fake shows t or later: at once when it does already.
func (c *Fake) At(t time.Time) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if !t.After(c.now) {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{t, ch})
	select {
	case c.asleep <- struct{}{}:
	default:
	}
	return ch
}

// Advance moves the Fake by d and wakes the waiters whose time has come.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.waiters = slices.DeleteFunc(c.waiters, func(w waiter) bool {
		if w.at.After(c.now) {
			return false
		}
		w.ch <- c.now
		return true
	})
}

// Next returns the earliest time a caller of At waits for, false when none waits.
func (c *Fake) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.waiters) == 0 {
		return time.Time{}, false
	}
	return slices.MinFunc(c.waiters, func(a, b waiter) int { return a.at.Compare(b.at) }).at, true
}

// Asleep receives a value each time a caller of At starts waiting for a time still to come: a loop
// that waits on the Fake between rounds has finished its round when it receives.
func (c *Fake) Asleep() <-chan struct{} { return c.asleep }
