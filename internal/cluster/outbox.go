package cluster

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/miaobu/miaobu/internal/outbox"
	"github.com/miaobu/miaobu/internal/store"
)

// outboxLease is the lease key of the node that sends the outbox: one node at a time, so that a
// message is sent once (and again only if its sender dies before deleting it).
const outboxLease = "outbox"

// outboxWakeSubject is where a node tells the others it enqueued messages.
const outboxWakeSubject = "miaobu.outbox.enqueued"

// sender is this node's hold on the outbox lease.
type sender struct {
	mu    sync.Mutex
	lease *lease
	lost  atomic.Bool
}

// OnTransition makes the store enqueue what report makes of every change of a deployment's status
// from now on.
func (s *Store) OnTransition(report store.Reporter) { s.reporter.Store(&report) }

// OnNotify makes the store enqueue what fn makes of every event from now on.
func (s *Store) OnNotify(fn store.Notifier) { s.notifier.Store(&fn) }

// MessageEnqueued receives a value after messages have been enqueued on any node.
func (s *Store) MessageEnqueued() <-chan struct{} { return s.enqueued }

// signalEnqueued wakes this node's outbox worker without waiting for it.
func (s *Store) signalEnqueued() {
	select {
	case s.enqueued <- struct{}{}:
	default:
	}
}

// listenForEnqueued wakes this node's outbox worker when another node enqueues messages.
func (s *Store) listenForEnqueued() error {
	_, err := s.node.conn.Subscribe(outboxWakeSubject, func(*nats.Msg) { s.signalEnqueued() })
	return err
}

// EnqueueMessage durably adds m to the outbox and returns its id.
func (s *Store) EnqueueMessage(m outbox.Message) (int64, error) {
	ctx, cancel := opContext()
	defer cancel()
	err := s.enqueue(ctx, &m)
	return m.ID, unavailable(err)
}

// enqueue is EnqueueMessage with ctx.
func (s *Store) enqueue(ctx context.Context, m *outbox.Message) error {
	if err := m.Check(); err != nil {
		return err
	}
	id, err := s.nextID(ctx, "message")
	if err != nil {
		return err
	}
	m.ID, m.CreatedAt, m.Attempts, m.NextAttemptAt, m.LastError = id, time.Now().UTC(), 0, time.Time{}, ""
	if err := casJSON(ctx, s.outbox, idKey(id), m, 0); err != nil {
		return err
	}
	s.signalEnqueued()
	_ = s.node.conn.Publish(outboxWakeSubject, nil)
	return nil
}

