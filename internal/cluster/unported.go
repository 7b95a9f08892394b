package cluster

import (
	"io"
	"time"

	"github.com/miaobu/miaobu/internal/outbox"
	"github.com/miaobu/miaobu/internal/store"
)

// The outbox (reports to GitHub and notifications) does not run on a cluster yet: EnqueueMessage
// drops what it is given, so there is never a message due, and the hooks that make messages of a
// deployment's changes are not called.

// EnqueueMessage drops a message for GitHub or a notification target, with a debug line.
func (s *Store) EnqueueMessage(m outbox.Message) (int64, error) {
	s.log.Debug("cluster: outbox message dropped (the outbox runs on a single agent only)", "kind", m.Kind, "key", m.Key)
	return 0, nil
}

// DueMessages returns no message: nothing is enqueued on a cluster yet.
func (s *Store) DueMessages(time.Time, int, func(key string) bool) ([]outbox.Message, time.Time, error) {
	return nil, time.Time{}, nil
}

// RetryMessage has no message to retry.
func (s *Store) RetryMessage(int64, time.Time, string) error { return nil }

// DeleteMessage has no message to delete.
func (s *Store) DeleteMessage(int64) error { return nil }

// MessageEnqueued never receives: nothing is enqueued on a cluster yet.
func (s *Store) MessageEnqueued() <-chan struct{} { return nil }

// OnTransition keeps no reporter: deployments are not reported to GitHub from a cluster yet.
func (s *Store) OnTransition(store.Reporter) {}

// OnNotify keeps no notifier: notification targets are not told of events from a cluster yet.
func (s *Store) OnNotify(store.Notifier) {}

// Backup refuses: a cluster's state is in JetStream, replicated on three nodes, not in one file.
func (s *Store) Backup(func(size int64) io.Writer) error { return errNotClustered }
