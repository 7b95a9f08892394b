package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/miaobu/miaobu/internal/store"
)

// claim is a build this node runs: the epoch of its claim in the project's record, and the lease
// on the project it renews.
type claim struct {
	id    atomic.Int64
	epoch int64
	lease *lease
	// lost says the lease or the claim was taken over: the build must stop and not go live.
	lost atomic.Bool
}

// lease is a key of the leases bucket held by this node while it renews it.
type lease struct {
	key string
	rev atomic.Uint64
	// held, when set, is asked after each renewal whether what the lease is for still holds.
	held func(ctx context.Context) bool
	stop chan struct{}
	done chan struct{}
}

// projectLease is the lease key of a project's builds.
func projectLease(projectID int64) string { return "project." + strconv.FormatInt(projectID, 10) }

// reconcilerLease is the lease key of the node that reconciles.
const reconcilerLease = "reconciler"

// acquire takes the lease key for this node; it returns nil when another node holds it. lost is
// called once, on a goroutine of its own, if the lease is lost, or if held (nil: always) says after
// a renewal that what the lease is for no longer holds.
func (s *Store) acquire(ctx context.Context, key string, lost func(), held func(ctx context.Context) bool) (*lease, error) {
	rev, err := s.leases.Create(ctx, key, []byte(s.node.name))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	l := &lease{key: key, held: held, stop: make(chan struct{}), done: make(chan struct{})}
	l.rev.Store(rev)
	go s.renew(l, lost)
	return l, nil
}

// renew renews l every third of the lease TTL until it is released, and calls lost (once) when a
// renewal finds the lease gone or taken.
func (s *Store) renew(l *lease, lost func()) {
	defer close(l.done)
	tick := time.NewTicker(s.leaseTTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := opContext()
		rev, err := s.leases.Update(ctx, l.key, []byte(s.node.name), l.rev.Load())
		stillHeld := err != nil || l.held == nil || l.held(ctx)
		cancel()
		// lost runs on its own: it may wait for a lock whose holder waits in drop for this loop
		// to end (a build worker giving back a claim while its lease is found lost).
		switch {
		case !stillHeld:
			go lost()
			return
		case err == nil:
			l.rev.Store(rev)
		case conflicted(err) || errors.Is(err, jetstream.ErrKeyNotFound):
			s.log.Warn("cluster: a lease was lost", "lease", l.key)
			go lost()
			return
		default:
			// No quorum: try again; the lease expires by itself if this lasts.
			s.log.Warn("cluster: renewing a lease", "lease", l.key, "err", err)
		}
	}
}

// drop stops renewing l and deletes it if it is still this node's.
func (s *Store) drop(l *lease) {
	close(l.stop)
	<-l.done
	ctx, cancel := opContext()
	defer cancel()
	_ = s.leases.Delete(ctx, l.key, jetstream.LastRevision(l.rev.Load()))
}

// claimOf returns this node's claim of a deployment's build, nil when it runs none.
func (s *Store) claimOf(id int64) *claim {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claims[id]
}

// release forgets this node's claim of a deployment and drops its lease.
func (s *Store) release(id int64) {
	s.mu.Lock()
	c := s.claims[id]
	delete(s.claims, id)
	s.mu.Unlock()
	if c != nil {
		s.drop(c.lease)
	}
}

// jobSubject is the subject of the build token of a project's alias ("_" for production).
func jobSubject(projectID int64, alias string) string {
	return fmt.Sprintf("jobs.%d.%s", projectID, cmp.Or(alias, "_"))
}

// parseJobSubject returns the project and alias of a build token's subject.
func parseJobSubject(subject string) (int64, string, bool) {
	parts := strings.SplitN(subject, ".", 3)
	if len(parts) != 3 || parts[0] != "jobs" {
		return 0, "", false
	}
	id, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return 0, "", false
	}
	alias := parts[2]
	if alias == "_" {
		alias = ""
	}
	return id, alias, true
}

