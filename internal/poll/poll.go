// Package poll finds new commits without webhooks (contract section 9): it reads the heads of the
// production branches (and open pull requests) of projects with trigger poll every poll.interval,
// spread over the interval, and reconciles every project's heads with its deployments at start and
// every reconcile.interval, asking for a deployment of each head that has none.
//
// GitHub repositories are read through the REST API with conditional requests, which cost no rate
// limit while nothing changes; any other git URL with one `git ls-remote` per project and check.
// Skip markers in a head's message apply, read from the commit itself since there is no payload.
package poll

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/miaobu/miaobu/internal/clock"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/trigger"
)

// Project is a project as the poller sees it.
type Project struct {
	ID   int64
	Slug string
	// Repo is the owner/name of a GitHub repository, "" for any other git URL.
	Repo    string
	RepoURL string
	// Branch is the production branch.
	Branch string
	// Poll reports trigger poll; the other projects are only reconciled.
	Poll bool
	// PullRequests asks for the heads of the open pull requests too (GitHub repositories only),
	// for projects that deploy previews of them.
	PullRequests bool
}

// Head is the commit at the head of a branch or pull request.
type Head struct {
	// Branch is the branch, for a pull request its head branch.
	Branch string
	// PullRequest is the pull request's number, 0 for a branch.
	PullRequest int
	SHA         string
	// Message and Author are the commit's, read before a deployment is asked for.
	Message, Author string
}

// key names the branch or pull request of a head within its project.
func (h Head) key() string {
	if h.PullRequest != 0 {
		return "pull/" + strconv.Itoa(h.PullRequest)
	}
	return "branch/" + h.Branch
}

// Cause says why the poller asks for a deployment; it is the trigger the deployment records.
type Cause string

// Causes of the deployments the poller asks for.
const (
	// CausePoll is a new head found by polling.
	CausePoll Cause = "poll"
	// CauseReconcile is a head found without a deployment by reconciliation.
	CauseReconcile Cause = "reconcile"
)

// Deployer is what the poller asks of the agent: whether a head is deployed, and deploying it.
type Deployer interface {
	// Missing reports whether h needs a deployment: no deployment of its commit is queued,
	// running or live, and the newest deployment of its branch or pull request is not of that
	// commit either (that one was tried, or rolled back from: a push or `miaobu deploy` retries);
	// a deployment of another commit that a user chose is passed over, like a rollback.
	Missing(p Project, h Head) (bool, error)
	// Deploy queues a deployment of h for cause unless it is no longer Missing, checked again in
	// the same transaction; it returns the new deployment's id, 0 when there is none.
	Deploy(ctx context.Context, p Project, h Head, cause Cause) (int64, error)
}

// Git reads git remotes as the builds do, with their environment and credentials.
type Git interface {
	// LsRemote returns the commits that refs (full names) point to; a missing ref is absent.
	LsRemote(ctx context.Context, repoURL string, github bool, refs ...string) (map[string]string, error)
	// CommitInfo returns the message and author of sha, the head of branch.
	CommitInfo(ctx context.Context, repoURL string, github bool, branch, sha string) (message, author string, err error)
}

// Results of a poll, the values of the result label of the polls metric.
const (
	ResultChanged   = "changed"
	ResultUnchanged = "unchanged"
	ResultError     = "error"
)

// DefaultInterval is the Interval of Options that leave it zero.
const DefaultInterval = time.Minute

// Options configure a Poller.
type Options struct {
	// Projects returns every project; the poller reads it at each round.
	Projects func() ([]Project, error)
	Deployer Deployer
	// GitHub reads GitHub repositories; nil (no token) reads them with Git from their clone URL.
	GitHub *github.Client
	Git    Git
	// Interval is poll.interval; Reconcile is reconcile.interval, 0 for a reconciliation at start only.
	Interval, Reconcile time.Duration
	// Concurrency is how many projects are checked at once; 4 when 0.
	Concurrency int
	// Clock is the system clock when nil.
	Clock clock.Clock
	Log   *slog.Logger
	// Observe, when set, is told the result of every poll (ResultChanged, ResultUnchanged, ResultError).
	Observe func(result string)
}

// checkTimeout bounds one check of one project.
const checkTimeout = time.Minute

// refresh is the longest the poller sleeps without reading the project list again.
const refresh = time.Minute

// Poller polls and reconciles projects; it is safe for concurrent use.
type Poller struct {
	opts   Options
	github *githubSource
	git    *gitSource
	wake   chan struct{}

	mu sync.Mutex
	// memos are what each project's heads were when last handled.
	memos map[int64]*memo
	// slots are the schedule of the projects with trigger poll.
	slots map[int64]*slot
}

// memo is what the poller remembers of a project's heads: the SHA it last handled per head key,
// and the heads it skipped for a skip marker (their message need not be read again).
type memo struct {
	seen, skipped map[string]string
}

// New returns a Poller of opts, with the defaults for its zero fields.
func New(opts Options) *Poller {
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	p := &Poller{opts: opts, git: &gitSource{git: opts.Git}, wake: make(chan struct{}, 1),
		memos: map[int64]*memo{}, slots: map[int64]*slot{}}
	if opts.GitHub != nil {
		p.github = newGitHubSource(opts.GitHub, opts.Clock)
	}
	return p
}

