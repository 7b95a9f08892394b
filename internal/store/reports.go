package store

import (
	"context"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/miaobu/miaobu/internal/outbox"
)

// Reporter makes the outbox messages that report a deployment's new status, given copies of the
// deployment and its project as they are after the change. The store calls it inside the
// transaction that makes the change, so the report is durable exactly when the change is: it must
// be quick and must not use the store.
type Reporter func(p Project, d Deployment) []outbox.Message

// OnTransition makes the store enqueue what report makes of every change of a deployment's status
// from now on: queued (also again, after a shutdown), each step of its build, and its end.
func (s *Store) OnTransition(report Reporter) { s.reporter.Store(&report) }

// saveTransition writes d, whose status has just changed, inside tx, together with the messages
// that report it and those that tell notification targets of it.
func (s *Store) saveTransition(tx *bolt.Tx, d *Deployment) error {
	if err := saveDeployment(tx, d); err != nil {
		return err
	}
	report, notifier := s.reporter.Load(), s.notifier.Load()
	if report == nil && notifier == nil {
		return nil
	}
	var p Project
	if err := get(bucket(tx, projectsBucket), itob(d.ProjectID), &p); err != nil {
		return err
	}
	now := time.Now().UTC()
	if report != nil {
		for _, m := range (*report)(p, *d) {
			if err := s.enqueue(tx, &m, now); err != nil {
				return err
			}
		}
	}
	return s.notifyDeployment(tx, &p, d, now)
}

// SetGitHubDeployment records that GitHub deployment githubID reports deployment id, finished or
// not, so that its later statuses go to the same one.
func (s *Store) SetGitHubDeployment(id, githubID int64) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		d, err := loadDeployment(tx, id)
		if err != nil {
			return err
		}
		d.GitHubDeploymentID = githubID
		return saveDeployment(tx, d)
	})
}

// GitHubDeployment is a verified deployment event that asks for a commit to be built for production.
type GitHubDeployment struct {
	ProjectID  int64
	DeliveryID string
	CommitSHA  string
	Branch     string
	// GitHubID is GitHub's id of the deployment, which then reports the build.
	GitHubID   int64
	RemoteAddr string
}

// GitHubDeploymentResult says what RecordGitHubDeployment did.
type GitHubDeploymentResult struct {
	// DeploymentID is the deployment created, or the one of the same commit that is queued,
	// running or live for production (Duplicate), or the one that handled the GitHub deployment
	// before (Handled).
	DeploymentID int64
	// Duplicate says a deployment of the commit was queued, running or live for production, so
	// none was created, as for a push; the GitHub deployment now counts as handled by it.
	Duplicate bool
	// Handled says the GitHub deployment was acted on before (a replayed event): nothing changed.
	Handled bool
}

// RecordGitHubDeployment durably records a deployment asked for on GitHub and its delivery: a new
// queued production deployment of its commit, unless the GitHub deployment was handled before or,
// by the duplicate rule of pushes, a deployment of the commit is queued, running or live for
// production. It returns once the group commit is on disk.
func (s *Store) RecordGitHubDeployment(ctx context.Context, g GitHubDeployment) (GitHubDeploymentResult, error) {
	var res GitHubDeploymentResult
	projectGone := false
	err := s.groupCommit(ctx, func(tx *bolt.Tx, now time.Time) error {
		res = GitHubDeploymentResult{}
		if bucket(tx, projectsBucket).Get(itob(g.ProjectID)) == nil {
			projectGone = true // deleted since the handler read it; failing here would fail the whole group
			return nil
		}
		delivery := &Delivery{GUID: g.DeliveryID, Event: "deployment", ProjectID: g.ProjectID, Outcome: OutcomeSuccess,
			ReceivedAt: now, RemoteAddr: g.RemoteAddr}
		if v := bucket(tx, githubDeploymentsBucket).Get(pairKey(g.ProjectID, g.GitHubID)); v != nil {
			res.DeploymentID, res.Handled = btoi(v), true
			delivery.Outcome = OutcomeIgnored
			return addDelivery(tx, delivery)
		}
		if v := bucket(tx, commitsBucket).Get(commitKey(g.ProjectID, "", g.CommitSHA)); v != nil {
			res.DeploymentID, res.Duplicate = btoi(v), true
			delivery.Outcome, delivery.DeploymentID = OutcomeSkipped, res.DeploymentID
		} else {
			d := &Deployment{ProjectID: g.ProjectID, CommitSHA: g.CommitSHA, Branch: g.Branch, Trigger: TriggerGitHubDeployment,
				DeliveryID: g.DeliveryID, GitHubDeploymentID: g.GitHubID}
			if err := s.createDeployment(tx, d, now); err != nil {
				return err
			}
			res.DeploymentID, delivery.DeploymentID = d.ID, d.ID
		}
		if err := handleGitHubDeployment(tx, g.ProjectID, g.GitHubID, res.DeploymentID); err != nil {
			return err
		}
		return addDelivery(tx, delivery)
	})
	if err == nil && projectGone {
		err = ErrNotFound
	}
	return res, err
}

// HandleGitHubDeployment records that project's GitHub deployment githubID was acted on by
// deployment id, put live again.
func (s *Store) HandleGitHubDeployment(projectID, githubID, id int64) error {
	return s.db.Update(func(tx *bolt.Tx) error { return handleGitHubDeployment(tx, projectID, githubID, id) })
}

// handleGitHubDeployment records inside tx that project's GitHub deployment githubID was acted on
// by deployment id.
func handleGitHubDeployment(tx *bolt.Tx, projectID, githubID, id int64) error {
	return bucket(tx, githubDeploymentsBucket).Put(pairKey(projectID, githubID), itob(id))
}

// HandledGitHubDeployment reports whether project's GitHub deployment githubID was already acted
// on: built, or put live again.
func (s *Store) HandledGitHubDeployment(projectID, githubID int64) (bool, error) {
	var handled bool
	err := s.db.View(func(tx *bolt.Tx) error {
		handled = bucket(tx, githubDeploymentsBucket).Get(pairKey(projectID, githubID)) != nil
		return nil
	})
	return handled, err
}
