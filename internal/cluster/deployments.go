package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/miaobu/miaobu/internal/outbox"
	"github.com/miaobu/miaobu/internal/store"
)

// deploymentRecord is a deployment as the deployments bucket keeps it, with the messages of its
// changes of status not yet copied to the outbox.
type deploymentRecord struct {
	store.Deployment
	// Unsent are the numbered reports and notifications of the deployment's changes of status,
	// oldest first, that the change wrote and that are not yet known to be in the outbox.
	Unsent []outbox.Message `json:"unsent,omitempty"`
}

// deployment reads a deployment and its revision.
func (s *Store) deployment(ctx context.Context, id int64) (*store.Deployment, uint64, error) {
	rec, rev, err := s.deploymentRecord(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	return &rec.Deployment, rev, nil
}

// deploymentRecord reads a deployment's record and its revision.
func (s *Store) deploymentRecord(ctx context.Context, id int64) (*deploymentRecord, uint64, error) {
	var rec deploymentRecord
	rev, err := getJSON(ctx, s.deployments, idKey(id), &rec)
	if err != nil {
		return nil, 0, err
	}
	return &rec, rev, nil
}

// changeDeployment applies change to a deployment and writes it back if nobody wrote it meanwhile,
// trying again on a fresh read otherwise; change may run several times.
func (s *Store) changeDeployment(ctx context.Context, id int64, change func(d *store.Deployment) error) (*store.Deployment, error) {
	rec, err := s.changeDeploymentRecord(ctx, id, func(rec *deploymentRecord) error { return change(&rec.Deployment) })
	if err != nil {
		return nil, err
	}
	return &rec.Deployment, nil
}

// changeDeploymentRecord is changeDeployment of the whole record.
func (s *Store) changeDeploymentRecord(ctx context.Context, id int64, change func(rec *deploymentRecord) error) (*deploymentRecord, error) {
	for {
		rec, rev, err := s.deploymentRecord(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := change(rec); err != nil {
			return nil, err
		}
		rec.CommitMessage, rec.CommitAuthor = store.LimitCommitMessage(rec.CommitMessage), store.LimitCommitAuthor(rec.CommitAuthor)
		err = casJSON(ctx, s.deployments, idKey(id), rec, rev)
		if !conflicted(err) {
			return rec, err
		}
	}
}

// endDeployment moves a deployment, already dropped from its project's queue and running set, to a
// terminal status, marked Skipped with skipped (see Skip); ErrFinished if it had ended already.
func (s *Store) endDeployment(ctx context.Context, id int64, status store.Status, message string, skipped bool) (*store.Deployment, error) {
	now := time.Now().UTC()
	d, err := s.changeStatus(ctx, id, func(d *store.Deployment) error {
		if d.Terminal() {
			return store.ErrFinished
		}
		d.Status, d.ErrorMessage, d.FinishedAt, d.Skipped = status, message, &now, skipped
		if d.StartedAt != nil {
			secs := now.Sub(*d.StartedAt).Seconds()
			d.BuildTimeSeconds = &secs
		}
		return nil
	})
	if err == nil {
		if finished := s.finished.Load(); finished != nil {
			(*finished)(status)
		}
	}
	return d, err
}

// Deployment returns the deployment with the given id.
func (s *Store) Deployment(id int64) (*store.Deployment, error) {
	ctx, cancel := opContext()
	defer cancel()
	d, _, err := s.deployment(ctx, id)
	return d, err
}

// Deployments returns up to limit deployments, newest first, of one project or, with projectID 0, of all.
func (s *Store) Deployments(projectID int64, limit int) ([]*store.Deployment, error) {
	return s.DeploymentsWhere(projectID, limit, nil)
}

// DeploymentsWhere is Deployments of only the deployments keep accepts (all when keep is nil).
func (s *Store) DeploymentsWhere(projectID int64, limit int, keep func(*store.Deployment) bool) ([]*store.Deployment, error) {
	ctx, cancel := opContext()
	defer cancel()
	var ids []int64
	if projectID == 0 {
		records, err := s.records(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range records {
			ids = append(ids, r.History...)
		}
		slices.Sort(ids)
	} else {
		r, _, err := s.record(ctx, projectID)
		if err != nil {
			return nil, err
		}
		ids = r.History
	}
	var out []*store.Deployment
	for i := len(ids) - 1; i >= 0 && (limit <= 0 || len(out) < limit); i-- {
		d, _, err := s.deployment(ctx, ids[i])
		if errors.Is(err, store.ErrNotFound) {
			continue // recorded in its project but not written yet, or pruned meanwhile
		}
		if err != nil {
			return nil, err
		}
		if keep == nil || keep(d) {
			out = append(out, d)
		}
	}
	return out, nil
}

// newDeployment is a deployment being created: its id is taken as its project's record is changed,
// and taken again when a deployment created meanwhile has a larger one, so that ids keep creation
// order within a project.
type newDeployment struct {
	d          *store.Deployment
	superseded []int64
	created    bool
	// written is the project's record as the change that created it was written.
	written *projectRecord
}

// add queues the new deployment in r, taking an id if it has none larger than r's last.
func (s *Store) add(ctx context.Context, r *projectRecord, nd *newDeployment) error {
	if nd.d.ID <= r.LastID {
		id, err := s.nextID(ctx, "deployment")
		if err != nil {
			return err
		}
		nd.d.ID = id
	}
	nd.superseded = r.enqueue(nd.d.ID, nd.d.Alias, nd.d.CommitSHA)
	nd.created = true
	return nil
}

// write stores a deployment that its project's record now queues, with the messages of its queued
// status, then at once cancels those it supersedes, hands a build token to the workers and copies
// the messages to the outbox. A deployment that a later change of its batch superseded already
// (see changeRecord) cancels itself, as its superseder may have found nothing to cancel yet.
func (s *Store) write(ctx context.Context, nd *newDeployment, now time.Time) error {
	d := nd.d
	d.Status, d.CreatedAt = store.StatusQueued, now
	d.Environment = store.EnvironmentProduction
	if d.Alias != "" {
		d.Environment = store.EnvironmentPreview
	}
	d.CommitMessage, d.CommitAuthor = store.LimitCommitMessage(d.CommitMessage), store.LimitCommitAuthor(d.CommitAuthor)
	messages, err := s.transitionMessages(ctx, d, nd.written)
	if err != nil {
		return err
	}
	rec := &deploymentRecord{Deployment: *d, Unsent: messages}
	if err := casJSON(ctx, s.deployments, idKey(d.ID), rec, 0); err != nil {
		return err
	}
	var g errgroup.Group
	for _, old := range nd.superseded {
		g.Go(func() error { return s.supersede(ctx, old, d.ID) })
	}
	if newer := nd.written.supersederOf(d.ID, d.Alias); newer != 0 {
		g.Go(func() error { return s.supersede(ctx, d.ID, newer) })
	}
	g.Go(func() error { return s.publishToken(ctx, d.ProjectID, d.Alias) })
	g.Go(func() error {
		s.sendUnsent(ctx, rec)
		return nil
	})
	return g.Wait()
}

// supersede cancels deployment old, superseded by deployment newer, unless it has ended or is gone.
func (s *Store) supersede(ctx context.Context, old, newer int64) error {
	_, err := s.endDeployment(ctx, old, store.StatusCancelled, fmt.Sprintf("superseded by #%d", newer), false)
	if errors.Is(err, store.ErrFinished) || errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// CreateDeployment queues d (a manual, import or retried build) without the duplicate check; a
// deployment to a preview alias brings the preview up with d's commit as its head.
func (s *Store) CreateDeployment(d *store.Deployment) error {
	ctx, cancel := opContext()
	defer cancel()
	now := time.Now().UTC()
	nd := &newDeployment{d: d}
	var err error
	nd.written, err = s.changeRecord(ctx, d.ProjectID, func(r *projectRecord) error {
		if d.Alias != "" {
			head := store.PreviewHead{Branch: d.Branch, PullRequest: d.PullRequest, Fork: d.Fork, SHA: d.CommitSHA}
			if _, err := r.notePreviewHead(d.Alias, head, now); err != nil {
				return err
			}
		}
		return s.add(ctx, r, nd)
	})
	if err != nil {
		return unavailable(err)
	}
	return unavailable(s.write(ctx, nd, now))
}

// Cancel cancels a deployment that has not finished; it returns ErrFinished for one that has. A
// build of it on any node stops at its next step, and cannot go live.
func (s *Store) Cancel(id int64) (*store.Deployment, error) {
	return s.fail(id, store.StatusCancelled, "cancelled by user", false, false)
}

// Fail ends a deployment as failed or cancelled with a message; a build of this node whose claim
// was taken over gets ErrFinished and changes nothing.
func (s *Store) Fail(id int64, status store.Status, message string) error {
	_, err := s.fail(id, status, message, true, false)
	return err
}

// fail is Fail, checking this node's claim when fenced, of a deployment marked Skipped with
// skipped.
func (s *Store) fail(id int64, status store.Status, message string, fenced, skipped bool) (*store.Deployment, error) {
	ctx, cancel := opContext()
	defer cancel()
	d, _, err := s.deployment(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.Terminal() {
		return nil, store.ErrFinished
	}
	c := s.claimOf(id)
	if fenced {
		defer s.release(id)
	}
	_, err = s.changeRecord(ctx, d.ProjectID, func(r *projectRecord) error {
		if fenced && c != nil && r.Running[id].Epoch != c.epoch {
			return store.ErrFinished
		}
		r.finish(id)
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, unavailable(err)
	}
	d, err = s.endDeployment(ctx, id, status, message, skipped)
	return d, unavailable(err)
}

// UpdateRunning applies change to a deployment that has not finished; it returns ErrFinished for one
// that has, or whose build here lost its claim. change must not touch the status.
func (s *Store) UpdateRunning(id int64, change func(d *store.Deployment)) error {
	ctx, cancel := opContext()
	defer cancel()
	_, err := s.updateRunning(ctx, id, change)
	return unavailable(err)
}

// updateRunning is UpdateRunning with ctx.
func (s *Store) updateRunning(ctx context.Context, id int64, change func(d *store.Deployment)) (*store.Deployment, error) {
	if c := s.claimOf(id); c != nil && c.lost.Load() {
		return nil, store.ErrFinished
	}
	return s.changeDeployment(ctx, id, func(d *store.Deployment) error {
		if d.Terminal() {
			return store.ErrFinished
		}
		status := d.Status
		change(d)
		d.Status = status
		return nil
	})
}

// SetStatus moves a running deployment to another in-progress status; it returns ErrFinished when the
// deployment has finished meanwhile or its build here lost its claim, which tells the worker to stop.
func (s *Store) SetStatus(id int64, status store.Status) error {
	ctx, cancel := opContext()
	defer cancel()
	if c := s.claimOf(id); c != nil && c.lost.Load() {
		return store.ErrFinished
	}
	_, err := s.changeStatus(ctx, id, func(d *store.Deployment) error {
		if d.Terminal() {
			return store.ErrFinished
		}
		d.Status = status
		return nil
	})
	return unavailable(err)
}

// RecordDetected records what the build of a running deployment detected, on the deployment and,
// unless a newer deployment's build has detected already, as its project's last detection.
func (s *Store) RecordDetected(id int64, detected store.DetectedSettings) error {
	ctx, cancel := opContext()
	defer cancel()
	d, err := s.updateRunning(ctx, id, func(d *store.Deployment) { d.Detected = &detected })
	if err != nil {
		return unavailable(err)
	}
	_, err = s.changeRecord(ctx, d.ProjectID, func(r *projectRecord) error {
		if r.Project.DetectedBy <= id {
			r.Project.Detected, r.Project.DetectedBy = &detected, id
		}
		return nil
	})
	return unavailable(err)
}

// MayGoLive reports whether a finished build of deployment id may become live: its build here still
// holds its claim, and no deployment of its alias created after it is live already.
func (s *Store) MayGoLive(id int64) (bool, error) {
	ctx, cancel := opContext()
	defer cancel()
	d, _, err := s.deployment(ctx, id)
	if err != nil {
		return false, err
	}
	r, _, err := s.record(ctx, d.ProjectID)
	if err != nil {
		return false, err
	}
	c := s.claimOf(id)
	held := c == nil || r.Running[id].Epoch == c.epoch
	return held && !d.Terminal() && r.liveID(d.Alias) < id, nil
}

// Complete marks a running deployment deployed and makes it live on its alias unless a deployment of
// the alias created after it is live already; it reports whether it went live. The change is a
// compare-and-set of the project's record that holds only while this node's claim of the build is
// the record's: a build whose lease was lost gets ErrFinished and never goes live.
func (s *Store) Complete(id int64) (live bool, err error) {
	ctx, cancel := opContext()
	defer cancel()
	d, _, err := s.deployment(ctx, id)
	if err != nil {
		return false, err
	}
	if d.Terminal() {
		return false, store.ErrFinished
	}
	c := s.claimOf(id)
	defer s.release(id)
	_, err = s.changeRecord(ctx, d.ProjectID, func(r *projectRecord) error {
		running, ok := r.Running[id]
		if !ok || (c != nil && running.Epoch != c.epoch) {
			return store.ErrFinished
		}
		if live = r.liveID(d.Alias) < id; live {
			if err := r.setLive(id, d.Alias, d.CommitSHA); err != nil {
				return err
			}
		}
		r.finish(id)
		return nil
	})
	if err != nil {
		return false, unavailable(err)
	}
	_, err = s.endDeployment(ctx, id, store.StatusDeployed, "", false)
	return live, unavailable(err)
}

// Rollback makes an earlier successful deployment of the project live again at once on its alias.
func (s *Store) Rollback(projectID, id int64) error {
	ctx, cancel := opContext()
	defer cancel()
	d, _, err := s.deployment(ctx, id)
	if err != nil {
		return err
	}
	if d.ProjectID != projectID || d.Status != store.StatusDeployed {
		return fmt.Errorf("deployment %d is not a successful deployment of project %d", id, projectID)
	}
	_, err = s.changeRecord(ctx, projectID, func(r *projectRecord) error {
		if d.Alias != "" {
			if p := r.Previews[d.Alias]; p == nil || p.Removed() {
				return fmt.Errorf("deployment %d belongs to preview %s, which was removed", id, d.Alias)
			}
		}
		return r.setLive(id, d.Alias, d.CommitSHA)
	})
	return unavailable(err)
}

// RecordDelivery durably records a delivery that created no deployment (a ping, an ignored event).
func (s *Store) RecordDelivery(ctx context.Context, d store.Delivery) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	return unavailable(s.addDelivery(ctx, d))
}

// addDelivery appends a delivery record.
func (s *Store) addDelivery(ctx context.Context, d store.Delivery) error {
	d.ReceivedAt = time.Now().UTC()
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	_, err = s.node.js.Publish(ctx, fmt.Sprintf("deliveries.%d", d.ProjectID), data)
	return err
}

// Deliveries returns up to limit delivery records, newest first, of one project or, with projectID 0, of all.
func (s *Store) Deliveries(projectID int64, limit int) ([]store.Delivery, error) {
	ctx, cancel := opContext()
	defer cancel()
	info, err := s.deliveries.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []store.Delivery
	for seq := info.State.LastSeq; seq >= info.State.FirstSeq && seq > 0 && (limit <= 0 || len(out) < limit); seq-- {
		m, err := s.deliveries.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var d store.Delivery
		if err := json.Unmarshal(m.Data, &d); err != nil {
			return nil, err
		}
		if projectID == 0 || d.ProjectID == projectID {
			out = append(out, d)
		}
	}
	return out, nil
}

// RecordPush durably records a push: nothing for a stale delivery, a closed pull request's update
// or a branch's push to an alias another branch holds (see store.PushResult), else a new queued
// deployment unless one of the same commit is queued, running or live on the same alias, the
// branch's new head and, for a preview, the preview's; the delivery in every case but a head the
// agent found itself, which is none. It returns once a quorum of the nodes has the records on disk;
// two nodes recording one commit at once both compare-and-set the project's record, so only one
// creates the deployment.
func (s *Store) RecordPush(ctx context.Context, p store.Push) (store.PushResult, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	res, nd, err := s.recordPush(ctx, p, false)
	if err != nil {
		return res, unavailable(err)
	}
	delivery := store.Delivery{GUID: p.DeliveryID, Event: "push", ProjectID: p.ProjectID, RemoteAddr: p.RemoteAddr,
		Outcome: store.OutcomeSuccess, DeploymentID: res.DeploymentID}
	if p.PullRequest != 0 {
		delivery.Event = "pull_request"
	}
	switch {
	case res.Stale || res.Closed || res.Taken != nil || p.Hold:
		delivery.Outcome = store.OutcomeIgnored
	case res.Duplicate:
		delivery.Outcome = store.OutcomeSkipped
	}
	// The deployment and the delivery record are written at once; the answer waits for both.
	var g errgroup.Group
	if nd.created {
		g.Go(func() error { return s.write(ctx, nd, time.Now().UTC()) })
	}
	if p.DeliveryID != "" {
		g.Go(func() error { return s.addDelivery(ctx, delivery) })
	}
	return res, unavailable(g.Wait())
}

// ApprovePreview deploys the fork head commit p.CommitSHA to the pull request preview p.Alias and
// records it as approved, like RecordPush with Approve set but for a delivery: the approval came
// from the API. It returns ErrHeadMoved when the preview's head is another commit by then, checked
// in the same compare-and-set.
func (s *Store) ApprovePreview(p store.Push) (store.PushResult, error) {
	ctx, cancel := opContext()
	defer cancel()
	p.Approve = true
	res, nd, err := s.recordPush(ctx, p, true)
	if err == nil && nd.created {
		err = s.write(ctx, nd, time.Now().UTC())
	}
	return res, unavailable(err)
}

// recordPush is RecordPush without the delivery and without writing the deployment it creates,
// which it returns; for an approval through the API (approval), the preview must exist and pass
// store.Preview.CheckApproval.
func (s *Store) recordPush(ctx context.Context, p store.Push, approval bool) (store.PushResult, *newDeployment, error) {
	var res store.PushResult
	now := time.Now().UTC()
	nd := &newDeployment{d: p.Deployment()}
	var err error
	nd.written, err = s.changeRecord(ctx, p.ProjectID, func(r *projectRecord) error {
		res, nd.created, nd.superseded = store.PushResult{}, false, nil
		if approval {
			pv := r.Previews[p.Alias]
			if pv == nil {
				return store.ErrNotFound
			}
			if err := pv.CheckApproval(p.CommitSHA); err != nil {
				return err
			}
		}
		// Branch heads are about branches; a pull request's last head is its preview's.
		head := r.Heads[p.Branch]
		if p.PullRequest != 0 {
			if head, res.Closed = p.PullRequestHead(r.Previews[p.Alias]); res.Closed {
				return nil
			}
		}
		if _, deployed := r.Deployed[commitKey(p.Alias, p.CommitSHA)]; p.Stale(head, deployed) {
			res.Stale = true
			return nil
		}
		if p.Alias != "" {
			preview, err := r.notePreviewHead(p.Alias, store.PreviewHead{Branch: p.Branch, PullRequest: p.PullRequest, Fork: p.Fork, SHA: p.CommitSHA}, now)
			var taken *store.AliasTakenError
			if errors.As(err, &taken) {
				res.Taken = taken
				return nil
			}
			if err != nil {
				return err
			}
			if p.Approve {
				preview.ApprovedSHA = p.CommitSHA
			}
			copied := *preview
			res.Preview = &copied
		}
		if p.Hold {
			return nil
		}
		if id, ok := r.Commits[commitKey(p.Alias, p.CommitSHA)]; ok {
			res.DeploymentID, res.Duplicate = id, true
		} else {
			if err := s.add(ctx, r, nd); err != nil {
				return err
			}
			res.DeploymentID = nd.d.ID
		}
		if p.PullRequest == 0 {
			r.Heads[p.Branch] = p.CommitSHA
		}
		return nil
	})
	return res, nd, err
}

// HeadMissing reports whether commit sha, the head of branch, needs a production deployment: none
// of its production deployments is queued, running or live, and the newest production deployment
// of the branch is not of it either. Deployments of other commits that a user chose (manual, or by
// a GitHub deployment event) are passed over, like a rollback: the head they replaced stays
// replaced until the branch moves on.
func (s *Store) HeadMissing(projectID int64, branch, sha string) (bool, error) {
	ctx, cancel := opContext()
	defer cancel()
	r, _, err := s.record(ctx, projectID)
	if err != nil {
		return false, err
	}
	return s.headMissing(ctx, r, branch, sha)
}

// headMissing is HeadMissing on r.
func (s *Store) headMissing(ctx context.Context, r *projectRecord, branch, sha string) (bool, error) {
	if _, ok := r.Commits[commitKey("", sha)]; ok {
		return false, nil
	}
	for i := len(r.History) - 1; i >= 0; i-- {
		d, _, err := s.deployment(ctx, r.History[i])
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		if missing, settled := d.SettlesHead(branch, sha); settled {
			return missing, nil
		}
	}
	return true, nil
}

// DeployHead durably queues d, a production deployment of the head of its branch that the agent
// found itself, unless the head is no longer missing (checked in the same compare-and-set); either
// way the commit becomes the branch's last known head. It reports whether it created d.
func (s *Store) DeployHead(ctx context.Context, d *store.Deployment) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	now := time.Now().UTC()
	nd := &newDeployment{d: d}
	var err error
	nd.written, err = s.changeRecord(ctx, d.ProjectID, func(r *projectRecord) error {
		nd.created, nd.superseded = false, nil
		r.Heads[d.Branch] = d.CommitSHA
		missing, err := s.headMissing(ctx, r, d.Branch, d.CommitSHA)
		if err != nil || !missing {
			return err
		}
		return s.add(ctx, r, nd)
	})
	if err != nil || !nd.created {
		return false, unavailable(err)
	}
	return true, unavailable(s.write(ctx, nd, now))
}

// QueueDepth returns how many deployments wait for a worker.
func (s *Store) QueueDepth() (int, error) {
	ctx, cancel := opContext()
	defer cancel()
	records, err := s.records(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range records {
		n += len(r.Queued)
	}
	return n, nil
}

// PruneDeployments deletes, for production and for each preview alias apart, the deployments
// beyond the newest keep successful ones (the live one always kept and counted) and the failed or
// cancelled ones older than the oldest kept success, returning them.
func (s *Store) PruneDeployments(projectID int64, keep int) ([]*store.Deployment, error) {
	history, err := s.Deployments(projectID, 0)
	if err != nil {
		return nil, err
	}
	ctx, cancel := opContext()
	defer cancel()
	var gone []*store.Deployment
	_, err = s.changeRecord(ctx, projectID, func(r *projectRecord) error {
		gone = nil
		kept := map[string]int{}
		for alias := range r.LiveSHA {
			if r.liveID(alias) != 0 {
				kept[alias] = 1
			}
		}
		for _, d := range history {
			switch {
			case !d.Terminal() || d.ID == r.liveID(d.Alias):
				continue
			case d.Status == store.StatusDeployed && kept[d.Alias] < keep:
				kept[d.Alias]++
				continue
			case d.Status != store.StatusDeployed && kept[d.Alias] < keep:
				continue
			}
			gone = append(gone, d)
		}
		r.History = slices.DeleteFunc(r.History, func(id int64) bool {
			return slices.ContainsFunc(gone, func(d *store.Deployment) bool { return d.ID == id })
		})
		return nil
	})
	if err != nil {
		return nil, unavailable(err)
	}
	for _, d := range gone {
		_ = s.deployments.Delete(ctx, idKey(d.ID))
		_ = s.sites.Delete(ctx, siteObject(d.ID))
		_ = s.sites.Delete(ctx, logObject(d.ID))
	}
	return gone, nil
}

// SetGitHubDeployment records the GitHub deployment that reports deployment id.
func (s *Store) SetGitHubDeployment(id, githubID int64) error {
	ctx, cancel := opContext()
	defer cancel()
	_, err := s.changeDeployment(ctx, id, func(d *store.Deployment) error {
		d.GitHubDeploymentID = githubID
		return nil
	})
	return unavailable(err)
}

// sortedIDs returns the keys of set in increasing order.
func sortedIDs(set map[int64]slot) []int64 {
	ids := make([]int64, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, cmp.Compare)
	return ids
}

// Skip ends a deployment whose build found a skip marker in its commit's message: cancelled, marked
// Skipped, with message, in one change of the deployment; it returns ErrFinished, changing nothing,
// for a deployment that has finished or whose build here lost its claim.
func (s *Store) Skip(id int64, message string) error {
	_, err := s.fail(id, store.StatusCancelled, message, true, true)
	return err
}

// NewestDeploymentOf returns the newest deployment of commit sha to project's alias ("" for
// production), ErrNotFound when there is none left.
func (s *Store) NewestDeploymentOf(projectID int64, alias, sha string) (*store.Deployment, error) {
	ctx, cancel := opContext()
	defer cancel()
	r, _, err := s.record(ctx, projectID)
	if err != nil {
		return nil, err
	}
	id, ok := r.Deployed[commitKey(alias, sha)]
	if !ok {
		return nil, store.ErrNotFound
	}
	d, _, err := s.deployment(ctx, id)
	return d, err
}
