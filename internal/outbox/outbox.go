// Package outbox owns the sending of what must leave the agent durably (reports to GitHub,
// notifications): the message kept in the store until it is sent, the storage it needs, and the
// Worker that sends due messages and retries failed ones on a schedule.
package outbox

import (
	"encoding/json"
	"errors"
	"time"
)

// Message is one report or notification kept in the outbox until it is sent or given up.
type Message struct {
	// ID is given by the store in the order messages are enqueued.
	ID int64 `json:"id"`
	// Kind chooses the Sender, such as "github.status".
	Kind string `json:"kind"`
	// Key groups messages that go out in order, such as "deployment:42": of each key, only the oldest
	// message is sent, and the next one waits until it is sent or given up.
	Key string `json:"key"`
	// Payload is the JSON document the Sender reads.
	Payload json.RawMessage `json:"payload"`
	// Attempts counts the failed attempts so far.
	Attempts int `json:"attempts"`
	// NextAttemptAt is when a failed message is tried again; zero for one never tried, due at once.
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	CreatedAt     time.Time `json:"created_at"`
	LastError     string    `json:"last_error,omitempty"`
}

// Check refuses a message that cannot be enqueued: without a kind or a key, or whose payload is
// not JSON.
func (m *Message) Check() error {
	switch {
	case m.Kind == "" || m.Key == "":
		return errors.New("an outbox message needs a kind and a key")
	case !json.Valid(m.Payload):
		return errors.New("an outbox message's payload must be JSON")
	}
	return nil
}

// Picker chooses the due messages among a store's messages, given oldest first: only the oldest
// message of each key is considered, skipping the keys busy reports (nil: none).
type Picker struct {
	Now   time.Time
	Limit int
	Busy  func(key string) bool
	// Due are the messages due at Now, at most Limit (no limit when Limit <= 0); Next is the
	// earliest time another of the oldest messages falls due, zero when none waits.
	Due  []Message
	Next time.Time
	seen map[string]bool
}

// Add considers the next message, oldest first.
func (p *Picker) Add(m Message) {
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	if p.seen[m.Key] {
		return // behind an older message of its key
	}
	p.seen[m.Key] = true
	switch {
	case p.Busy != nil && p.Busy(m.Key):
	case !m.NextAttemptAt.After(p.Now):
		if p.Limit <= 0 || len(p.Due) < p.Limit {
			p.Due = append(p.Due, m)
		}
	case p.Next.IsZero() || m.NextAttemptAt.Before(p.Next):
		p.Next = m.NextAttemptAt
	}
}

// Store keeps the outbox: the agent's bbolt store, or a replicated store in a cluster.
type Store interface {
	// DueMessages returns up to limit (no limit when limit <= 0) messages due at now, oldest first,
	// considering only the oldest message of each key and skipping the keys busy reports (nil: none);
	// next is the earliest time another of those oldest messages falls due, zero when none waits.
	DueMessages(now time.Time, limit int, busy func(key string) bool) (due []Message, next time.Time, err error)
	// RetryMessage records a failed attempt of message id with its error, to be tried again at next.
	RetryMessage(id int64, next time.Time, lastError string) error
	// DeleteMessage removes message id, sent or given up; removing a message that is gone is no error.
	DeleteMessage(id int64) error
	// MessageEnqueued receives a value after messages have been enqueued, to wake the Worker.
	MessageEnqueued() <-chan struct{}
	// WakeMessages makes every message of kind that waits for a retry after now due at now.
	WakeMessages(kind string, now time.Time) error
	// CapRetries moves every message due later than now plus longest(its kind) to that time.
	CapRetries(now time.Time, longest func(kind string) time.Duration) error
}

// Wake returns the change a store's WakeMessages applies to each message: one of kind that waits
// for a retry after now becomes due at now, keeping its count of failed attempts.
func Wake(kind string, now time.Time) func(m *Message) bool {
	return func(m *Message) bool {
		if m.Kind != kind || !m.NextAttemptAt.After(now) {
			return false
		}
		m.NextAttemptAt = now.UTC()
		return true
	}
}

// CapRetry returns the change a store's CapRetries applies to each message: one due later than now
// plus longest(its kind) becomes due then, so that a wait recorded from a bogus answer (a rate
// limit said to reset years ahead) or a changed schedule ends within what the Worker waits today.
func CapRetry(now time.Time, longest func(kind string) time.Duration) func(m *Message) bool {
	return func(m *Message) bool {
		latest := now.Add(longest(m.Kind))
		if !m.NextAttemptAt.After(latest) {
			return false
		}
		m.NextAttemptAt = latest.UTC()
		return true
	}
}
