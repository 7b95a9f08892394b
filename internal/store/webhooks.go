package store

import (
	"context"
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"
)

// maxGroup caps how many queued writes one group commit takes.
const maxGroup = 1000

// maxDeliveries is how many delivery records are kept; older ones are pruned.
const maxDeliveries = 10000

// groupWrite is one caller's work for the group-commit writer, answered on done.
type groupWrite struct {
	apply func(tx *bolt.Tx, now time.Time) error
	done  chan error
}

// writer commits queued writes in groups with no timer: it takes the first waiting write plus all
// others already queued, runs them in one transaction (one round of fsyncs) and answers each. A lone
// write commits at once; groups form while a commit is running.
func (s *Store) writer() {
	defer close(s.done)
	group := make([]*groupWrite, 0, maxGroup)
	for first := range s.writes {
		group = append(group[:0], first)
	drain:
		for len(group) < maxGroup {
			select {
			case w, ok := <-s.writes:
				if !ok {
					break drain
				}
				group = append(group, w)
			default:
				break drain
			}
		}
		now := time.Now().UTC()
		err := s.db.Update(func(tx *bolt.Tx) error {
			for _, w := range group {
				if err := w.apply(tx, now); err != nil {
					return err
				}
			}
			return nil
		})
		for _, w := range group {
			w.done <- err // a failed transaction stored nobody's write
		}
	}
}

// groupCommit runs apply in the next group commit and returns once it is durable.
func (s *Store) groupCommit(ctx context.Context, apply func(tx *bolt.Tx, now time.Time) error) error {
	w := &groupWrite{apply: apply, done: make(chan error, 1)}
	s.closing.RLock()
	if s.closed {
		s.closing.RUnlock()
		return ErrClosed
	}
	select {
	case s.writes <- w:
	case <-ctx.Done():
		s.closing.RUnlock()
		return ctx.Err()
	}
	s.closing.RUnlock()
	return <-w.done
}

// Delivery is the record of one verified webhook delivery.
type Delivery struct {
	GUID         string    `json:"guid"`
	Event        string    `json:"event"`
	ProjectID    int64     `json:"project_id"`
	Outcome      string    `json:"outcome"`
	DeploymentID int64     `json:"deployment_id,omitempty"`
	ReceivedAt   time.Time `json:"received_at"`
	// RemoteAddr is the client's address, behind trusted proxies.
	RemoteAddr string `json:"remote_addr,omitempty"`
}

// addDelivery appends a delivery record inside tx, pruning the oldest beyond maxDeliveries.
func addDelivery(tx *bolt.Tx, d *Delivery) error {
	b := bucket(tx, deliveriesBucket)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	if seq > maxDeliveries {
		if err := b.Delete(itob(int64(seq - maxDeliveries))); err != nil {
			return err
		}
	}
	return put(b, itob(int64(seq)), d)
}

// RecordDelivery durably records a delivery that created no deployment (a ping, an ignored event).
func (s *Store) RecordDelivery(ctx context.Context, d Delivery) error {
	return s.groupCommit(ctx, func(tx *bolt.Tx, now time.Time) error {
		d.ReceivedAt = now
		return addDelivery(tx, &d)
	})
}

// Push is a verified push, or pull request update, that deploys a commit to one of a project's
// aliases: production ("") or a preview.
type Push struct {
	ProjectID     int64
	DeliveryID    string
	CommitSHA     string
	CommitMessage string
	CommitAuthor  string
	Branch        string
	// Before is the commit the branch pointed at before the push, as the payload says.
	Before     string
	RemoteAddr string
	// Alias is the preview the push deploys to, "" for production. PullRequest, for a pull
	// request's update, makes the deployment's trigger pull_request; Fork marks one from a fork.
	Alias       string
	PullRequest int
	Fork        bool
	// Hold records the preview's new head without deploying it: a fork's commit waiting for
	// approval. Approve records the commit as approved as it deploys it.
	Hold, Approve bool
	// Reopen lets a pull request's update bring its removed preview back up (reopened); without it
	// the update of a closed pull request is refused.
	Reopen bool
	// SkipMarkers leaves the skip markers to the build: CommitMessage is not known.
	SkipMarkers bool
	// Trigger is the deployment's trigger for a head the agent found itself (TriggerPoll,
	// TriggerReconcile), which has no DeliveryID and records no delivery; zero for a delivery.
	Trigger Trigger
}

