package agent

import (
	"context"
	"math"
	"strconv"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/domain"
	"github.com/miaobu/miaobu/internal/poll"
	"github.com/miaobu/miaobu/internal/store"
	"github.com/miaobu/miaobu/internal/trigger"
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
	if atStart, err := a.pollProjects(); err == nil {
		opts.AtStart = append(make([]poll.Project, 0, len(atStart)), atStart...) // not nil, even when empty
	}
	a.poller = poll.New(opts)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		a.poller.Run(ctx)
	}()
	return stopped
}

// pollProjects lists every project as the poller sees it, with the previews that are up; on a
// cluster, only those this node polls and reconciles (each project is polled by one node).
func (a *Agent) pollProjects() ([]poll.Project, error) {
	projects, err := a.domain.Projects()
	if err != nil {
		return nil, err
	}
	owns := a.pollsHere()
	out := make([]poll.Project, 0, len(projects))
	for _, p := range projects {
		if !owns(p.ID) {
			continue
		}
		_, previews, err := a.domain.Previews(strconv.FormatInt(p.ID, 10))
		if err != nil {
			return nil, err
		}
		var up []poll.Preview
		for _, pv := range previews {
			if !pv.Removed() {
				up = append(up, poll.Preview{Alias: pv.Alias, Branch: pv.Branch, PullRequest: pv.PullRequest, HeadSHA: pv.HeadSHA})
			}
		}
		out = append(out, poll.Project{ID: p.ID, Slug: p.Slug, Repo: p.Repo, RepoURL: p.RepoURL, Branch: p.DefaultBranch,
			Poll: p.TriggerMode == trigger.ModePoll, PullRequests: p.PRPreviews, PreviewBranches: p.PreviewBranches,
			Previews: up, WatchPaths: p.WatchPaths})
	}
	return out, nil
}

// wakePoller makes the poller see a project that was added or changed now, rather than within a minute.
func (a *Agent) wakePoller() {
	if a.poller != nil {
		a.poller.Wake()
	}
}

// pollDeployer deploys the heads the poller finds, through the domain's duplicate rules.
type pollDeployer struct{ a *Agent }

// Missing reports whether the head, found for cause, needs a deployment (see domain.HeadMissing).
func (d pollDeployer) Missing(p poll.Project, h poll.Head, cause poll.Cause) (bool, error) {
	return d.a.domain.HeadMissing(domainHead(p, h, store.Trigger(cause)))
}

// Deploy queues a deployment of the head, if it is still missing.
func (d pollDeployer) Deploy(ctx context.Context, p poll.Project, h poll.Head, cause poll.Cause) (int64, error) {
	dep, err := d.a.domain.DeployHead(ctx, domainHead(p, h, store.Trigger(cause)))
	if err != nil || dep == nil {
		return 0, err
	}
	return dep.ID, nil
}

// LastDeployed returns the commit live where the head deploys, "" when none is.
func (d pollDeployer) LastDeployed(p poll.Project, h poll.Head) (string, error) {
	return d.a.domain.LastDeployed(domainHead(p, h, ""))
}

// Skip reports a head skipped for reason to GitHub, as a skipped push is.
func (d pollDeployer) Skip(_ context.Context, p poll.Project, h poll.Head, reason string) error {
	return d.a.domain.SkipHead(p.ID, h.SHA, reason)
}

// Close takes the preview of pull request n down, as its closed event does.
func (d pollDeployer) Close(_ context.Context, p poll.Project, n int) error {
	return d.a.domain.ClosePullRequest(p.ID, n)
}

// BranchGone takes the preview of a deleted branch down, as the branch's deletion does.
func (d pollDeployer) BranchGone(_ context.Context, p poll.Project, pv poll.Preview) error {
	return d.a.domain.BranchGone(p.ID, pv.Branch, pv.HeadSHA, pv.Alias)
}

// domainHead is head h of project p as the domain takes it, with trigger t.
func domainHead(p poll.Project, h poll.Head, t store.Trigger) domain.Head {
	return domain.Head{ProjectID: p.ID, Branch: h.Branch, SHA: h.SHA, Message: h.Message, Author: h.Author,
		MessageUnknown: h.MessageUnknown, PullRequest: h.PullRequest, Fork: h.Fork, Before: h.Before, Trigger: t}
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
