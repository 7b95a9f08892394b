// Package clock is the source of time of the agent's background loops (the outbox, the poller), so
// that their tests can drive time themselves with clocktest.Fake.
package clock

import "time"

// Clock tells the time and wakes its caller at a time.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// At returns a channel that receives a value once t has come.
	At(t time.Time) <-chan time.Time
}

// System is the Clock of the real world.
type System struct{}

// Now returns time.Now().
func (System) Now() time.Time { return time.Now() }

// At returns a channel that receives once the real time reaches t.
func (System) At(t time.Time) <-chan time.Time { return time.After(time.Until(t)) }
