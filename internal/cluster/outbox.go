package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	batch := []outbox.Message{*m}
	if err := s.number(ctx, batch); err != nil {
		return err
	}
	*m = batch[0]
	return s.copyToOutbox(ctx, batch)
}

// batchBits is how many low bits of a message id number the messages of one batch: a batch takes
// one id of kind "message" and its messages are that id shifted left by batchBits plus their
// index, so that ids keep the order of batches, and a batch's ids are known before it is written.
const batchBits = 16

// number checks the messages of one batch and gives them their ids, in order, and their creation
// time; it takes the batch's id, so a batch numbered after another's change was read sorts after
// that change's batch.
func (s *Store) number(ctx context.Context, batch []outbox.Message) error {
	if len(batch) == 0 {
		return nil
	}
	if len(batch) > 1<<batchBits {
		return fmt.Errorf("%d outbox messages at once: at most %d", len(batch), 1<<batchBits)
	}
	for i := range batch {
		if err := batch[i].Check(); err != nil {
			return err
		}
	}
	id, err := s.nextID(ctx, "message")
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	for i := range batch {
		m := &batch[i]
		m.ID, m.CreatedAt, m.Attempts, m.NextAttemptAt, m.LastError = id<<batchBits+int64(i), now, 0, time.Time{}, ""
	}
	return nil
}

// copyToOutbox writes numbered messages to the outbox, each only if its id was never written: a
// message copied before is there already, or was sent and deleted, and its delete marker keeps its
// id taken, so copying a batch again adds nothing and sends nothing twice.
func (s *Store) copyToOutbox(ctx context.Context, batch []outbox.Message) error {
	for _, m := range batch {
		data, err := json.Marshal(m)
		if err != nil {
			return err
		}
		err = whileElecting(ctx, func() error {
			// Revision 0 expects no entry at all, not even a delete marker (Create would accept one).
			_, err := s.outbox.Update(ctx, idKey(m.ID), data, 0)
			return err
		})
		if err != nil && !conflicted(err) {
			return err
		}
	}
	if len(batch) > 0 {
		s.signalEnqueued()
		_ = s.node.conn.Publish(outboxWakeSubject, nil)
	}
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

// transitionMessages returns, numbered, the reports and notifications of deployment d's new
// status: they are written on d's record by the change itself, then copied to the outbox (see
// changeStatus), so that they are sent exactly when the change is made. r is d's project's record
// when the caller has it (a new deployment's, as its creation wrote it), nil to read it.
func (s *Store) transitionMessages(ctx context.Context, d *store.Deployment, r *projectRecord) ([]outbox.Message, error) {
	report, notifier := s.reporter.Load(), s.notifier.Load()
	if report == nil && notifier == nil {
		return nil, nil
	}
	if r == nil {
		var err error
		r, _, err = s.record(ctx, d.ProjectID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil // the project was deleted: there is nobody left to tell
		}
		if err != nil {
			return nil, err
		}
	}
	var messages []outbox.Message
	if report != nil {
		messages = (*report)(r.Project, *d)
	}
	if notifier != nil {
		names, err := store.EventsOf(d, func() (bool, error) { return s.previousFailed(ctx, r, d) })
		if err != nil {
			return nil, err
		}
		targets, err := s.notificationTargets(ctx, len(names))
		if err != nil {
			return nil, err
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
	return messages, s.number(ctx, messages)
}

// changeStatus applies change, which changes a deployment's status, and writes the messages of the
// new status on the deployment's record in the same compare-and-set; it then copies them to the
// outbox and clears them from the record. A node that dies in between leaves them on the record,
// where the reconciler finds them (see Reconcile).
func (s *Store) changeStatus(ctx context.Context, id int64, change func(d *store.Deployment) error) (*store.Deployment, error) {
	rec, err := s.changeDeploymentRecord(ctx, id, func(rec *deploymentRecord) error {
		if err := change(&rec.Deployment); err != nil {
			return err
		}
		messages, err := s.transitionMessages(ctx, &rec.Deployment, nil)
		rec.Unsent = append(rec.Unsent, messages...)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.sendUnsent(ctx, rec)
	return &rec.Deployment, nil
}

// sendUnsent copies the messages left on a deployment's record to the outbox and clears them from
// the record; on failure it logs, and the reconciler tries again.
func (s *Store) sendUnsent(ctx context.Context, rec *deploymentRecord) {
	if len(rec.Unsent) == 0 || s.dieAfterChange.Load() {
		return
	}
	err := s.copyToOutbox(ctx, rec.Unsent)
	if err == nil {
		last := rec.Unsent[len(rec.Unsent)-1].ID
		_, err = s.changeDeploymentRecord(ctx, rec.ID, func(rec *deploymentRecord) error {
			rec.Unsent = slices.DeleteFunc(rec.Unsent, func(m outbox.Message) bool { return m.ID <= last })
			return nil
		})
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("cluster: enqueueing the reports of a deployment", "deployment", rec.ID, "err", err)
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
