package agent

import (
	"context"

	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/report"
	"github.com/miaobu/miaobu/internal/store"
)

// newReporter returns the reporter of the agent's deployments to GitHub, whose senders are
// registered on the outbox, and makes the store enqueue its reports with every change of a
// deployment's status. The URLs are the domain's, read when a report is made.
func (a *Agent) newReporter(gh *github.Client) *report.Reporter {
	r := report.New(report.Options{GitHub: gh, HasToken: a.cfg.GitHub.Token != "",
		Statuses: a.cfg.GitHub.Statuses, Deployments: a.cfg.GitHub.Deployments, PublicURL: a.cfg.PublicURL,
		LiveURL:       func(p *store.Project) string { return a.domain.LiveURL(p) },
		DeploymentURL: func(p *store.Project, d *store.Deployment) string { return a.domain.DeploymentURL(p, d) },
		Store:         a.store, Log: a.log})
	a.store.OnTransition(r.Transition)
	r.Register(a.outbox)
	return r
}

// startOutbox runs the outbox worker, which sends what every registered sender (the reports to
// GitHub, the notifications) has left in the store, until ctx ends; the returned function waits
// for it to stop, so that it is done before the store closes.
func (a *Agent) startOutbox(ctx context.Context) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.outbox.Run(ctx)
	}()
	return func() { <-done }
}
