package poll

import "time"

// Settled reports whether the poller's loop sleeps until a time after now with no check or
// reconciliation running and nothing to wake it earlier, and returns when it wakes.
func (p *Poller) Settled(now time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// A check that ended just as the loop woke leaves the loop's old plan, later than the check's
	// next one.
	next := p.nextDue()
	return p.sleepUntil, p.sleepUntil.After(now) && len(p.busy) == 0 && len(p.wake) == 0 &&
		!(next.After(now) && next.Before(p.sleepUntil))
}
