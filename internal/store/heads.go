package store

import (
	"context"
	"time"

	bolt "go.etcd.io/bbolt"
)

// HeadMissing reports whether commit sha, the head of branch, needs a production deployment: none
// of its production deployments is queued, running or live, and the newest production deployment
// of the branch is not of it either (that one was tried and failed, was cancelled, or was rolled
// back from; a push or a manual deployment tries it again, reconciliation does not). Deployments of
// other commits that a user chose (manual, or by a GitHub deployment event) are passed over, like
// a rollback: the head they replaced stays replaced until the branch moves on.
func (s *Store) HeadMissing(projectID int64, branch, sha string) (bool, error) {
	missing := false
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		if bucket(tx, projectsBucket).Get(itob(projectID)) == nil {
			return ErrNotFound
		}
		missing, err = headMissing(tx, projectID, branch, sha)
		return err
	})
	return missing, err
}

// headMissing is HeadMissing inside tx.
func headMissing(tx *bolt.Tx, projectID int64, branch, sha string) (bool, error) {
	if bucket(tx, commitsBucket).Get(commitKey(projectID, "", sha)) != nil {
		return false, nil
	}
	missing := true
	deployments := bucket(tx, deploymentsBucket)
	err := iterateBackward(bucket(tx, projectDeploymentsBucket), itob(projectID), func(k []byte, _ struct{}) (bool, error) {
		var d Deployment
		if err := get(deployments, k[8:], &d); err != nil {
			return false, err
		}
		var settled bool
		missing, settled = d.SettlesHead(branch, sha)
		return !settled, nil
	})
	return missing, err
}

// SettlesHead says what d, walking back from a project's newest deployment, tells of whether
// commit sha, the head of branch, is missing (see HeadMissing): settled when d is a production
// deployment of branch, of sha or of a commit nobody chose, and then whether sha is missing.
func (d *Deployment) SettlesHead(branch, sha string) (missing, settled bool) {
	if d.Alias != "" || d.Branch != branch || (d.CommitSHA != sha && d.Trigger.chosen()) {
		return false, false
	}
	return d.CommitSHA != sha, true
}

// DeployHead durably queues d, a production deployment of the head of its branch that the agent
// found itself (by polling or reconciliation), unless the head is no longer missing (see HeadMissing), checked in
// the same transaction; either way the commit becomes the branch's last known head, as a push's
// does, for the stale-delivery rule. It reports whether it created d.
func (s *Store) DeployHead(ctx context.Context, d *Deployment) (bool, error) {
	created, gone := false, false
	err := s.groupCommit(ctx, func(tx *bolt.Tx, now time.Time) error {
		created, gone = false, false
		if bucket(tx, projectsBucket).Get(itob(d.ProjectID)) == nil {
			gone = true // deleted meanwhile; failing here would fail the whole group
			return nil
		}
		if err := bucket(tx, branchHeadsBucket).Put(branchKey(d.ProjectID, d.Branch), []byte(d.CommitSHA)); err != nil {
			return err
		}
		missing, err := headMissing(tx, d.ProjectID, d.Branch, d.CommitSHA)
		if err != nil || !missing {
			return err
		}
		if err := s.createDeployment(tx, d, now); err != nil {
			return err
		}
		created = true
		return nil
	})
	if err == nil && gone {
		err = ErrNotFound
	}
	return created, err
}
