package store

import (
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/miaobu/miaobu/internal/outbox"
)

// The store keeps the outbox on one agent.
var _ outbox.Store = (*Store)(nil)

// EnqueueMessage durably adds m to the outbox and returns its id; the outbox worker is woken once
// it is on disk.
func (s *Store) EnqueueMessage(m outbox.Message) (int64, error) {
	err := s.db.Update(func(tx *bolt.Tx) error { return s.enqueue(tx, &m, time.Now().UTC()) })
	return m.ID, err
}

// enqueue adds m to the outbox inside tx, for a change whose report must commit with it (a
// deployment's new state and its status on GitHub); it sets m's id and wakes the worker when tx commits.
func (s *Store) enqueue(tx *bolt.Tx, m *outbox.Message, now time.Time) error {
	if err := m.Check(); err != nil {
		return err
	}
	b := bucket(tx, outboxBucket)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	m.ID, m.CreatedAt, m.Attempts, m.NextAttemptAt, m.LastError = int64(seq), now, 0, time.Time{}, ""
	tx.OnCommit(s.signalEnqueued)
	return put(b, itob(m.ID), m)
}

// signalEnqueued wakes the outbox worker without waiting for it: one pending wake-up covers any
// number of messages.
func (s *Store) signalEnqueued() {
	select {
	case s.enqueued <- struct{}{}:
	default:
	}
}

// MessageEnqueued receives a value after messages have been enqueued.
func (s *Store) MessageEnqueued() <-chan struct{} { return s.enqueued }

// DueMessages returns up to limit (no limit when limit <= 0) messages due at now, oldest first, of
// only the oldest message of each key and skipping the keys busy reports (nil: none); next is the
// earliest time another of those oldest messages falls due, zero when none waits.
func (s *Store) DueMessages(now time.Time, limit int, busy func(key string) bool) (due []outbox.Message, next time.Time, err error) {
	pick := outbox.Picker{Now: now, Limit: limit, Busy: busy}
	err = s.db.View(func(tx *bolt.Tx) error {
		return iterate(bucket(tx, outboxBucket), nil, func(_ []byte, m outbox.Message) (bool, error) {
			pick.Add(m)
			return true, nil
		})
	})
	return pick.Due, pick.Next, err
}

// RetryMessage records a failed attempt of message id with its error, to be tried again at next.
func (s *Store) RetryMessage(id int64, next time.Time, lastError string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := bucket(tx, outboxBucket)
		var m outbox.Message
		if err := get(b, itob(id), &m); err != nil {
			return err
		}
		m.Attempts++
		m.NextAttemptAt, m.LastError = next.UTC(), lastError
		return put(b, itob(id), &m)
	})
}

// DeleteMessage removes message id from the outbox; removing a message that is gone is no error.
func (s *Store) DeleteMessage(id int64) error {
	return s.db.Update(func(tx *bolt.Tx) error { return bucket(tx, outboxBucket).Delete(itob(id)) })
}

// WakeMessages makes every message of kind that waits for a retry after now due at now, keeping
// its count of failed attempts.
func (s *Store) WakeMessages(kind string, now time.Time) error {
	return s.updateMessages(outbox.Wake(kind, now))
}

// CapRetries moves every message due later than now plus longest(its kind) to that time: a wait
// recorded from a bogus answer (a rate limit said to reset years ahead) or a changed schedule
// ends within what the worker would wait today.
func (s *Store) CapRetries(now time.Time, longest func(kind string) time.Duration) error {
	return s.updateMessages(outbox.CapRetry(now, longest))
}

// updateMessages rewrites, in one transaction, every message of the outbox that change changes
// (returning true); it writes nothing when change changes none.
func (s *Store) updateMessages(change func(m *outbox.Message) bool) error {
	var changed []outbox.Message
	err := s.db.View(func(tx *bolt.Tx) error {
		return iterate(bucket(tx, outboxBucket), nil, func(_ []byte, m outbox.Message) (bool, error) {
			if change(&m) {
				changed = append(changed, m)
			}
			return true, nil
		})
	})
	if err != nil || len(changed) == 0 {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := bucket(tx, outboxBucket)
		for _, m := range changed {
			var current outbox.Message
			switch err := get(b, itob(m.ID), &current); {
			case errors.Is(err, ErrNotFound):
				continue // sent or given up since it was read
			case err != nil:
				return err
			case current.Attempts != m.Attempts:
				continue // tried again since it was read: its new time stands
			}
			if err := put(b, itob(m.ID), &m); err != nil {
				return err
			}
		}
		return nil
	})
}