// Wake makes the poller read the project list now, as after a project was added or changed.
func (p *Poller) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Status is what the poller knows of a polled project.
type Status struct {
	// LastPollAt is the last successful check, nil before one.
	LastPollAt *time.Time
	// LastPollError says why the last check failed, "" when it succeeded.
	LastPollError string
	// NextPollAt is when the next check is due.
	NextPollAt *time.Time
}

// Status returns the state of project id's polling, false when the project is not polled.
func (p *Poller) Status(id int64) (Status, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.slots[id]
	if !ok {
		return Status{}, false
	}
	st := Status{LastPollError: s.lastError}
	if !s.lastPoll.IsZero() {
		t := s.lastPoll.UTC()
		st.LastPollAt = &t
	}
	next := s.next.UTC()
	st.NextPollAt = &next
	return st, true
}

// RateRemaining returns the requests the GitHub token has left in its primary rate limit, as the
// last answer said, and false before any answer said.
func (p *Poller) RateRemaining() (int, bool) {
	if p.github == nil {
		return 0, false
	}
	return p.github.remaining()
}

// Run reconciles every project, then polls and reconciles on schedule until ctx ends.
func (p *Poller) Run(ctx context.Context) {
	c := p.opts.Clock
	var nextReconcile time.Time // zero until the reconciliation at start has run
	for ctx.Err() == nil {
		wake := c.Now().Add(refresh)
		// A project list that cannot be read is not an empty one: this round waits for the next.
		if projects, err := p.opts.Projects(); err != nil {
			p.opts.Log.Error("poll: reading the projects", "err", err)
		} else {
			p.sync(projects, c.Now(), nextReconcile.IsZero())
			if nextReconcile.IsZero() || (p.opts.Reconcile > 0 && !c.Now().Before(nextReconcile)) {
				p.reconcile(ctx, projects)
				nextReconcile = c.Now().Add(p.opts.Reconcile)
			}
			p.checkDue(ctx, projects, c.Now())
			wake = c.Now().Add(refresh)
			if p.opts.Reconcile > 0 && nextReconcile.Before(wake) {
				wake = nextReconcile
			}
			if next := p.nextDue(); !next.IsZero() && next.Before(wake) {
				wake = next
			}
		}
		select {
		case <-ctx.Done():
		case <-p.wake:
		case <-c.At(wake):
		}
	}
}

// sync makes the memos and the schedule follow the project list: new polled projects get a slot,
// spread over the interval, and deleted ones are forgotten. At start, the reconciliation has just
// looked at every project, so no first check is due at once.
func (p *Poller) sync(projects []Project, now time.Time, start bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	live := map[int64]bool{}
	polled := 0
	for _, pr := range projects {
		live[pr.ID] = true
		if pr.Poll {
			polled++
		}
	}
	maps.DeleteFunc(p.memos, func(id int64, _ *memo) bool { return !live[id] })
	added := 0
	if start {
		added = 1
	}
	for _, pr := range projects {
		_, ok := p.slots[pr.ID]
		switch {
		case pr.Poll && !ok:
			// New projects' first checks come one after the other over an interval, so that many
			// projects added at once (or at start) are not polled in the same second.
			p.slots[pr.ID] = newSlot(now.Add(time.Duration(added) * p.opts.Interval / time.Duration(polled)))
			added++
		case !pr.Poll && ok:
			delete(p.slots, pr.ID)
		}
	}
	maps.DeleteFunc(p.slots, func(id int64, _ *slot) bool { return !live[id] })
	if p.github != nil {
		p.github.forget(live)
	}
}

// nextDue returns when the next check is due, zero when no project is polled.
func (p *Poller) nextDue() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	var next time.Time
	for _, s := range p.slots {
		if next.IsZero() || s.next.Before(next) {
			next = s.next
		}
	}
	return next
}

// checkDue checks the polled projects whose check is due at now, Concurrency at a time, and returns
// once every check has ended. During a rate-limit pause, the checks of GitHub projects move to their
// first slot after it.
func (p *Poller) checkDue(ctx context.Context, projects []Project, now time.Time) {
	var due []Project
	p.mu.Lock()
	for _, pr := range projects {
		s, ok := p.slots[pr.ID]
		if !ok {
			continue
		}
		if until := p.source(pr).pausedUntil(); until.After(now) {
			if s.next.Before(until) {
				s.schedule(until, p.opts.Interval)
			}
			continue
		}
		if !s.next.After(now) {
			due = append(due, pr)
		}
	}
	p.mu.Unlock()
	p.each(ctx, due, p.check)
}

// each runs fn for every project, Concurrency at a time, and returns once all have ended.
func (p *Poller) each(ctx context.Context, projects []Project, fn func(ctx context.Context, pr Project)) {
	var wg sync.WaitGroup
	limit := make(chan struct{}, p.opts.Concurrency)
	for _, pr := range projects {
		limit <- struct{}{}
		wg.Go(func() {
			defer func() { <-limit }()
			fn(ctx, pr)
		})
	}
	wg.Wait()
}

