// Package poll finds new commits without webhooks (contract section 9): it reads the heads of the
// production and preview branches (and open pull requests) of projects with trigger poll every
// poll.interval, spread over the interval, and reconciles every project's heads of production and
// of the previews that are up with its deployments at start and every reconcile.interval, asking
// for a deployment of each head that has none.
//
// GitHub repositories are read through the REST API with conditional requests, which cost no rate
// limit while nothing changes; any other git URL with one `git ls-remote` per project and check.
// Skip markers in a head's message apply, read from the commit itself since there is no payload.
package poll

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
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
	// PreviewBranches are the project's preview_branches: the branches whose heads deploy previews.
	PreviewBranches []string
	// Previews are the previews that are up: reconciliation looks at their heads alone, and a pull
	// request's preview is taken down once the pull request is no longer open.
	Previews []Preview
	// WatchPaths are the project's watch_paths: a branch head none of whose changed files since
	// the commit live where it deploys matches is skipped.
	WatchPaths []string
}

// Preview is a preview that is up: of a branch, or of pull request PullRequest when it is not 0.
type Preview struct {
	Alias       string
	Branch      string
	PullRequest int
	// HeadSHA is the newest head commit the preview saw.
	HeadSHA string
}

// Head is the commit at the head of a branch or pull request.
type Head struct {
	// Branch is the branch, for a pull request its head branch.
	Branch string
	// PullRequest is the pull request's number, 0 for a branch; Fork says the pull request's head
	// comes from another repository than the base.
	PullRequest int
	Fork        bool
	SHA         string
	// Before is the SHA the poller last handled at this head, "" when it handled none.
	Before string
	// Message and Author are the commit's, read before a deployment is asked for; MessageUnknown
	// says they could not be read, so that the build reads the skip markers itself.
	Message, Author string
	MessageUnknown  bool
}

// key names the branch or pull request of a head within its project.
func (h Head) key() string {
	return Preview{Branch: h.Branch, PullRequest: h.PullRequest}.key()
}

// key names the branch or pull request of a preview within its project, as Head.key does.
func (pv Preview) key() string {
	if pv.PullRequest != 0 {
		return "pull/" + strconv.Itoa(pv.PullRequest)
	}
	return "branch/" + pv.Branch
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
	// Missing reports whether h, found for cause, needs a deployment: no deployment of its commit
	// is queued, running or live, and, unless polling saw the head move from h.Before as a push
	// would, the newest deployment of its branch or pull request is not of that commit either
	// (that one was tried, or rolled back from: a push or `miaobu deploy` retries); a deployment
	// of another commit that a user chose is passed over, like a rollback.
	Missing(p Project, h Head, cause Cause) (bool, error)
	// Deploy queues a deployment of h for cause unless it is no longer Missing, checked again in
	// the same transaction; it returns the new deployment's id, 0 when there is none.
	Deploy(ctx context.Context, p Project, h Head, cause Cause) (int64, error)
	// LastDeployed returns the commit live where h deploys (p's production or h's preview), ""
	// when none is.
	LastDeployed(p Project, h Head) (string, error)
	// Skip tells that h is not deployed for reason (such as "commit message contains [skip ci]"),
	// as a skipped push does: GitHub's commit status says so.
	Skip(ctx context.Context, p Project, h Head, reason string) error
	// Close takes down the preview of p's pull request n, which is no longer open, as a closed
	// pull request does.
	Close(ctx context.Context, p Project, n int) error
	// BranchGone takes down preview pv of a branch that p's repository no longer has, as the
	// branch's deletion does.
	BranchGone(ctx context.Context, p Project, pv Preview) error
}

