package agent

import (
	"context"
	"fmt"
	"math"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/poll"
	"github.com/miaobu/miaobu/internal/store"
)

// startPoller starts polling the projects with trigger poll and reconciling every project (at once,
// then every reconcile.interval) until ctx ends; done is closed once it has stopped.
func (a *Agent) startPoller(ctx context.Context) (done <-chan struct{}) {
	opts := poll.Options{Projects: a.pollProjects, Deployer: pollDeployer{a}, Git: a.builder,
		Interval: a.cfg.Poll.Interval, Reconcile: a.cfg.Reconcile.Interval, Clock: a.clock, Log: a.log,
		Observe: func(result string) { a.metrics.polls.WithLabelValues(result).Inc() }}
	if a.cfg.GitHub.Token != "" {
		// Without a token, GitHub repositories are read with git from their clone URL.
		opts.GitHub = a.github
	}
	a.poller = poll.New(opts)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		a.poller.Run(ctx)
	}()
	return stopped
}

// projectTrigger is how the API names the way a project's new commits are found.
func projectTrigger(p *store.Project) string {
	if p.Trigger == api.ProjectTriggerPoll {
		return api.ProjectTriggerPoll
	}
	return api.ProjectTriggerWebhook
}

// storedTrigger checks the trigger of a request and returns what the store keeps of it: "poll", or
// "" for webhooks.
func storedTrigger(trigger string) (string, error) {
	switch trigger {
	case "", api.ProjectTriggerWebhook:
		return "", nil
	case api.ProjectTriggerPoll:
		return api.ProjectTriggerPoll, nil
	}
	return "", fmt.Errorf("trigger must be webhook or poll, not %q", trigger)
}

// pollProjects lists every project as the poller sees it.
func (a *Agent) pollProjects() ([]poll.Project, error) {
	projects, err := a.store.Projects()
	if err != nil {
		return nil, err
	}
	out := make([]poll.Project, 0, len(projects))
	for _, p := range projects {
		out = append(out, poll.Project{ID: p.ID, Slug: p.Slug, Repo: p.Repo, RepoURL: p.RepoURL, Branch: p.DefaultBranch,
			Poll: p.Trigger == api.ProjectTriggerPoll})
	}
	return out, nil
}

// wakePoller makes the poller see a project that was added or changed now, rather than within a minute.
func (a *Agent) wakePoller() {
	if a.poller != nil {
		a.poller.Wake()
	}
}

// pollDeployer deploys the heads the poller finds, through the store's duplicate rules.
type pollDeployer struct{ a *Agent }

// Missing reports whether the head has no deployment that is queued, running, live or its
// branch's newest.
func (d pollDeployer) Missing(p poll.Project, h poll.Head) (bool, error) {
	return d.a.store.HeadMissing(p.ID, h.Branch, h.SHA)
}

// Deploy queues a deployment of the head, if it is still missing, and wakes the build workers.
func (d pollDeployer) Deploy(ctx context.Context, p poll.Project, h poll.Head, cause poll.Cause) (int64, error) {
	dep := &store.Deployment{ProjectID: p.ID, CommitSHA: h.SHA, CommitMessage: h.Message, CommitAuthor: h.Author,
		Branch: h.Branch, Trigger: string(cause)}
	created, err := d.a.store.DeployHead(ctx, dep)
	if err != nil || !created {
		return 0, err
	}
	d.a.wakeWorkers()
	return dep.ID, nil
}

// rateRemaining is what polling last heard of the GitHub token's rate limit, NaN before it heard.
func (a *Agent) rateRemaining() float64 {
	if a.poller == nil {
		return math.NaN()
	}
	n, ok := a.poller.RateRemaining()
	if !ok {
		return math.NaN()
	}
	return float64(n)
}

// pollStatus is how the polling of project id goes, all null when it is not polled.
func (a *Agent) pollStatus(id int64) api.PollStatus {
	var ps api.PollStatus
	if a.poller == nil {
		return ps
	}
	if st, ok := a.poller.Status(id); ok {
		ps.LastPollAt, ps.NextPollAt = st.LastPollAt, st.NextPollAt
		if st.LastPollError != "" {
			ps.LastPollError = &st.LastPollError
		}
	}
	return ps
}
