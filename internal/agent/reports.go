package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/outbox"
	"github.com/miaobu/miaobu/internal/report"
	"github.com/miaobu/miaobu/internal/store"
)

// newReporter returns the reporter of the agent's deployments to GitHub and makes the store enqueue
// its reports with every change of a deployment's status.
func (a *Agent) newReporter() *report.Reporter {
	r := report.New(report.Options{GitHub: a.github, HasToken: a.cfg.GitHub.Token != "",
		Statuses: a.cfg.GitHub.Statuses, Deployments: a.cfg.GitHub.Deployments, PublicURL: a.cfg.PublicURL,
		LiveURL: a.liveURL, DeploymentURL: a.deploymentURL, Store: a.store, Log: a.log})
	a.store.OnTransition(r.Transition)
	return r
}

// startOutbox runs the outbox worker, which sends the reports, until ctx ends; the returned
// function waits for it to stop, so that it is done before the store closes.
func (a *Agent) startOutbox(ctx context.Context) (wait func()) {
	w := outbox.New(a.store, outbox.Options{Logger: a.log})
	a.reporter.Register(w)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	return func() { <-done }
}

// webhookEventsMissing returns the events p's GitHub hook lacks, as the agent last saw the hook.
func webhookEventsMissing(p *store.Project) []string {
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

// deploymentEvent answers a verified deployment event e, nil when its payload is invalid (contract
// section 7): a deployment made on GitHub for production, not by miaobu, puts its commit live. A
// kept successful deployment of the commit goes live at once, like a rollback; otherwise the commit
// is built. The GitHub deployment then receives the statuses. record is the delivery to record.
func (a *Agent) deploymentEvent(w http.ResponseWriter, r *http.Request, log *slog.Logger, start time.Time, p *store.Project,
	record store.Delivery, e *github.DeploymentEvent) {
	const event = "deployment"
	if e == nil {
		a.webhookDone(log, start, event, "invalid_payload")
		writeError(w, http.StatusBadRequest, "Invalid JSON payload")
		return
	}
	answer := func(outcome string, deploymentID int64, body api.WebhookAnswer) {
		record.Outcome, record.DeploymentID = outcome, deploymentID
		if !a.recordDelivery(w, r, log, record) {
			return
		}
		a.webhookDone(log, start, event, outcome)
		writeJSON(w, http.StatusOK, body)
	}
	switch {
	case e.FromMiaobu:
		answer(store.OutcomeIgnored, 0, api.WebhookAnswer{Status: "ignored", Message: "Deployment created by miaobu ignored"})
		return
	case !strings.EqualFold(e.Environment, "production"):
		answer(store.OutcomeIgnored, 0, api.WebhookAnswer{Status: "ignored",
			Message: fmt.Sprintf("Deployment to environment '%s' ignored (only 'production' deploys)", e.Environment)})
		return
	}
	log = log.With("commit", e.SHA[:7], "github_deployment", e.ID)
	success := api.WebhookAnswer{Status: "success", Message: fmt.Sprintf("Deployment triggered for commit %s", e.SHA[:7]),
		CommitSHA: e.SHA, Branch: p.DefaultBranch}
	if kept := a.liveAgain(r.Context(), log, p, e); kept != nil {
		success.DeploymentID, success.CommitMessage = kept.ID, kept.CommitMessage
		answer(store.OutcomeSuccess, kept.ID, success)
		return
	}
	id, err := a.store.RecordGitHubDeployment(r.Context(), store.GitHubDeployment{ProjectID: p.ID, DeliveryID: record.GUID,
		CommitSHA: e.SHA, Branch: p.DefaultBranch, GitHubID: e.ID, RemoteAddr: record.RemoteAddr})
	if err != nil {
		a.storeFailed(w, r, log, err)
		return
	}
	a.wakeWorkers()
	success.DeploymentID = id
	a.webhookDone(log.With("deployment", id), start, event, "success")
	writeJSON(w, http.StatusOK, success)
}

// liveAgain makes the newest successful deployment of e's commit live again at once, as a rollback,
// and queues the success of e's GitHub deployment; it returns that deployment, or nil when there
// is none whose files are kept (the commit is then built).
func (a *Agent) liveAgain(ctx context.Context, log *slog.Logger, p *store.Project, e *github.DeploymentEvent) *store.Deployment {
	history, err := a.store.Deployments(p.ID, 0)
	if err != nil {
		log.Warn("deployment event: reading the history; building the commit instead", "err", err)
		return nil
	}
	for _, d := range history {
		if d.CommitSHA != e.SHA || d.Status != api.StatusDeployed {
			continue
		}
		if d.ID != p.ActiveDeploymentID {
			// A rollback must finish even when GitHub stops waiting for the answer.
			if err := a.goLive(context.WithoutCancel(ctx), p, d); err != nil {
				log.Warn("deployment event: the kept deployment cannot go live; building the commit instead", "deployment", d.ID, "err", err)
				return nil
			}
			log.Info("rolled back", "deployment", d.ID)
		}
		if live, err := a.store.Project(p.ID); err == nil {
			p = live
		}
		a.reportLiveAgain(log, p, d, e.ID)
		return d
	}
	return nil
}

// reportLiveAgain queues the report that an earlier deployment d of p is live again, to the GitHub
// Deployment githubID that asked for it or, with 0, to d's own.
func (a *Agent) reportLiveAgain(log *slog.Logger, p *store.Project, d *store.Deployment, githubID int64) {
	for _, m := range a.reporter.LiveAgain(p, d, githubID) {
		if _, err := a.store.EnqueueMessage(m); err != nil {
			log.Warn("queueing the report of a rollback to GitHub", "deployment", d.ID, "err", err)
		}
	}
}
