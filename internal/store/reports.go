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

// RecordGitHubDeployment durably records a deployment asked for on GitHub: a new queued deployment
// of its commit, without the duplicate check (as `miaobu deploy`), and the delivery. It returns the
// deployment's id once the group commit is on disk.
func (s *Store) RecordGitHubDeployment(ctx context.Context, g GitHubDeployment) (int64, error) {
	var id int64
	err := s.groupCommit(ctx, func(tx *bolt.Tx, now time.Time) error {
		if bucket(tx, projectsBucket).Get(itob(g.ProjectID)) == nil {
			id = 0 // deleted since the handler read it; failing here would fail the whole group
			return nil
		}
		d := &Deployment{ProjectID: g.ProjectID, CommitSHA: g.CommitSHA, Branch: g.Branch, Trigger: TriggerGitHubDeployment,
			DeliveryID: g.DeliveryID, GitHubDeploymentID: g.GitHubID}
		if err := s.createDeployment(tx, d, now); err != nil {
			return err
		}
		id = d.ID
		if err := handleGitHubDeployment(tx, g.ProjectID, g.GitHubID, d.ID); err != nil {
			return err
		}
		return addDelivery(tx, &Delivery{GUID: g.DeliveryID, Event: "deployment", ProjectID: g.ProjectID, Outcome: OutcomeSuccess,
			DeploymentID: d.ID, ReceivedAt: now, RemoteAddr: g.RemoteAddr})
	})
	if err == nil && id == 0 {
		err = ErrNotFound
	}
	return id, err
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