// Stale reports whether p replays an old delivery: its commit was deployed to its alias before
// (deployed) and head, the last head of its branch or pull request ("" when none is known), is
// neither its commit nor its before. After the branch's deletion (head DeletedHead) any commit the
// alias had is stale, even one whose push created the branch: only a new commit brings the alias
// back. A head the agent read itself (p.Trigger set) is the branch's head now, never a replay: a
// branch restored at a commit its preview had is deployed again.
func (p Push) Stale(head string, deployed bool) bool {
	return p.Trigger == "" && deployed && (head == DeletedHead || head != "" && head != p.CommitSHA && head != p.Before)
}

// PullRequestHead returns the last head of p's pull request, whose preview is pv (nil when it has
// none), for the stale check (see Stale), and whether p updates a closed pull request (its preview
// is removed and p does not reopen it), which is refused. A removed preview keeps the head its pull
// request was closed at: reopened, it comes back at that head or at a new commit, not at an older
// one it deployed (a replay).
func (p Push) PullRequestHead(pv *Preview) (head string, closed bool) {
	switch {
	case pv == nil:
		return "", false
	case pv.Removed() && !p.Reopen:
		return "", true
	}
	return pv.HeadSHA, false
}

// Deployment returns the deployment that p creates, not yet stored: of its commit to its alias,
// triggered by p.Trigger when set, else by a webhook or, for a pull request's update, by the pull
// request.
func (p Push) Deployment() *Deployment {
	trigger := p.Trigger
	switch {
	case trigger != "":
	case p.PullRequest != 0:
		trigger = TriggerPullRequest
	default:
		trigger = TriggerWebhook
	}
	return &Deployment{ProjectID: p.ProjectID, CommitSHA: p.CommitSHA, CommitMessage: p.CommitMessage,
		CommitAuthor: p.CommitAuthor, Branch: p.Branch, Trigger: trigger, DeliveryID: p.DeliveryID,
		Alias: p.Alias, PullRequest: p.PullRequest, Fork: p.Fork, SkipMarkers: p.SkipMarkers}
}

// PushResult says what RecordPush did: created a deployment, found one of the same commit and
// alias, refused a stale delivery, or held a preview's head.
type PushResult struct {
	DeploymentID int64
	Duplicate    bool
	// Stale says the push replays an old delivery: its commit was deployed before to the same
	// alias, and the branch or pull request has moved on since (it is neither the last pushed head
	// nor the push's before).
	Stale bool
	// Closed says the push updates a pull request whose preview was removed, without Reopen.
	Closed bool
	// Taken says the push's branch deploys to a preview another branch holds; nothing was recorded
	// but the delivery.
	Taken *AliasTakenError
	// Preview is the preview the push updated, nil for production.
	Preview *Preview
}

// Delivery outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeSkipped = "skipped"
	OutcomeIgnored = "ignored"
	OutcomePing    = "ok"
	OutcomeRemoved = "removed"
)

// RecordPush durably records a push: nothing for a stale delivery, a closed pull request's update or
// a branch's push to an alias another branch holds (see PushResult), else a new queued deployment
// unless one of the same commit is queued, running or live on the same alias, the branch's new head
// and, for a preview, the preview's; the delivery in every case but a head the agent found
// itself, which is none. It returns after the group commit is on disk.
func (s *Store) RecordPush(ctx context.Context, p Push) (PushResult, error) {
	var res PushResult
	projectGone := false
	err := s.groupCommit(ctx, func(tx *bolt.Tx, now time.Time) (err error) {
		if bucket(tx, projectsBucket).Get(itob(p.ProjectID)) == nil {
			projectGone = true // deleted since the handler read it; failing here would fail the whole group
			return nil
		}
		if res, err = s.recordPush(tx, p, now); err != nil || p.DeliveryID == "" {
			return err
		}
		delivery := Delivery{GUID: p.DeliveryID, Event: "push", ProjectID: p.ProjectID, ReceivedAt: now,
			RemoteAddr: p.RemoteAddr, Outcome: OutcomeSuccess, DeploymentID: res.DeploymentID}
		if p.PullRequest != 0 {
			delivery.Event = "pull_request"
		}
		switch {
		case res.Stale || res.Closed || res.Taken != nil || p.Hold:
			delivery.Outcome = OutcomeIgnored
		case res.Duplicate:
			delivery.Outcome = OutcomeSkipped
		}
		return addDelivery(tx, &delivery)
	})
	if err == nil && projectGone {
		err = ErrNotFound
	}
	return res, err
}

// ErrHeadMoved is returned by ApprovePreview when the pull request's head is no longer the commit
// approved.
var ErrHeadMoved = errors.New("the pull request's head is another commit")

// CheckApproval returns ErrHeadMoved when pv, the preview of a pull request whose head commit sha
// is approved, is up at another head.
func (pv *Preview) CheckApproval(sha string) error {
	if !pv.Removed() && pv.HeadSHA != sha {
		return ErrHeadMoved
	}
	return nil
}