// Git reads git remotes as the builds do, with their environment and credentials.
type Git interface {
	// LsRemote returns the commits that refs (full names) point to; a missing ref is absent.
	LsRemote(ctx context.Context, repoURL string, github bool, refs ...string) (map[string]string, error)
	// CommitInfo returns the message and author of sha, the head of branch.
	CommitInfo(ctx context.Context, repoURL string, github bool, branch, sha string) (message, author string, err error)
	// ChangedFiles returns the paths that differ between commits from and to.
	ChangedFiles(ctx context.Context, repoURL string, github bool, from, to string) ([]string, error)
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
	// AtStart are the projects there were when the agent started, read before it took requests:
	// the reconciliation at start is theirs, not also of a project added a moment later (whose
	// head was never missed). Nil: the projects of the first round.
	AtStart []Project
	// Concurrency is how many projects are checked or reconciled at once; 4 when 0.
	Concurrency int
	// CheckTimeout bounds each check and reconciliation of one project; DefaultCheckTimeout when 0.
	CheckTimeout time.Duration
	// Clock is the system clock when nil.
	Clock clock.Clock
	Log   *slog.Logger
	// Observe, when set, is told the result of every poll (ResultChanged, ResultUnchanged, ResultError).
	Observe func(result string)
}

// DefaultCheckTimeout is the CheckTimeout of Options that leave it zero.
const DefaultCheckTimeout = 30 * time.Second

// Waits before a failed reconciliation of a project is tried again: the first, doubled after each
// failure up to reconcile.interval, or maxReconcileRetry when it is longer or 0.
const (
	firstReconcileRetry = 15 * time.Second
	maxReconcileRetry   = 10 * time.Minute
)

// refresh is the longest the poller sleeps without reading the project list again.
const refresh = time.Minute

// Poller polls and reconciles projects; it is safe for concurrent use. Each project is checked or
// reconciled on its own, Concurrency at a time, so that a slow or hanging remote holds up no other.
type Poller struct {
	opts   Options
	github *githubSource
	git    *gitSource
	wake   chan struct{}
	// limit holds a token for each check or reconciliation that runs; failingLimit, for each of a
	// project whose last one failed, so that remotes that keep hanging wait for each other and
	// never for the slots of the others.
	limit, failingLimit chan struct{}

	mu sync.Mutex
	// memos are what each project's heads were when last handled.
	memos map[int64]*memo
	// slots are the schedule of the projects with trigger poll.
	slots map[int64]*slot
	// reconciles are the projects whose reconciliation is due, at start, every reconcile.interval,
	// or again after a failure.
	reconciles map[int64]*reconciliation
	// busy holds the projects whose check or reconciliation runs.
	busy map[int64]bool
	// failing holds the projects whose last check or reconciliation failed.
	failing map[int64]bool
	// sleepUntil is when the loop wakes next, zero while it is awake.
	sleepUntil time.Time
}

// reconciliation is a project's reconciliation that is due at a time, and its failures so far.
type reconciliation struct {
	at time.Time
	// github reports that the project is read through the GitHub API.
	github    bool
	failures  int
	lastError string
}

// memo is what the poller remembers of a project's heads: the SHA it last handled per head key,
// the heads it skipped for a skip marker (their message need not be read again), and the listings
// it said were cut short (see listing.cut), so that it says so once.
type memo struct {
	seen, skipped map[string]string
	cut           string
}