// DueMessages returns the messages due at now, oldest first, as outbox.Store says; a node that does
// not hold the outbox lease (another node sends) gets none and is asked back within a third of
// the lease TTL, to take over if the sender dies.
func (s *Store) DueMessages(now time.Time, limit int, busy func(key string) bool) ([]outbox.Message, time.Time, error) {
	ctx, cancel := opContext()
	defer cancel()
	retry := now.Add(s.leaseTTL / 3)
	if held, err := s.holdOutbox(ctx); err != nil || !held {
		return nil, retry, unavailable(err)
	}
	keys, err := s.outbox.ListKeys(ctx)
	if err != nil {
		return nil, retry, unavailable(err)
	}
	var ids []int64
	for key := range keys.Keys() {
		if id, err := strconv.ParseInt(key, 10, 64); err == nil {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, cmp.Compare)
	pick := outbox.Picker{Now: now, Limit: limit, Busy: busy}
	for _, id := range ids {
		var m outbox.Message
		if _, err := getJSON(ctx, s.outbox, idKey(id), &m); err == nil {
			pick.Add(m)
		}
	}
	// While it holds the lease, the sender comes back at least as often as it must renew it.
	if pick.Next.IsZero() || pick.Next.After(retry) {
		pick.Next = retry
	}
	return pick.Due, pick.Next, nil
}

// holdOutbox reports whether this node holds the outbox lease, taking it if it is free.
func (s *Store) holdOutbox(ctx context.Context) (bool, error) {
	s.sender.mu.Lock()
	defer s.sender.mu.Unlock()
	if s.sender.lease != nil && s.sender.lost.Load() {
		s.drop(s.sender.lease)
		s.sender.lease = nil
	}
	if s.sender.lease != nil {
		return true, nil
	}
	s.sender.lost.Store(false)
	l, err := s.acquire(ctx, outboxLease, func() { s.sender.lost.Store(true) }, nil)
	if err != nil || l == nil {
		return false, err
	}
	s.sender.lease = l
	return true, nil
}

// Close gives the outbox lease up, if this node holds it, so that another node sends at once; the
// node is closed after.
func (s *Store) Close() {
	s.sender.mu.Lock()
	defer s.sender.mu.Unlock()
	if s.sender.lease != nil {
		s.drop(s.sender.lease)
		s.sender.lease = nil
	}
}

// RetryMessage records a failed attempt of message id with its error, to be tried again at next.
func (s *Store) RetryMessage(id int64, next time.Time, lastError string) error {
	ctx, cancel := opContext()
	defer cancel()
	for {
		var m outbox.Message
		rev, err := getJSON(ctx, s.outbox, idKey(id), &m)
		if err != nil {
			return err
		}
		m.Attempts++
		m.NextAttemptAt, m.LastError = next.UTC(), lastError
		if err := casJSON(ctx, s.outbox, idKey(id), &m, rev); !conflicted(err) {
			return unavailable(err)
		}
	}
}

// WakeMessages makes every message of kind that waits for a retry after now due at now, keeping
// its count of failed attempts.
func (s *Store) WakeMessages(kind string, now time.Time) error {
	return s.updateMessages(outbox.Wake(kind, now))
}

// CapRetries moves every message due later than now plus longest(its kind) to that time.
func (s *Store) CapRetries(now time.Time, longest func(kind string) time.Duration) error {
	return s.updateMessages(outbox.CapRetry(now, longest))
}

// updateMessages rewrites every message of the outbox that change changes (returning true), each
// by compare-and-set: a message tried again or deleted since it was read is left as it is.
func (s *Store) updateMessages(change func(m *outbox.Message) bool) error {
	ctx, cancel := opContext()
	defer cancel()
	keys, err := s.outbox.ListKeys(ctx)
	if err != nil {
		return unavailable(err)
	}
	for key := range keys.Keys() {
		var m outbox.Message
		rev, err := getJSON(ctx, s.outbox, key, &m)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return unavailable(err)
		}
		if !change(&m) {
			continue
		}
		if err := casJSON(ctx, s.outbox, key, &m, rev); err != nil && !conflicted(err) {
			return unavailable(err)
		}
	}
	return nil
}

// DeleteMessage removes message id from the outbox; removing a message that is gone is no error.
func (s *Store) DeleteMessage(id int64) error {
	ctx, cancel := opContext()
	defer cancel()
	err := s.outbox.Delete(ctx, idKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return unavailable(err)
}

// transition enqueues the reports and notifications of deployment d's new status. Unlike on a
// single agent, they are written after the change, not with it: a node that dies in between
// loses them.
func (s *Store) transition(ctx context.Context, d *store.Deployment) {
	report, notifier := s.reporter.Load(), s.notifier.Load()
	if report == nil && notifier == nil {
		return
	}
	r, _, err := s.record(ctx, d.ProjectID)
	if err != nil {
		s.log.Warn("cluster: reporting a deployment", "deployment", d.ID, "err", err)
		return
	}
	var messages []outbox.Message
	if report != nil {
		messages = (*report)(r.Project, *d)
	}
	if notifier != nil {
		names, err := store.EventsOf(d, func() (bool, error) { return s.previousFailed(ctx, r, d) })
		targets, terr := s.notificationTargets(ctx, len(names))
		if err = cmp.Or(err, terr); err != nil {
			s.log.Warn("cluster: notifying of a deployment", "deployment", d.ID, "err", err)
		}
		for _, name := range names {
			e := store.Event{Name: name, Project: r.Project, Deployment: *d, At: time.Now().UTC()}
			for _, n := range targets {
				if n.Wants(e) {
					messages = append(messages, (*notifier)(*n, e))
				}
			}
		}
	}
	for _, m := range messages {
		if err := s.enqueue(ctx, &m); err != nil {
			s.log.Warn("cluster: enqueueing a report", "deployment", d.ID, "kind", m.Kind, "err", err)
		}
	}
}

// notificationTargets returns every notification target when there are events to tell.
func (s *Store) notificationTargets(ctx context.Context, events int) ([]*store.Notification, error) {
	if events == 0 {
		return nil, nil
	}
	return s.notificationsWith(ctx)
}

// previousFailed reports whether the newest deployment of d's alias before d that succeeded or
// failed, failed.
func (s *Store) previousFailed(ctx context.Context, r *projectRecord, d *store.Deployment) (bool, error) {
	for i := len(r.History) - 1; i >= 0; i-- {
		if r.History[i] >= d.ID {
			continue
		}
		prev, _, err := s.deployment(ctx, r.History[i])
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		if failed, settled := d.Settled(prev); settled {
			return failed, nil
		}
	}
	return false, nil
}
