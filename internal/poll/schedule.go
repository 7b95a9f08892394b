package poll

import (
	"math/rand/v2"
	"time"
)

// jitter is the fraction of the interval by which each check moves at random either way, so that
// projects polled together drift apart.
const jitter = 0.1

// maxBackoff is the longest wait after failed checks, unless the interval is longer.
const maxBackoff = 30 * time.Minute

// slot is the schedule of one polled project and what its last checks found.
type slot struct {
	// base is the unjittered time of the project's next regular check: its phase in the interval.
	base time.Time
	// next is when the next check is due.
	next time.Time
	// failures counts the checks that failed in a row.
	failures int
	// github reports that the project is read through the GitHub API.
	github    bool
	lastPoll  time.Time
	lastError string
}

// newSlot returns the slot of a project whose first check is due at first.
func newSlot(first time.Time) *slot {
	return &slot{base: first, next: first}
}

// schedule sets the next check to the project's first regular check after t (its phase, jittered).
func (s *slot) schedule(t time.Time, interval time.Duration) {
	spread := time.Duration(float64(interval) * jitter)
	if n := t.Sub(s.base.Add(-spread)); n >= 0 {
		s.base = s.base.Add((n/interval + 1) * interval)
	}
	s.next = s.base.Add(time.Duration(float64(spread) * (2*rand.Float64() - 1)))
}

// record records the outcome of a look at the project's heads at now, err nil for a success.
func (s *slot) record(now time.Time, err error) {
	if err != nil {
		s.lastError = err.Error()
		return
	}
	s.lastPoll, s.lastError = now, ""
}

// succeeded records a successful check at now and schedules the next one.
func (s *slot) succeeded(now time.Time, interval time.Duration) {
	s.record(now, nil)
	s.failures = 0
	s.schedule(now, interval)
}

// failed records a check that failed at now with err: the next check waits twice as long after each
// failure in a row, up to maxBackoff, and at least until pausedUntil (a rate limit's reset).
func (s *slot) failed(now time.Time, interval time.Duration, err error, pausedUntil time.Time) {
	s.record(now, err)
	s.failures++
	if pausedUntil.After(now) {
		s.schedule(pausedUntil, interval)
		return
	}
	wait := min(interval<<min(s.failures, 16), max(maxBackoff, interval))
	s.next = now.Add(time.Duration(float64(wait) * (1 + jitter*(2*rand.Float64()-1))))
}