// ApprovePreview deploys the fork head commit p.CommitSHA to the pull request preview p.Alias and
// records it as approved, like RecordPush with Approve set but for a delivery: the approval came
// from the API. It returns ErrHeadMoved when the preview's head is another commit by then.
func (s *Store) ApprovePreview(p Push) (PushResult, error) {
	var res PushResult
	p.Approve = true
	err := s.db.Update(func(tx *bolt.Tx) (err error) {
		if bucket(tx, projectsBucket).Get(itob(p.ProjectID)) == nil {
			return ErrNotFound
		}
		pv, err := loadPreview(tx, p.ProjectID, p.Alias)
		if err != nil {
			return err
		}
		if err := pv.CheckApproval(p.CommitSHA); err != nil {
			return err
		}
		res, err = s.recordPush(tx, p, time.Now().UTC())
		return err
	})
	return res, err
}

// recordPush is RecordPush inside tx, for a project that exists, without the delivery.
func (s *Store) recordPush(tx *bolt.Tx, p Push, now time.Time) (PushResult, error) {
	var res PushResult
	// Branch heads are about branches; a pull request's last head is its preview's.
	var heads *bolt.Bucket
	headKey := branchKey(p.ProjectID, p.Branch)
	var head string
	if p.PullRequest == 0 {
		heads = bucket(tx, branchHeadsBucket)
		head = string(heads.Get(headKey))
	} else {
		pv, err := loadPreview(tx, p.ProjectID, p.Alias)
		if errors.Is(err, ErrNotFound) {
			pv, err = nil, nil
		}
		if err != nil {
			return res, err
		}
		if head, res.Closed = p.PullRequestHead(pv); res.Closed {
			return res, nil
		}
	}
	if p.Stale(head, bucket(tx, deployedCommitsBucket).Get(commitKey(p.ProjectID, p.Alias, p.CommitSHA)) != nil) {
		res.Stale = true
		return res, nil
	}
	if p.Alias != "" {
		preview, err := notePreviewHead(tx, p.ProjectID, p.Alias,
			PreviewHead{Branch: p.Branch, PullRequest: p.PullRequest, Fork: p.Fork, SHA: p.CommitSHA}, now)
		var taken *AliasTakenError
		if errors.As(err, &taken) {
			res.Taken = taken
			return res, nil
		}
		if err != nil {
			return res, err
		}
		if p.Approve {
			preview.ApprovedSHA = p.CommitSHA
			if err := savePreview(tx, preview); err != nil {
				return res, err
			}
		}
		res.Preview = preview
	}
	if p.Hold {
		return res, nil
	}
	if v := bucket(tx, commitsBucket).Get(commitKey(p.ProjectID, p.Alias, p.CommitSHA)); v != nil {
		res.DeploymentID, res.Duplicate = btoi(v), true
	} else {
		d := p.Deployment()
		if err := s.createDeployment(tx, d, now); err != nil {
			return res, err
		}
		res.DeploymentID = d.ID
	}
	if heads != nil {
		return res, heads.Put(headKey, []byte(p.CommitSHA))
	}
	return res, nil
}

// Deliveries returns up to limit delivery records, newest first, of one project or, with projectID 0, of all.
func (s *Store) Deliveries(projectID int64, limit int) ([]Delivery, error) {
	var out []Delivery
	err := s.db.View(func(tx *bolt.Tx) error {
		return iterateBackward(bucket(tx, deliveriesBucket), nil, func(_ []byte, d Delivery) (bool, error) {
			if projectID == 0 || d.ProjectID == projectID {
				out = append(out, d)
			}
			return limit <= 0 || len(out) < limit, nil
		})
	})
	return out, err
}

// branchKey is the branch_heads key of a project's branch.
func branchKey(projectID int64, branch string) []byte { return append(itob(projectID), branch...) }

// fillPushHistory builds branch_heads and deployed_commits from the deployments of a store written
// before they existed, so that replays of deliveries from before the upgrade are recognised too.
func fillPushHistory(root *bolt.Bucket) error {
	heads, deployed := root.Bucket(branchHeadsBucket), root.Bucket(deployedCommitsBucket)
	// Deployments are in id order, so the last push of a branch is its head.
	return iterate(root.Bucket(deploymentsBucket), nil, func(_ []byte, d Deployment) (bool, error) {
		if err := deployed.Put(commitKey(d.ProjectID, d.Alias, d.CommitSHA), itob(d.ID)); err != nil {
			return false, err
		}
		if d.Trigger != TriggerWebhook {
			return true, nil
		}
		return true, heads.Put(branchKey(d.ProjectID, d.Branch), []byte(d.CommitSHA))
	})
}