// publishToken hands the workers a token to build a project's alias; a token waiting for the same
// alias is replaced (latest wins).
func (s *Store) publishToken(ctx context.Context, projectID int64, alias string) error {
	_, err := s.node.js.Publish(ctx, jobSubject(projectID, alias), nil)
	return err
}

// Wakeups calls wake whenever a build token is published anywhere in the cluster, until the
// returned function is called.
func (s *Store) Wakeups(wake func()) (func(), error) {
	sub, err := s.node.conn.Subscribe("jobs.>", func(*nats.Msg) { wake() })
	if err != nil {
		return nil, err
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// tokenRetry is how soon a token whose project is being built elsewhere is offered again.
const tokenRetry = time.Second

// unwrittenRetry is how soon a token is offered again after its deployment's record was found not
// written yet.
const unwrittenRetry = 100 * time.Millisecond

// unclaim moves deployment id of a project from running back to queued in the project's record,
// if this node's claim of it (epoch) still holds, or drops it when a newer deployment of its alias
// came meanwhile (latest wins: the reconciler ends its record, once written, superseded);
// store.ErrFinished when the claim no longer holds.
func (s *Store) unclaim(ctx context.Context, projectID, id, epoch int64) error {
	_, err := s.changeRecord(ctx, projectID, func(r *projectRecord) error {
		sl, ok := r.Running[id]
		if !ok || sl.Epoch != epoch {
			return store.ErrFinished
		}
		r.Epoch++
		if r.newerThan(id, sl.Alias) != 0 {
			r.finish(id)
			return nil
		}
		delete(r.Running, id)
		r.Queued[id] = slot{Alias: sl.Alias, SHA: sl.SHA}
		return nil
	})
	return err
}

// OnLeaseLost makes the store call fn with the deployment of every build of this node whose lease or
// claim is taken over from now on: the build must stop, and cannot go live.
func (s *Store) OnLeaseLost(fn func(deploymentID int64)) { s.leaseLost.Store(&fn) }

// ClaimNext takes a build token, if one waits, and the lease of its project, and marks the oldest
// queued deployment of the token's alias running on this node with a new epoch; it returns nil
// when there is nothing to build now, or the token's project is one busy reports.
func (s *Store) ClaimNext(busy func(projectID int64) bool) (*store.Deployment, error) {
	ctx, cancel := opContext()
	defer cancel()
	batch, err := s.builders.FetchNoWait(1)
	if err != nil {
		return nil, unavailable(err)
	}
	for msg := range batch.Messages() {
		return s.claimToken(ctx, msg, busy)
	}
	return nil, unavailable(batch.Error())
}

// claimToken is ClaimNext of one token.
func (s *Store) claimToken(ctx context.Context, msg jetstream.Msg, busy func(projectID int64) bool) (*store.Deployment, error) {
	projectID, alias, ok := parseJobSubject(msg.Subject())
	if !ok {
		return nil, msg.Term()
	}
	if busy(projectID) {
		return nil, msg.NakWithDelay(tokenRetry)
	}
	c := &claim{}
	l, err := s.acquire(ctx, projectLease(projectID), func() {
		c.lost.Store(true)
		if fn := s.leaseLost.Load(); fn != nil && c.id.Load() != 0 {
			(*fn)(c.id.Load())
		}
	}, func(ctx context.Context) bool {
		// The build is still this node's while its claim is the record's: a cancel through any
		// node, or a takeover, ends it within a renewal.
		id := c.id.Load()
		if id == 0 {
			return true
		}
		r, _, err := s.record(ctx, projectID)
		return err != nil || r.Running[id].Epoch == c.epoch
	})
	if err != nil {
		_ = msg.Nak()
		return nil, unavailable(err)
	}
	if l == nil {
		// Another node builds this project: offer the token again soon.
		return nil, msg.NakWithDelay(tokenRetry)
	}
	var id, epoch int64
	_, err = s.changeRecord(ctx, projectID, func(r *projectRecord) error {
		id = 0
		for _, queued := range sortedIDs(r.Queued) {
			if r.Queued[queued].Alias == alias {
				id = queued
				break
			}
		}
		if id == 0 {
			return nil
		}
		r.Epoch++
		epoch = r.Epoch
		sl := r.Queued[id]
		sl.Node, sl.Epoch = s.node.name, epoch
		delete(r.Queued, id)
		r.Running[id] = sl
		return nil
	})
	if err != nil || id == 0 {
		s.drop(l)
		if errors.Is(err, store.ErrNotFound) || id == 0 {
			return nil, msg.Ack() // the project is gone, or its queue was emptied meanwhile
		}
		_ = msg.Nak()
		return nil, unavailable(err)
	}
	c.epoch, c.lease = epoch, l
	s.mu.Lock()
	s.claims[id] = c
	s.mu.Unlock()
	c.id.Store(id)
	now := time.Now().UTC()
	d, err := s.changeStatus(ctx, id, func(d *store.Deployment) error {
		if d.Terminal() {
			return store.ErrFinished
		}
		d.Status, d.StartedAt, d.FinishedAt, d.BuildTimeSeconds, d.ErrorMessage = store.StatusCloning, &now, nil, nil, ""
		d.Node = s.node.name
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		// Queued in its project's record by a push whose node writes the deployment's own record
		// just after: queued again, for the token offered again in a moment.
		if err := s.unclaim(ctx, projectID, id, epoch); err != nil && !errors.Is(err, store.ErrFinished) {
			s.log.Warn("cluster: giving back the claim of a deployment not written yet", "deployment", id, "err", err)
		}
		s.release(id)
		return nil, msg.NakWithDelay(unwrittenRetry)
	}
	if err != nil {
		s.requeueOrDrop(id)
		_ = msg.Nak()
		return nil, unavailable(err)
	}
	// The claim is in the record now: the reconciler takes it over if this node dies.
	_ = msg.Ack()
	return d, nil
}

// requeueOrDrop gives up a claim that could not start.
func (s *Store) requeueOrDrop(id int64) {
	if err := s.Requeue(id); err != nil {
		s.log.Warn("cluster: giving a claim back", "deployment", id, "err", err)
		s.release(id)
	}
}

// Requeue puts a deployment whose build here was interrupted by a shutdown back in the queue, or
// cancels it when a newer deployment of its alias is queued.
func (s *Store) Requeue(id int64) error {
	ctx, cancel := opContext()
	defer cancel()
	// Released even when the deployment cannot be read: its lease then expires and another node
	// builds it, instead of this node renewing the lease of a build it no longer runs.
	c := s.claimOf(id)
	defer s.release(id)
	d, _, err := s.deployment(ctx, id)
	if err != nil {
		return err
	}
	return unavailable(s.requeue(ctx, d, func(r *projectRecord) bool { return c == nil || r.Running[id].Epoch == c.epoch }, false))
}

// requeue moves running deployment d back to its project's queue if held says its claim is still
// the record's (cancelling it when a newer deployment of its alias is queued); counting, it is one
// more interrupted attempt, and a second one fails it.
func (s *Store) requeue(ctx context.Context, d *store.Deployment, held func(r *projectRecord) bool, counting bool) error {
	var outcome store.Status
	var message string
	_, err := s.changeRecord(ctx, d.ProjectID, func(r *projectRecord) error {
		outcome, message = "", ""
		sl, ok := r.Running[d.ID]
		if !ok || !held(r) {
			return store.ErrFinished
		}
		if newer := r.newerThan(d.ID, d.Alias); newer != 0 {
			outcome, message = store.StatusCancelled, fmt.Sprintf("superseded by #%d", newer)
		}
		if outcome == "" && counting && d.Attempts >= 1 {
			outcome, message = store.StatusFailed, "the node building this deployment stopped twice; deploy again to retry"
		}
		if outcome != "" {
			r.finish(d.ID)
			return nil
		}
		r.Epoch++ // fences out the build that held it
		delete(r.Running, d.ID)
		r.Queued[d.ID] = slot{Alias: sl.Alias, SHA: sl.SHA}
		return nil
	})
	if err != nil {
		return err
	}
	if outcome != "" {
		_, err := s.endDeployment(ctx, d.ID, outcome, message, false)
		return err
	}
	d, err = s.changeStatus(ctx, d.ID, func(d *store.Deployment) error {
		d.Status, d.StartedAt, d.Node = store.StatusQueued, nil, ""
		if counting {
			d.Attempts++
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.publishToken(ctx, d.ProjectID, d.Alias)
}

// RecoverInterrupted runs at start: the deployments the record says this node was building when
// it stopped are queued again once, and fail on a second interruption; it returns them.
// While the cluster settles at start (leaders being elected) it tries again for up to a minute.
func (s *Store) RecoverInterrupted() ([]*store.Deployment, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var touched []*store.Deployment
	err := s.retry(ctx, "recovering the deployments this node was building", func(ctx context.Context) (err error) {
		touched, err = s.takeOver(ctx, func(sl slot, _ bool) bool { return sl.Node == s.node.name })
		return err
	})
	return touched, unavailable(err)
}

// takeOver queues again the running deployments that orphaned reports orphaned (given whether
// their project's lease is held), and returns them as they are after.
func (s *Store) takeOver(ctx context.Context, orphaned func(sl slot, leased bool) bool) ([]*store.Deployment, error) {
	records, err := s.records(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	var touched []*store.Deployment
	for _, r := range records {
		if len(r.Running) == 0 {
			continue
		}
		_, err := s.leases.Get(ctx, projectLease(r.Project.ID))
		leased := err == nil
		for id, sl := range r.Running {
			if !orphaned(sl, leased) {
				continue
			}
			d, _, err := s.deployment(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				continue // not written yet, or never: the reconciler drops it (see dropUnwritten)
			}
			if err != nil {
				return touched, unavailable(err)
			}
			epoch := sl.Epoch
			err = s.requeue(ctx, d, func(r *projectRecord) bool { return r.Running[id].Epoch == epoch }, true)
			if errors.Is(err, store.ErrFinished) {
				continue
			}
			if err != nil {
				return touched, unavailable(err)
			}
			if d, _, err = s.deployment(ctx, id); err == nil {
				touched = append(touched, d)
			}
		}
	}
	return touched, nil
}

// Reconcile runs on one node at a time (the holder of the reconciler lease), every third of the
// lease TTL until ctx ends: it queues again the builds whose node lost its project's lease (it
// died, or was cut off), hands a token again to every alias with queued deployments, for a node
// that died between recording a deployment and publishing its token, and copies to the outbox the
// messages that a node which died right after a change left on the record it changed.
func (s *Store) Reconcile(ctx context.Context) {
	tick := time.NewTicker(s.leaseTTL / 3)
	defer tick.Stop()
	var held *lease
	var lost atomic.Bool
	defer func() {
		if held != nil {
			s.drop(held)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if held != nil && lost.Load() {
			s.drop(held)
			held = nil
		}
		if held == nil {
			octx, cancel := opContext()
			lost.Store(false)
			l, err := s.acquire(octx, reconcilerLease, func() { lost.Store(true) }, nil)
			cancel()
			if err != nil || l == nil {
				continue
			}
			held = l
		}
		if err := s.reconcileOnce(ctx); err != nil {
			s.log.Warn("cluster: reconciling the build queue", "err", err)
		}
	}
}

// reconcileOnce is one pass of Reconcile.
func (s *Store) reconcileOnce(ctx context.Context) error {
	octx, cancel := context.WithTimeout(ctx, 3*opTimeout)
	defer cancel()
	touched, err := s.takeOver(octx, func(_ slot, leased bool) bool { return !leased })
	for _, d := range touched {
		s.log.Warn("cluster: build taken over from a node that lost its lease", "project", d.ProjectID, "deployment", d.ID, "status", d.Status)
	}
	if err != nil {
		return err
	}
	records, err := s.records(octx)
	if err != nil {
		return err
	}
	stranded, unwritten := map[int64]bool{}, map[int64]time.Time{}
	for _, r := range records {
		if err := s.dropUnwritten(octx, r, unwritten); err != nil {
			return err
		}
		aliases := map[string]bool{}
		for _, sl := range r.Queued {
			aliases[sl.Alias] = true
		}
		for alias := range aliases {
			if err := s.publishToken(octx, r.Project.ID, alias); err != nil {
				return err
			}
		}
		// A node that died right after a change left its messages on the record it changed.
		s.sendRecordUnsent(octx, r.Project.ID, r.Unsent)
		for _, id := range r.History {
			rec, _, err := s.deploymentRecord(octx, id)
			if errors.Is(err, store.ErrNotFound) {
				continue // recorded in its project but not written yet, or pruned meanwhile
			}
			if err != nil {
				return err
			}
			s.sendUnsent(octx, rec)
			if err := s.endStranded(octx, r, &rec.Deployment, stranded); err != nil {
				return err
			}
		}
	}
	s.stranded, s.unwritten = stranded, unwritten
	return nil
}

// dropUnwritten drops from r's queue and running set the deployments whose own record has been
// missing for longer than a push waits for it (twice opTimeout, since a pass first found it
// missing): their push's node died between the two writes, before it answered the push, so no
// acknowledged push is lost (GitHub redelivers, reconciliation catches up). The others found
// missing go in unwritten, with when they were first found so.
func (s *Store) dropUnwritten(ctx context.Context, r *projectRecord, unwritten map[int64]time.Time) error {
	var gone []int64
	now := time.Now()
	for _, set := range []map[int64]slot{r.Queued, r.Running} {
		for id := range set {
			_, _, err := s.deployment(ctx, id)
			switch {
			case errors.Is(err, store.ErrNotFound):
				first, seen := s.unwritten[id]
				if !seen {
					first = now
				}
				if now.Sub(first) > 2*opTimeout {
					gone = append(gone, id)
				} else {
					unwritten[id] = first
				}
			case err != nil:
				return err
			}
		}
	}
	if len(gone) == 0 {
		return nil
	}
	_, err := s.changeRecord(ctx, r.Project.ID, func(r *projectRecord) error {
		for _, id := range gone {
			r.finish(id)
		}
		return nil
	})
	if err == nil {
		s.log.Warn("cluster: dropped deployments whose record was never written", "project", r.Project.ID, "deployments", gone)
	}
	return err
}

// endStranded ends deployment d of r if its record no longer queues or runs it but it is not
// finished: a node died between the change of the record and that of the deployment. Only a
// deployment found so at the previous pass too is ended (others may be changing now): as
// deployed when it is live, else as failed. It adds d to stranded when found so.
func (s *Store) endStranded(ctx context.Context, r *projectRecord, d *store.Deployment, stranded map[int64]bool) error {
	id := d.ID
	if _, queued := r.Queued[id]; queued {
		return nil
	}
	if _, running := r.Running[id]; running || d.Terminal() {
		return nil
	}
	if !s.stranded[id] {
		stranded[id] = true
		return nil
	}
	status, message := store.StatusFailed, "the node recording the end of this deployment stopped; deploy again to retry"
	switch newer := r.supersederOf(id, d.Alias); {
	case r.liveID(d.Alias) == id:
		status, message = store.StatusDeployed, ""
	case newer != 0:
		// Superseded by a push another node recorded before this deployment's own record existed.
		status, message = store.StatusCancelled, fmt.Sprintf("superseded by #%d", newer)
	}
	if _, err := s.endDeployment(ctx, id, status, message, false); err != nil && !errors.Is(err, store.ErrFinished) {
		return err
	}
	s.log.Warn("cluster: ended a deployment whose end was not recorded", "project", d.ProjectID, "deployment", id, "status", status)
	return nil
}