// New returns a Poller of opts, with the defaults for its zero fields.
func New(opts Options) *Poller {
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.CheckTimeout <= 0 {
		opts.CheckTimeout = DefaultCheckTimeout
	}
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	p := &Poller{opts: opts, git: &gitSource{git: opts.Git, timeout: opts.CheckTimeout}, wake: make(chan struct{}, 1),
		limit: make(chan struct{}, opts.Concurrency), failingLimit: make(chan struct{}, max(1, opts.Concurrency/2)), failing: map[int64]bool{}, memos: map[int64]*memo{}, slots: map[int64]*slot{},
		reconciles: map[int64]*reconciliation{}, busy: map[int64]bool{}}
	if opts.GitHub != nil {
		p.github = newGitHubSource(opts.GitHub, opts.Clock, opts.CheckTimeout)
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
	if s.github && st.LastPollError == "" && p.github != nil {
		// Held by a request refused for the rate limit of the token, which another project's check
		// may have met; a limit that only ran low is a pause, not an error.
		if until := p.github.refusedUntil(); until.After(p.opts.Clock.Now()) {
			st.LastPollError = "GitHub refused a request for the rate limit of the token: checks resume at " + until.UTC().Format(time.RFC3339)
		}
	}
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

// ReconcileError returns why the last reconciliation of project id failed and when it is tried
// again, false when its last reconciliation did not fail.
func (p *Poller) ReconcileError(id int64) (message string, retryAt time.Time, failed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.reconciles[id]
	if !ok || r.lastError == "" {
		return "", time.Time{}, false
	}
	return r.lastError, r.at.UTC(), true
}

// job is a check (a poll) or a reconciliation of one project.
type job struct {
	project Project
	cause   Cause
}

// Run reconciles every project, then polls and reconciles on schedule until ctx ends. It starts
// each due check and reconciliation without waiting for the others, and returns once they have ended.
func (p *Poller) Run(ctx context.Context) {
	var jobs sync.WaitGroup
	defer jobs.Wait()
	c := p.opts.Clock
	var nextReconcile time.Time // zero until the reconciliation at start is due
	for ctx.Err() == nil {
		now := c.Now()
		wake := now.Add(refresh)
		// A project list that cannot be read is not an empty one: this round waits for the next.
		projects, err := p.opts.Projects()
		if err != nil {
			p.opts.Log.Error("poll: reading the projects", "err", err)
		} else {
			p.sync(projects, now, nextReconcile.IsZero())
			if nextReconcile.IsZero() || (p.opts.Reconcile > 0 && !now.Before(nextReconcile)) {
				reconciled := projects
				if nextReconcile.IsZero() && p.opts.AtStart != nil {
					reconciled = p.opts.AtStart
				}
				p.reconcileAll(reconciled, now)
				nextReconcile = now.Add(p.opts.Reconcile)
			}
			for _, j := range p.due(projects, now) {
				jobs.Go(func() { p.run(ctx, j) })
			}
			if p.opts.Reconcile > 0 && nextReconcile.Before(wake) {
				wake = nextReconcile
			}
		}
		p.mu.Lock()
		if next := p.nextDue(); err == nil && !next.IsZero() && next.Before(wake) {
			wake = next
		}
		timer := c.At(wake)
		p.sleepUntil = wake
		p.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-p.wake:
		case <-timer:
		}
		p.mu.Lock()
		p.sleepUntil = time.Time{}
		p.mu.Unlock()
	}
}

// sync makes the memos and the schedule follow the project list: new polled projects get a slot,
// spread over the interval, and deleted ones are forgotten. At start, the reconciliation is about
// to look at every project, so no first check is due at once.
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
	maps.DeleteFunc(p.reconciles, func(id int64, _ *reconciliation) bool { return !live[id] })
	added := 0
	if start {
		added = 1
	}
	for _, pr := range projects {
		s, ok := p.slots[pr.ID]
		switch {
		case pr.Poll && !ok:
			// New projects' first checks come one after the other over an interval, so that many
			// projects added at once (or at start) are not polled in the same second.
			s = newSlot(now.Add(time.Duration(added) * p.opts.Interval / time.Duration(polled)))
			p.slots[pr.ID] = s
			added++
		case !pr.Poll && ok:
			delete(p.slots, pr.ID)
			continue
		case !pr.Poll:
			continue
		}
		s.github = p.onGitHub(pr)
	}
	maps.DeleteFunc(p.slots, func(id int64, _ *slot) bool { return !live[id] })
	maps.DeleteFunc(p.failing, func(id int64, _ bool) bool { return !live[id] })
	if p.github != nil {
		p.github.forget(live)
	}
}

// reconcileAll makes the reconciliation of every project due at now.
func (p *Poller) reconcileAll(projects []Project, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range projects {
		r, ok := p.reconciles[pr.ID]
		if !ok {
			r = &reconciliation{}
			p.reconciles[pr.ID] = r
		}
		r.at, r.github = now, p.onGitHub(pr)
	}
}