// check polls one project: it reads its heads and handles every head that changed since the last
// check, then schedules the next check (later after failures).
func (p *Poller) check(ctx context.Context, pr Project) {
	src := p.source(pr)
	changed, err := p.visit(ctx, src, pr, CausePoll)
	result := ResultUnchanged
	switch {
	case err != nil:
		result = ResultError
	case changed:
		result = ResultChanged
	}
	if p.opts.Observe != nil {
		p.opts.Observe(result)
	}
	now := p.opts.Clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.slots[pr.ID]
	if !ok {
		return // deleted, or no longer polled, meanwhile
	}
	if err == nil {
		s.succeeded(now, p.opts.Interval)
		return
	}
	s.failed(now, p.opts.Interval, err, src.pausedUntil())
	if ctx.Err() == nil {
		p.opts.Log.Warn("poll: checking for new commits failed", "project", pr.ID, "err", err, "retry_at", s.next.UTC())
	}
}

// reconcile compares the heads of every project with its deployments and deploys the heads that
// have none. Projects read through GitHub wait for the next reconciliation while the rate limit
// is paused.
func (p *Poller) reconcile(ctx context.Context, projects []Project) {
	now := p.opts.Clock.Now()
	var ready []Project
	waiting, until := 0, time.Time{}
	for _, pr := range projects {
		if paused := p.source(pr).pausedUntil(); paused.After(now) {
			waiting, until = waiting+1, paused
			continue
		}
		ready = append(ready, pr)
	}
	if waiting > 0 {
		p.opts.Log.Warn("reconcile: projects on GitHub wait for the next reconciliation, the rate limit is low",
			"projects", waiting, "rate_limit_reset", until.UTC())
	}
	p.each(ctx, ready, func(ctx context.Context, pr Project) {
		_, err := p.visit(ctx, p.source(pr), pr, CauseReconcile)
		if err != nil && ctx.Err() == nil {
			p.opts.Log.Warn("reconcile: reading the project's heads failed", "project", pr.ID, "err", err)
		}
		// For a polled project this was a check too; its schedule stays.
		p.mu.Lock()
		defer p.mu.Unlock()
		if s, ok := p.slots[pr.ID]; ok {
			s.record(p.opts.Clock.Now(), err)
		}
	})
}

// visit reads the heads of a project and handles them: for a poll, the heads that changed since
// they were last handled; for a reconciliation, every head. It reports whether a head changed.
func (p *Poller) visit(ctx context.Context, src source, pr Project, cause Cause) (changed bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	heads, err := src.heads(ctx, pr)
	if err != nil {
		return false, err
	}
	m := p.memo(pr.ID, heads)
	var errs []error
	for _, h := range heads {
		k := h.key()
		p.mu.Lock()
		seen, skipped := m.seen[k] == h.SHA, m.skipped[k] == h.SHA
		p.mu.Unlock()
		changed = changed || !seen
		if skipped || (seen && cause == CausePoll) {
			continue
		}
		marker, err := p.handle(ctx, src, pr, h, cause)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.mu.Lock()
		m.seen[k] = h.SHA
		if marker {
			m.skipped[k] = h.SHA
		}
		p.mu.Unlock()
	}
	return changed, errors.Join(errs...)
}

// memo returns the memo of a project, forgetting the heads that are no longer there.
func (p *Poller) memo(id int64, heads []Head) *memo {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, ok := p.memos[id]
	if !ok {
		m = &memo{seen: map[string]string{}, skipped: map[string]string{}}
		p.memos[id] = m
	}
	keys := map[string]bool{}
	for _, h := range heads {
		keys[h.key()] = true
	}
	gone := func(k, _ string) bool { return !keys[k] }
	maps.DeleteFunc(m.seen, gone)
	maps.DeleteFunc(m.skipped, gone)
	return m
}

// handle deploys head h of a project for cause when it is missing and its message has no skip
// marker; it reports whether a marker skipped it.
func (p *Poller) handle(ctx context.Context, src source, pr Project, h Head, cause Cause) (skipped bool, err error) {
	missing, err := p.opts.Deployer.Missing(pr, h)
	if err != nil || !missing {
		return false, err
	}
	if h.Message, h.Author, err = src.commit(ctx, pr, h); err != nil {
		return false, err
	}
	if marker, ok := trigger.SkipMarker(h.Message); ok {
		log := p.opts.Log.With("project", pr.ID, "branch", h.Branch, "commit", h.SHA[:7], "trigger", string(cause))
		if h.PullRequest != 0 {
			log = log.With("pull_request", h.PullRequest)
		}
		log.Info("new commit skipped: its message contains " + marker)
		return true, nil
	}
	_, err = p.opts.Deployer.Deploy(ctx, pr, h, cause)
	return false, err
}

// source returns how a project's repository is read.
func (p *Poller) source(pr Project) source {
	if pr.Repo != "" && p.github != nil {
		return p.github
	}
	return p.git
}
