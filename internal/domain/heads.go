package domain

import (
	"context"

	"github.com/miaobu/miaobu/internal/store"
)

// Head is the commit at the head of a project's branch, found by the agent itself.
type Head struct {
	ProjectID                    int64
	Branch, SHA, Message, Author string
	// Trigger is store.TriggerPoll or store.TriggerReconcile.
	Trigger store.Trigger
}

// HeadMissing reports whether a head needs a deployment: nothing of its commit is queued, running
// or live, and its branch's newest deployment is not of it (see store.Store.HeadMissing).
func (s *Service) HeadMissing(projectID int64, branch, sha string) (bool, error) {
	return s.store.HeadMissing(projectID, branch, sha)
}

// DeployHead queues a deployment of a head found by polling or reconciliation unless it is no
// longer missing, checked again as it is stored; it returns the deployment, nil when none was made.
func (s *Service) DeployHead(ctx context.Context, h Head) (*store.Deployment, error) {
	d := &store.Deployment{ProjectID: h.ProjectID, CommitSHA: h.SHA, CommitMessage: h.Message, CommitAuthor: h.Author,
		Branch: h.Branch, Trigger: h.Trigger}
	created, err := s.store.DeployHead(ctx, d)
	if err != nil || !created {
		return nil, err
	}
	s.builds.Wake()
	s.log.Info("deployment queued", "project", d.ProjectID, "deployment", d.ID, "branch", d.Branch, "commit", d.CommitSHA[:7],
		"trigger", d.Trigger)
	return d, nil
}

// SkipHead reports to GitHub that commit sha, a head found by polling or reconciliation, is not
// deployed for reason, as a skipped push is reported, so that a required check does not wait for it.
func (s *Service) SkipHead(projectID int64, sha, reason string) error {
	p, err := s.store.Project(projectID)
	if err != nil {
		return err
	}
	s.report(s.log.With("project", p.ID, "commit", sha[:7]), "a skipped commit", s.reports.Skipped(p, sha, reason))
	return nil
}

// LiveCommit returns the commit live in the production of project projectID, "" when none is.
func (s *Service) LiveCommit(projectID int64) (string, error) {
	p, err := s.store.Project(projectID)
	if err != nil {
		return "", err
	}
	return s.lastDeployedCommit(p, "")
}