// nextDue returns when the next check or reconciliation of a project that is not busy is due, zero
// when none is. It runs with p.mu held.
func (p *Poller) nextDue() time.Time {
	var next time.Time
	earlier := func(id int64, t time.Time) {
		if !p.busy[id] && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for id, s := range p.slots {
		earlier(id, s.next)
	}
	for id, r := range p.reconciles {
		earlier(id, r.at)
	}
	return next
}

// due returns the checks and reconciliations due at now of the projects that are not busy, and
// marks those projects busy. A due reconciliation comes before a check: it looks at every head.
// During a rate-limit pause, the work of GitHub projects moves to after it.
func (p *Poller) due(projects []Project, now time.Time) []job {
	p.mu.Lock()
	defer p.mu.Unlock()
	var jobs []job
	for _, pr := range projects {
		if p.busy[pr.ID] {
			continue
		}
		if until := p.source(pr).pausedUntil(); until.After(now) {
			p.holdGitHub(until)
			continue
		}
		if r, ok := p.reconciles[pr.ID]; ok && !r.at.After(now) {
			jobs = append(jobs, job{pr, CauseReconcile})
		} else if s, ok := p.slots[pr.ID]; ok && !s.next.After(now) {
			jobs = append(jobs, job{pr, CausePoll})
		} else {
			continue
		}
		p.busy[pr.ID] = true
	}
	return jobs
}

// holdGitHub moves the checks and reconciliations of the GitHub projects that are not busy to
// after until, the end of a rate-limit pause: GitHub asks for no request with the token until then.
// It runs with p.mu held.
func (p *Poller) holdGitHub(until time.Time) {
	for id, s := range p.slots {
		if s.github && !p.busy[id] && s.next.Before(until) {
			s.schedule(until, p.opts.Interval)
		}
	}
	for id, r := range p.reconciles {
		if r.github && !p.busy[id] && r.at.Before(until) {
			r.at = until
		}
	}
}

// run runs job j, once a slot of the Concurrency (or of the failing projects') is free, then records its outcome and wakes the
// loop if the project's next check or reconciliation comes before the loop would wake.
func (p *Poller) run(ctx context.Context, j job) {
	p.mu.Lock()
	lane := p.limit
	if p.failing[j.project.ID] {
		lane = p.failingLimit
	}
	p.mu.Unlock()
	select {
	case lane <- struct{}{}:
	case <-ctx.Done():
		p.mu.Lock()
		delete(p.busy, j.project.ID)
		p.mu.Unlock()
		return
	}
	src := p.source(j.project)
	if until := src.pausedUntil(); until.After(p.opts.Clock.Now()) {
		// A rate limit answered to a job that ran while this one waited for its slot: it waits
		// for the pause's end with the others, sending nothing.
		<-lane
		p.mu.Lock()
		delete(p.busy, j.project.ID)
		p.holdGitHub(until)
		p.mu.Unlock()
		return
	}
	changed, err := p.visit(ctx, src, j.project, j.cause)
	<-lane
	if j.cause == CausePoll && p.opts.Observe != nil {
		result := ResultUnchanged
		switch {
		case err != nil:
			result = ResultError
		case changed:
			result = ResultChanged
		}
		p.opts.Observe(result)
	}
	now := p.opts.Clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.busy, j.project.ID)
	if err != nil {
		p.failing[j.project.ID] = true
	} else {
		delete(p.failing, j.project.ID)
	}
	if j.cause == CausePoll {
		p.checked(ctx, j.project, src, now, err)
	} else {
		p.reconciled(ctx, j.project, now, err)
	}
	if until := src.pausedUntil(); until.After(now) {
		p.holdGitHub(until)
	}
	if p.sleepUntil.IsZero() || p.sleepUntil.After(p.dueOf(j.project.ID)) {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// dueOf returns when project id's next check or reconciliation is due, far in the future when none
// is. It runs with p.mu held.
func (p *Poller) dueOf(id int64) time.Time {
	next := time.Unix(1<<62, 0)
	if s, ok := p.slots[id]; ok {
		next = s.next
	}
	if r, ok := p.reconciles[id]; ok && r.at.Before(next) {
		next = r.at
	}
	return next
}

// checked records the outcome of a check of a polled project at now and schedules the next one
// (later after failures). It runs with p.mu held.
func (p *Poller) checked(ctx context.Context, pr Project, src source, now time.Time, err error) {
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

// reconciled records the outcome of a reconciliation of a project at now: a failed one is tried
// again after firstReconcileRetry, twice as long after each failure in a row, up to
// reconcile.interval (maxReconcileRetry when that is longer or 0). It runs with p.mu held.
func (p *Poller) reconciled(ctx context.Context, pr Project, now time.Time, err error) {
	// For a polled project this was a check too; its schedule stays.
	if s, ok := p.slots[pr.ID]; ok {
		s.record(now, err)
	}
	r, ok := p.reconciles[pr.ID]
	if !ok {
		return // deleted meanwhile
	}
	if err == nil || ctx.Err() != nil {
		if err == nil {
			delete(p.reconciles, pr.ID)
		}
		return
	}
	limit := maxReconcileRetry
	if p.opts.Reconcile > 0 && p.opts.Reconcile < limit {
		limit = p.opts.Reconcile
	}
	r.failures++
	r.lastError = err.Error()
	r.at = now.Add(min(firstReconcileRetry<<min(r.failures-1, 16), limit))
	p.opts.Log.Warn("reconcile: reading the project's heads failed", "project", pr.ID, "err", err, "retry_at", r.at.UTC())
}

// visit reads the heads of a project and handles them: for a poll, the heads that changed since
// they were last handled; for a reconciliation, every head. It reports whether a head changed.
func (p *Poller) visit(ctx context.Context, src source, pr Project, cause Cause) (changed bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.CheckTimeout)
	defer cancel()
	l, err := src.heads(ctx, pr)
	if err != nil {
		return false, err
	}
	heads := l.heads
	m := p.memo(pr.ID, heads, l.failed == nil)
	changed, errs := p.closeGone(ctx, pr, l)
	if l.failed != nil {
		errs = append(errs, l.failed)
	}
	p.mu.Lock()
	cut := strings.Join(l.cut, " and ")
	if cut != "" && cut != m.cut {
		p.opts.Log.Warn(fmt.Sprintf("poll: the listing of %s stopped before its end (at most %d pages of %d): what comes after gets no new preview",
			cut, github.MaxPages, github.PageSize), "project", pr.ID)
	}
	m.cut = cut
	p.mu.Unlock()
	// Many branches may share a commit (all made from main): its message is read once a check.
	commits := &commitReader{src: src, read: map[string]commitInfo{}}
	up := map[string]bool{}
	previewHeads := map[string]string{}
	for _, pv := range pr.Previews {
		up[pv.key()] = true
		previewHeads[pv.key()] = pv.HeadSHA
	}
	for _, h := range heads {
		k := h.key()
		// Reconciliation looks at production and the previews that are up; a new preview is the
		// polling's, so a head it passes over stays new for the next check.
		if cause == CauseReconcile && (h.PullRequest != 0 || h.Branch != pr.Branch) && !up[k] {
			continue
		}
		p.mu.Lock()
		seen, skipped := m.seen[k] == h.SHA, m.skipped[k] == h.SHA
		// A preview's head last seen is kept with the preview, so that it outlives a restart.
		h.Before = cmp.Or(m.seen[k], previewHeads[k])
		p.mu.Unlock()
		changed = changed || !seen
		if skipped || (seen && cause == CausePoll) {
			continue
		}
		headCause := cause
		if pr.Poll && h.Before != "" && h.Before != h.SHA {
			// A polled project's reconciliation is one of its checks too: a head it sees move
			// is a new head, as the next check would have found it.
			headCause = CausePoll
		}
		marker, err := p.handle(ctx, commits, pr, h, headCause)
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

// closeGone takes down the previews of pr's branches that are gone and, when l lists every open
// pull request, of the pull requests that are not among them; it reports whether it took one down.
func (p *Poller) closeGone(ctx context.Context, pr Project, l listing) (closed bool, errs []error) {
	open := map[int]bool{}
	for _, h := range l.heads {
		open[h.PullRequest] = true
	}
	for _, pv := range pr.Previews {
		switch {
		case pv.PullRequest == 0 && slices.Contains(l.goneBranches, pv.Branch):
			p.opts.Log.Info("branch no longer in the repository, removing its preview", "project", pr.ID, "branch", pv.Branch)
			if err := p.opts.Deployer.BranchGone(ctx, pr, pv); err != nil {
				errs = append(errs, err)
				continue
			}
		case pv.PullRequest != 0 && l.pullsListed && !open[pv.PullRequest]:
			p.opts.Log.Info("pull request no longer open, removing its preview", "project", pr.ID, "pull_request", pv.PullRequest)
			if err := p.opts.Deployer.Close(ctx, pr, pv.PullRequest); err != nil {
				errs = append(errs, err)
				continue
			}
		default:
			continue
		}
		closed = true
	}
	return closed, errs
}

// memo returns the memo of a project, forgetting the heads that are no longer there when heads
// are all there are (complete).
func (p *Poller) memo(id int64, heads []Head, complete bool) *memo {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, ok := p.memos[id]
	if !ok {
		m = &memo{seen: map[string]string{}, skipped: map[string]string{}}
		p.memos[id] = m
	}
	if !complete {
		return m
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
func (p *Poller) handle(ctx context.Context, commits *commitReader, pr Project, h Head, cause Cause) (skipped bool, err error) {
	missing, err := p.opts.Deployer.Missing(pr, h, cause)
	if err != nil || !missing {
		return false, err
	}
	log := p.opts.Log.With("project", pr.ID, "branch", h.Branch, "commit", h.SHA[:7], "trigger", string(cause))
	if h.PullRequest != 0 {
		log = log.With("pull_request", h.PullRequest)
	}
	if h.Message, h.Author, err = commits.commit(ctx, pr, h); err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return false, err
		}
		// A slow remote or a large head must not keep the commit from deploying: the build, which
		// fetches it anyway, reads the skip markers (contract section 7 fails open too).
		log.Info("the head commit's message could not be read, deploying; the build reads its skip markers", "err", err)
		h.MessageUnknown = true
		_, err = p.opts.Deployer.Deploy(ctx, pr, h, cause)
		return false, err
	}
	if marker, ok := trigger.SkipMarker(h.Message); ok {
		log.Info("new commit skipped: its message contains " + marker)
		return true, p.opts.Deployer.Skip(ctx, pr, h, "commit message contains "+marker)
	}
	if h.PullRequest == 0 && len(pr.WatchPaths) > 0 {
		watched, err := p.watched(ctx, log, pr, h)
		if err != nil {
			return false, err
		}
		if !watched {
			log.Info("new commit skipped: " + trigger.NoWatchedChange)
			return true, p.opts.Deployer.Skip(ctx, pr, h, trigger.NoWatchedChange)
		}
	}
	_, err = p.opts.Deployer.Deploy(ctx, pr, h, cause)
	return false, err
}

// commitReader reads the message and author of head commits through a source, each commit once.
type commitReader struct {
	src  source
	read map[string]commitInfo
}

// commitInfo is a commit's message and author.
type commitInfo struct{ message, author string }

// commit returns the message and author of h's commit, read through the source the first time.
func (r *commitReader) commit(ctx context.Context, pr Project, h Head) (message, author string, err error) {
	if c, ok := r.read[h.SHA]; ok {
		return c.message, c.author, nil
	}
	if message, author, err = r.src.commit(ctx, pr, h); err == nil {
		r.read[h.SHA] = commitInfo{message, author}
	}
	return message, author, err
}

// watched reports whether branch head h changes a file that matches the project's watch paths
// since the commit live where it deploys (production or its preview); when the changed files
// cannot be read, it says yes and logs why (a build too many is better than a change missed,
// contract section 7).
func (p *Poller) watched(ctx context.Context, log *slog.Logger, pr Project, h Head) (bool, error) {
	last, err := p.opts.Deployer.LastDeployed(pr, h)
	if err != nil || last == "" || last == h.SHA {
		return true, err
	}
	files, err := p.opts.Git.ChangedFiles(ctx, pr.RepoURL, pr.Repo != "", last, h.SHA)
	if err != nil {
		log.Info("watch paths: the files changed since the live commit are unknown, deploying", "live", last[:min(7, len(last))], "err", err)
		return true, nil
	}
	return slices.ContainsFunc(files, func(f string) bool { return trigger.Match(pr.WatchPaths, f) }), nil
}

// source returns how a project's repository is read.
func (p *Poller) source(pr Project) source {
	if p.onGitHub(pr) {
		return p.github
	}
	return p.git
}

// onGitHub reports whether a project's repository is read through the GitHub API, with the token.
func (p *Poller) onGitHub(pr Project) bool {
	return pr.Repo != "" && p.github != nil
}
