package domain

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/outbox"
	"github.com/miaobu/miaobu/internal/store"
)

// receiveDeployment records a verified deployment event by contract section 7: a deployment made on
// GitHub for production in the project's repository, not by miaobu, puts its commit live. A kept
// successful deployment of the commit goes live at once, like a rollback; otherwise the commit is
// built, unless a deployment of it is queued, running or live for production (the duplicate rule
// of pushes). The GitHub deployment then receives the statuses. A GitHub deployment already
// handled, such as a replayed event, is ignored, and so is any action but created.
func (s *Service) receiveDeployment(ctx context.Context, p *store.Project, v Verified) (Receipt, error) {
	e := v.Deployment
	switch {
	case e.Action != "created":
		return s.ignore(ctx, p, v, fmt.Sprintf("Deployment action '%s' ignored (only 'created' deploys)", e.Action))
	case p.Repo != "" && !strings.EqualFold(e.Repository, p.Repo):
		// A hook made by hand names no repository of the project's to compare with.
		return s.ignore(ctx, p, v, fmt.Sprintf("Deployment in repository '%s' ignored (this project deploys '%s')", e.Repository, p.Repo))
	case e.FromMiaobu:
		return s.ignore(ctx, p, v, "Deployment created by miaobu ignored")
	case !strings.EqualFold(e.Environment, "production"):
		return s.ignore(ctx, p, v, fmt.Sprintf("Deployment to environment '%s' ignored (only 'production' deploys)", e.Environment))
	}
	handled := fmt.Sprintf("GitHub deployment %d was already handled", e.ID)
	if done, err := s.store.HandledGitHubDeployment(p.ID, e.ID); err != nil {
		return recordFailed(p, err)
	} else if done {
		return s.ignore(ctx, p, v, handled)
	}
	success := Receipt{Outcome: OutcomeSuccess, Status: "success", Message: fmt.Sprintf("Deployment triggered for commit %s", e.SHA[:7]),
		ProjectID: p.ID, CommitSHA: e.SHA, Branch: p.DefaultBranch}
	if kept := s.liveAgain(ctx, p, e); kept != nil {
		success.DeploymentID, success.CommitMessage = kept.ID, kept.CommitMessage
		return s.record(ctx, p, v, store.OutcomeSuccess, success)
	}
	res, err := s.store.RecordGitHubDeployment(ctx, store.GitHubDeployment{ProjectID: p.ID, DeliveryID: v.GUID,
		CommitSHA: e.SHA, Branch: p.DefaultBranch, GitHubID: e.ID, RemoteAddr: v.RemoteAddr})
	switch {
	case err != nil:
		return recordFailed(p, err)
	case res.Handled:
		// A replay of the same event that arrived together with it.
		return Receipt{Outcome: OutcomeIgnored, Status: "ignored", Message: handled, ProjectID: p.ID, CommitSHA: e.SHA, Reason: handled}, nil
	case res.Duplicate:
		if d, err := s.store.Deployment(res.DeploymentID); err == nil {
			s.report(s.log.With("project", p.ID, "deployment", d.ID, "github_deployment", e.ID), "a deployment already under way",
				s.reports.AlreadyDeploying(p, d, e.ID))
		}
		return Receipt{Outcome: OutcomeSkipped, Status: "skipped", Message: fmt.Sprintf("Deployment for commit %s already exists", e.SHA[:7]),
			ProjectID: p.ID, DeploymentID: res.DeploymentID, CommitSHA: e.SHA}, nil
	}
	s.builds.Wake()
	success.DeploymentID = res.DeploymentID
	return success, nil
}

// liveAgain makes the newest successful production deployment of e's commit live again at once, as
// a rollback, and queues the success of e's GitHub deployment; it returns that deployment, or nil
// when there is none whose files are kept (the commit is then built).
func (s *Service) liveAgain(ctx context.Context, p *store.Project, e *github.DeploymentEvent) *store.Deployment {
	log := s.log.With("project", p.ID, "commit", e.SHA[:7], "github_deployment", e.ID)
	history, err := s.store.Deployments(p.ID, 0)
	if err != nil {
		log.Warn("deployment event: reading the history; building the commit instead", "err", err)
		return nil
	}
	for _, d := range history {
		// A preview's build of the commit is not production's: it would switch the preview instead.
		if d.CommitSHA != e.SHA || d.Status != store.StatusDeployed || d.Environment != store.EnvironmentProduction {
			continue
		}
		if d.ID != p.ActiveDeploymentID {
			// A rollback must finish even when GitHub stops waiting for the answer.
			if err := s.goLive(context.WithoutCancel(ctx), p, d); err != nil {
				log.Warn("deployment event: the kept deployment cannot go live; building the commit instead", "deployment", d.ID, "err", err)
				return nil
			}
			log.Info("rolled back", "deployment", d.ID)
		}
		if err := s.store.HandleGitHubDeployment(p.ID, e.ID, d.ID); err != nil {
			log.Warn("deployment event: recording it as handled", "err", err)
		}
		if live, err := s.store.Project(p.ID); err == nil {
			p = live
		}
		s.report(log, "a rollback", s.reports.LiveAgain(p, d, e.ID))
		return d
	}
	return nil
}

// report queues messages to GitHub about what; a failure is logged, as nothing about GitHub fails
// a deployment.
func (s *Service) report(log *slog.Logger, what string, messages []outbox.Message) {
	for _, m := range messages {
		if _, err := s.store.EnqueueMessage(m); err != nil {
			log.Warn("queueing the report to GitHub of "+what, "kind", m.Kind, "err", err)
		}
	}
}

// WebhookEventsMissing returns the events p's GitHub hook lacks, as the agent last saw the hook;
// empty, not nil, when it lacks none or p has no GitHub hook.
func WebhookEventsMissing(p *store.Project) []string {
	if p.Repo == "" || p.WebhookID == 0 {
		return []string{}
	}
	events := p.WebhookEvents
	if events == nil {
		events = []string{"push"} // the events of every hook made before they were recorded
	}
	if missing := github.MissingEvents(events); missing != nil {
		return missing
	}
	return []string{}
}
