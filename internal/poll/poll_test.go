package poll_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/clock/clocktest"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/github/githubtest"
	"github.com/miaobu/miaobu/internal/gittest"
	"github.com/miaobu/miaobu/internal/logtest"
	"github.com/miaobu/miaobu/internal/pipeline"
	"github.com/miaobu/miaobu/internal/poll"
)

const token = "ghp_poll-test-token"

// start is the fake clock's first reading, in the real past so that go-github, which checks rate
// limit resets against the real clock, never refuses a request the poller makes.
var start = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// deployment is a deployment the fake deployer was asked for.
type deployment struct {
	project int64
	head    poll.Head
	cause   poll.Cause
}

// deployer is a poll.Deployer in memory: a head is missing until a deployment of its commit exists.
type deployer struct {
	mu   sync.Mutex
	done []deployment
	// skips are the heads skipped, as "project sha7 reason".
	skips []string
	// closed are the previews taken down, as "project #n" for a pull request's and "project
	// branch" for a branch's.
	closed []string
}

func (d *deployer) Close(_ context.Context, p poll.Project, n int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = append(d.closed, fmt.Sprintf("%d #%d", p.ID, n))
	return nil
}

func (d *deployer) BranchGone(_ context.Context, p poll.Project, pv poll.Preview) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = append(d.closed, fmt.Sprintf("%d %s", p.ID, pv.Branch))
	return nil
}

// closedPreviews returns the previews taken down, in order.
func (d *deployer) closedPreviews() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.closed)
}

func (d *deployer) Skip(_ context.Context, p poll.Project, h poll.Head, reason string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.skips = append(d.skips, fmt.Sprintf("%d %s %s", p.ID, h.SHA[:7], reason))
	return nil
}

func (d *deployer) Missing(p poll.Project, h poll.Head, _ poll.Cause) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !slices.ContainsFunc(d.done, func(x deployment) bool { return x.project == p.ID && x.head.SHA == h.SHA }), nil
}

func (d *deployer) LastDeployed(p poll.Project, h poll.Head) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, x := range slices.Backward(d.done) {
		if x.project == p.ID && x.head.Branch == h.Branch && x.head.PullRequest == h.PullRequest {
			return x.head.SHA, nil
		}
	}
	return "", nil
}

func (d *deployer) Deploy(_ context.Context, p poll.Project, h poll.Head, cause poll.Cause) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.done = append(d.done, deployment{p.ID, h, cause})
	return int64(len(d.done)), nil
}

// deployments returns the deployments asked for so far, as "project branch-or-#pr sha7 cause message".
func (d *deployer) deployments() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, x := range d.done {
		where := x.head.Branch
		if x.head.PullRequest != 0 {
			where = fmt.Sprintf("#%d", x.head.PullRequest)
		}
		message := x.head.Message
		if x.head.MessageUnknown {
			message = "(message unknown)"
		}
		out = append(out, fmt.Sprintf("%d %s %s %s %s", x.project, where, x.head.SHA[:7], x.cause, message))
	}
	return out
}

// harness runs a Poller of projects with a fake clock and the fake deployer.
type harness struct {
	t        *testing.T
	clock    *clocktest.Fake
	deployer *deployer
	poller   *poll.Poller
	log      *logtest.Buffer

	mu       sync.Mutex
	projects []poll.Project
	results  []string
	// unreadable makes the project list fail to be read, as a store that fails would.
	unreadable bool
}

// newHarness returns a harness of projects; gh is the fake GitHub, nil for none.
func newHarness(t *testing.T, gh *githubtest.Server, opts poll.Options, projects ...poll.Project) *harness {
	t.Helper()
	return newHarnessOf(t, &harness{projects: projects}, gh, opts)
}

// newHarnessOf starts the harness h, whose projects and unreadable are set, and waits until the
// reconciliation at start and the first round are over.
func newHarnessOf(t *testing.T, h *harness, gh *githubtest.Server, opts poll.Options) *harness {
	t.Helper()
	startHarness(t, h, gh, opts)
	h.settle()
	return h
}

// startHarness starts the harness h, whose projects and unreadable are set.
func startHarness(t *testing.T, h *harness, gh *githubtest.Server, opts poll.Options) {
	t.Helper()
	h.t, h.clock, h.deployer, h.log = t, clocktest.New(start), &deployer{}, &logtest.Buffer{}
	if gh != nil {
		c, err := github.New(github.Options{APIURL: gh.URL, Token: token})
		if err != nil {
			t.Fatal(err)
		}
		opts.GitHub = c
	}
	opts.Projects = func() ([]poll.Project, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.unreadable {
			return nil, errors.New("the store is unreadable")
		}
		return slices.Clone(h.projects), nil
	}
	opts.Deployer, opts.Clock = h.deployer, h.clock
	if opts.Git == nil {
		opts.Git = &pipeline.Builder{WorkRoot: filepath.Join(t.TempDir(), "builds")}
	}
	opts.Log = slog.New(slog.NewTextHandler(h.log, nil))
	opts.Observe = func(result string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.results = append(h.results, result)
	}
	h.poller = poll.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.poller.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// settle waits until the poller sleeps with nothing running, and returns when it wakes next.
func (h *harness) settle() time.Time {
	h.t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		if wake, ok := h.poller.Settled(h.clock.Now()); ok {
			return wake
		}
		if time.Now().After(deadline) {
			h.t.Fatal("the poller did not settle within a minute")
		}
	}
}

// step advances the clock to the poller's next wake-up and returns once its round is over.
func (h *harness) step() time.Time {
	h.t.Helper()
	next := h.settle()
	h.clock.Advance(next.Sub(h.clock.Now()))
	h.settle()
	return h.clock.Now()
}

// runFor steps until d has passed on the clock.
func (h *harness) runFor(d time.Duration) {
	h.t.Helper()
	for end := h.clock.Now().Add(d); h.clock.Now().Before(end); {
		h.step()
	}
}

// pollResults returns the results of the polls so far.
func (h *harness) pollResults() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.results)
}

// status returns the poll status of project id.
func (h *harness) status(id int64) poll.Status {
	h.t.Helper()
	st, ok := h.poller.Status(id)
	if !ok {
		h.t.Fatalf("project %d is not polled", id)
	}
	return st
}

// unreadableCommits is a remote whose heads can be listed but whose commits cannot be fetched in
// time, as a slow link with a large head commit.
type unreadableCommits struct{ *pipeline.Builder }

func (unreadableCommits) CommitInfo(context.Context, string, bool, string, string) (string, string, error) {
	return "", "", errors.New("git fetch of the head commit timed out after 30s")
}

func TestHeadWhoseMessageCannotBeReadDeploys(t *testing.T) {
	repo := gittest.New(t)
	a := repo.Commit("first", map[string]string{"index.html": "a"})
	h := newHarness(t, nil, poll.Options{Interval: time.Minute, Git: unreadableCommits{&pipeline.Builder{WorkRoot: t.TempDir()}}},
		poll.Project{ID: 1, Slug: "site", RepoURL: "file://" + repo.Dir, Branch: "main", Poll: true})
	if got, want := h.deployer.deployments(), []string{"1 main " + a[:7] + " reconcile (message unknown)"}; !slices.Equal(got, want) {
		t.Fatalf("after start: %q, want %q (deployed, the build reading the skip markers)", got, want)
	}
	if st := h.status(1); st.LastPollError != "" {
		t.Errorf("a check that deployed reports an error: %q", st.LastPollError)
	}
}

func TestGitPollDeploysNewHeadsOnly(t *testing.T) {
	repo := gittest.New(t)
	a := repo.Commit("first", map[string]string{"index.html": "a"})
	h := newHarness(t, nil, poll.Options{Interval: time.Minute},
		poll.Project{ID: 1, Slug: "site", RepoURL: "file://" + repo.Dir, Branch: "main", Poll: true})
	// The reconciliation at start deploys the head, and the first poll finds nothing new.
	if got, want := h.deployer.deployments(), []string{"1 main " + a[:7] + " reconcile first"}; !slices.Equal(got, want) {
		t.Fatalf("after start: %q, want %q", got, want)
	}
	h.runFor(3 * time.Minute)
	if got := h.deployer.deployments(); len(got) != 1 {
		t.Fatalf("polls of an unchanged branch deployed: %q", got)
	}
	b := repo.Commit("second", map[string]string{"index.html": "b"})
	before := h.clock.Now()
	h.runFor(70 * time.Second)
	if got, want := h.deployer.deployments(), []string{"1 main " + a[:7] + " reconcile first", "1 main " + b[:7] + " poll second"}; !slices.Equal(got, want) {
		t.Fatalf("after a push: %q, want %q", got, want)
	}
	st := h.status(1)
	if st.LastPollAt == nil || st.LastPollAt.Before(before) || st.LastPollError != "" || st.NextPollAt == nil || !st.NextPollAt.After(*st.LastPollAt) {
		t.Errorf("status %+v", st)
	}
	if results := h.pollResults(); !slices.Contains(results, poll.ResultChanged) || !slices.Contains(results, poll.ResultUnchanged) {
		t.Errorf("poll results %q", results)
	}

	// A head with a skip marker is not deployed, and the next head is.
	c := repo.Commit("Draft the docs [Skip CI]", map[string]string{"index.html": "c"})
	h.runFor(70 * time.Second)
	if got := h.deployer.deployments(); len(got) != 2 {
		t.Fatalf("a head with a skip marker was deployed: %q", got)
	}
	if !strings.Contains(h.log.String(), "its message contains [Skip CI]") {
		t.Errorf("no log line tells the skip:\n%s", h.log)
	}
	h.deployer.mu.Lock()
	if want := []string{"1 " + c[:7] + " commit message contains [Skip CI]"}; !slices.Equal(h.deployer.skips, want) {
		t.Errorf("skips reported %q, want %q (once, for GitHub's commit status)", h.deployer.skips, want)
	}
	h.deployer.mu.Unlock()
	d := repo.Commit("Publish the docs", map[string]string{"index.html": "d"})
	h.runFor(70 * time.Second)
	if got := h.deployer.deployments(); len(got) != 3 || got[2] != "1 main "+d[:7]+" poll Publish the docs" {
		t.Fatalf("after the skipped head: %q", got)
	}
}

func TestReconcileAtStartDeploysOnlyTheNewestHead(t *testing.T) {
	repo := gittest.New(t)
	repo.Commit("first", map[string]string{"index.html": "a"})
	newest := repo.Commit("second", map[string]string{"index.html": "b"})
	other := gittest.New(t)
	otherHead := other.Commit("only", map[string]string{"index.html": "x"})
	h := newHarness(t, nil, poll.Options{Interval: time.Minute, Reconcile: 0},
		poll.Project{ID: 1, Slug: "webhook-site", RepoURL: "file://" + repo.Dir, Branch: "main"},
		poll.Project{ID: 2, Slug: "other", RepoURL: "file://" + other.Dir, Branch: "main"})
	want := []string{"1 main " + newest[:7] + " reconcile second", "2 main " + otherHead[:7] + " reconcile only"}
	got := h.deployer.deployments()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("reconciliation at start: %q, want %q", got, want)
	}
	// With reconcile.interval 0, a project that is not polled is never read again.
	repo.Commit("third", map[string]string{"index.html": "c"})
	h.runFor(time.Hour)
	if got := h.deployer.deployments(); len(got) != 2 {
		t.Fatalf("reconcile.interval 0 reconciled again: %q", got)
	}
	if _, ok := h.poller.Status(1); ok {
		t.Error("a project with trigger webhook has a poll status")
	}
}

func TestPeriodicReconcile(t *testing.T) {
	repo := gittest.New(t)
	repo.Commit("first", map[string]string{"index.html": "a"})
	h := newHarness(t, nil, poll.Options{Interval: time.Minute, Reconcile: 10 * time.Minute},
		poll.Project{ID: 1, Slug: "site", RepoURL: "file://" + repo.Dir, Branch: "main"})
	missed := repo.Commit("missed delivery", map[string]string{"index.html": "b"})
	h.runFor(9 * time.Minute)
	if got := h.deployer.deployments(); len(got) != 1 {
		t.Fatalf("reconciled before its interval: %q", got)
	}
	h.runFor(2 * time.Minute)
	if got := h.deployer.deployments(); len(got) != 2 || got[1] != "1 main "+missed[:7]+" reconcile missed delivery" {
		t.Fatalf("after reconcile.interval: %q", got)
	}
}

func TestFailedChecksBackOff(t *testing.T) {
	h := newHarness(t, nil, poll.Options{Interval: time.Minute},
		poll.Project{ID: 1, Slug: "gone", RepoURL: "file://" + filepath.Join(t.TempDir(), "missing"), Branch: "main", Poll: true})
	first := h.status(1).NextPollAt
	for h.clock.Now().Before(*first) {
		h.step()
	}
	last := *first
	for _, want := range []time.Duration{2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 30 * time.Minute} {
		next := h.status(1).NextPollAt
		if gap := next.Sub(last); gap < want*9/10 || gap > want*11/10 {
			t.Errorf("wait after a failure %s, want %s ±10%%", gap, want)
		}
		last = *next
		for h.clock.Now().Before(*next) {
			h.step()
		}
	}
	st := h.status(1)
	if st.LastPollAt != nil || !strings.Contains(st.LastPollError, "repository not found") {
		t.Errorf("status %+v, want no success and the error", st)
	}
}

// githubProject is a polled project of acme/site on the fake GitHub.
func githubProject(id int64, pulls bool) poll.Project {
	return poll.Project{ID: id, Slug: "site", Repo: "acme/site", RepoURL: "https://github.com/acme/site.git", Branch: "main", Poll: true, PullRequests: pulls}
}

// sha returns a distinct full commit SHA.
func sha(c string) string { return strings.Repeat(c, 40)[:40] }

func TestGitHubPollsAreConditional(t *testing.T) {
	gh := githubtest.New(t, token)
	gh.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main", Branches: map[string]string{"main": sha("a")}})
	gh.SetPulls("acme/site", []githubtest.Pull{{Number: 7, HeadSHA: sha("7"), HeadRef: "topic"}})
	h := newHarness(t, gh, poll.Options{Interval: time.Minute}, githubProject(1, true))
	h.runFor(5 * time.Minute)
	answers := gh.Answers()
	var heads, pulls []string
	for _, a := range answers {
		line := fmt.Sprintf("%d %s", a.Status, a.IfNoneMatch)
		switch a.Request {
		case "GET /repos/acme/site/commits/main":
			heads = append(heads, line)
		case "GET /repos/acme/site/pulls":
			pulls = append(pulls, line)
		}
	}
	if len(heads) < 5 || heads[0] != "200 " {
		t.Fatalf("head requests %q", heads)
	}
	for _, line := range heads[1:] {
		if line != `304 "`+sha("a")+`"` {
			t.Errorf("a later head request was answered %q, want 304 for If-None-Match of the known SHA", line)
		}
	}
	if len(pulls) != len(heads) || pulls[0] != "200 " {
		t.Fatalf("pull request listings %q", pulls)
	}
	for _, line := range pulls[1:] {
		if !strings.HasPrefix(line, `304 W/"`) {
			t.Errorf("a later listing was answered %q, want 304 for If-None-Match of the ETag", line)
		}
	}
	if got, want := h.deployer.deployments(), []string{"1 main aaaaaaa reconcile Tip of main", "1 #7 7777777 poll Tip of topic"}; !slices.Equal(got, want) {
		t.Errorf("deployments %q, want %q", got, want)
	}

	// A push and a new pull request are found by the next poll.
	gh.SetBranch("acme/site", "main", sha("b"))
	gh.SetMessage("acme/site", sha("b"), "Second")
	gh.SetPulls("acme/site", []githubtest.Pull{{Number: 7, HeadSHA: sha("7"), HeadRef: "topic"}, {Number: 8, HeadSHA: sha("8"), HeadRef: "fix"}})
	h.runFor(70 * time.Second)
	if got := h.deployer.deployments()[2:]; !slices.Equal(got, []string{"1 main bbbbbbb poll Second", "1 #8 8888888 poll Tip of fix"}) {
		t.Errorf("after a push and a new pull request: %q", got)
	}
}

func TestRateLimitPausesUntilReset(t *testing.T) {
	gh := githubtest.New(t, token)
	gh.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main", Branches: map[string]string{"main": sha("a")}})
	reset := start.Add(10 * time.Minute)
	gh.SetRateLimit(5000, 0, reset)
	h := newHarness(t, gh, poll.Options{Interval: time.Minute}, githubProject(1, false))
	if n := len(gh.Answers()); n != 1 {
		t.Fatalf("%d requests at start, want the one refused", n)
	}
	if got := h.deployer.deployments(); len(got) != 0 {
		t.Fatalf("deployed while rate limited: %q", got)
	}
	st := h.status(1)
	if st.NextPollAt == nil || st.NextPollAt.Before(reset) || !strings.Contains(st.LastPollError, "rate limit") {
		t.Fatalf("status %+v, want the next check after the reset at %s and the rate limit as the error", st, reset)
	}
	for h.settle().Before(reset) {
		h.step()
	}
	if n := len(gh.Answers()); n != 1 {
		t.Fatalf("%d requests before the reset, want none after the refused one", n)
	}
	gh.SetRateLimit(5000, 5000, reset.Add(time.Hour))
	h.runFor(2 * time.Minute)
	answers := gh.Answers()
	if len(answers) < 2 || answers[1].Status != http.StatusOK {
		t.Fatalf("after the reset: %+v", answers)
	}
	if got := h.deployer.deployments(); len(got) != 1 {
		t.Errorf("after the reset: deployments %q", got)
	}
	if remaining, ok := h.poller.RateRemaining(); !ok || remaining >= 5000 {
		t.Errorf("rate remaining %d %v", remaining, ok)
	}
}

func TestLowRateLimitPausesPolling(t *testing.T) {
	gh := githubtest.New(t, token)
	gh.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main", Branches: map[string]string{"main": sha("a")}})
	reset := start.Add(30 * time.Minute)
	gh.SetRateLimit(5000, 400, reset) // 8% left after the first requests
	h := newHarness(t, gh, poll.Options{Interval: time.Minute}, githubProject(1, false))
	first := len(gh.Answers())
	for h.clock.Now().Before(reset.Add(-time.Minute)) {
		h.step()
	}
	if n := len(gh.Answers()); n != first {
		t.Fatalf("%d requests while less than 10%% of the limit was left", n-first)
	}
	if st := h.status(1); st.LastPollError != "" || st.NextPollAt.Before(reset) {
		t.Errorf("status %+v: a low rate is a pause, not an error", st)
	}
}

// TestPollsSpreadOverTheInterval polls 100 projects for three intervals: their checks spread over
// the interval instead of hitting GitHub in the same second.
func TestPollsSpreadOverTheInterval(t *testing.T) {
	gh := githubtest.New(t, token)
	var projects []poll.Project
	for i := range 100 {
		name := fmt.Sprintf("acme/site-%d", i)
		gh.AddRepo(githubtest.Repo{FullName: name, DefaultBranch: "main", Branches: map[string]string{"main": sha("a")}})
		projects = append(projects, poll.Project{ID: int64(i + 1), Slug: fmt.Sprintf("site-%d", i), Repo: name,
			RepoURL: "https://github.com/" + name + ".git", Branch: "main", Poll: true})
	}
	h := newHarness(t, gh, poll.Options{Interval: time.Minute, Reconcile: time.Hour}, projects...)
	perSecond := map[int64]int{}
	seen := len(gh.Answers())
	for end := h.clock.Now().Add(3 * time.Minute); h.clock.Now().Before(end); {
		now := h.step()
		n := len(gh.Answers())
		perSecond[now.Unix()] += n - seen
		seen = n
	}
	busiest, polls := 0, 0
	for _, n := range perSecond {
		busiest, polls = max(busiest, n), polls+n
	}
	if polls < 270 || polls > 330 {
		t.Errorf("%d polls of 100 projects in 3 minutes at a 1-minute interval", polls)
	}
	if busiest > 10 || len(perSecond) < 100 {
		t.Errorf("polls fell in %d distinct seconds, at most %d in one: not spread over the interval", len(perSecond), busiest)
	}
}

func TestProjectsLeaveThePoll(t *testing.T) {
	repo := gittest.New(t)
	repo.Commit("first", map[string]string{"index.html": "a"})
	h := newHarness(t, nil, poll.Options{Interval: time.Minute},
		poll.Project{ID: 1, Slug: "site", RepoURL: "file://" + repo.Dir, Branch: "main", Poll: true},
		poll.Project{ID: 2, Slug: "other", RepoURL: "file://" + repo.Dir, Branch: "main", Poll: true})
	h.mu.Lock()
	h.projects[0].Poll = false  // switched to webhooks
	h.projects = h.projects[:1] // and project 2 deleted
	h.mu.Unlock()
	repo.Commit("second", map[string]string{"index.html": "b"})
	h.runFor(5 * time.Minute)
	if got := h.deployer.deployments(); len(got) != 2 {
		t.Errorf("deployments %q, want only the two of the reconciliation at start", got)
	}
	for _, id := range []int64{1, 2} {
		if _, ok := h.poller.Status(id); ok {
			t.Errorf("project %d still has a poll status", id)
		}
	}
}

func TestUnreadableProjectListIsNotEmpty(t *testing.T) {
	repo := gittest.New(t)
	a := repo.Commit("first", map[string]string{"index.html": "a"})
	h := newHarnessOf(t, &harness{unreadable: true,
		projects: []poll.Project{{ID: 1, Slug: "site", RepoURL: "file://" + repo.Dir, Branch: "main", Poll: true}}},
		nil, poll.Options{Interval: time.Minute})
	if got := h.deployer.deployments(); len(got) != 0 {
		t.Fatalf("deployments without a project list: %q", got)
	}
	h.mu.Lock()
	h.unreadable = false
	h.mu.Unlock()
	h.step()
	if got, want := h.deployer.deployments(), []string{"1 main " + a[:7] + " reconcile first"}; !slices.Equal(got, want) {
		t.Fatalf("once the list is read: %q, want the reconciliation at start %q", got, want)
	}
	before := h.status(1)
	h.mu.Lock()
	h.unreadable = true
	h.mu.Unlock()
	h.step()
	if after, ok := h.poller.Status(1); !ok || !after.NextPollAt.Equal(*before.NextPollAt) {
		t.Errorf("a failed read of the list changed the schedule: %+v, then %+v", before, after)
	}
}

// hangingRemote returns the URL of a git daemon that accepts connections and never answers.
func hangingRemote(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "git://" + ln.Addr().String() + "/site.git"
}

// waitForDeployment waits until want is among the deployments, failing the test if project
// hanging has ended its check or reconciliation first.
func (h *harness) waitForDeployment(want string, hanging int64) {
	h.t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		if slices.Contains(h.deployer.deployments(), want) {
			return
		}
		if st, _ := h.poller.Status(hanging); st.LastPollError != "" {
			h.t.Fatalf("%q waited for project %d's remote, which failed with %q first", want, hanging, st.LastPollError)
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("no deployment %q: %q", want, h.deployer.deployments())
		}
	}
}

// TestHangingRemoteHoldsUpNoOtherProject polls a project whose remote never answers beside one
// whose remote does: the second deploys its heads while the first hangs, and the first's check
// ends at its timeout with an error that says so.
func TestHangingRemoteHoldsUpNoOtherProject(t *testing.T) {
	repo := gittest.New(t)
	a := repo.Commit("first", map[string]string{"index.html": "a"})
	h := &harness{projects: []poll.Project{
		{ID: 1, Slug: "hangs", RepoURL: hangingRemote(t), Branch: "main", Poll: true},
		{ID: 2, Slug: "site", RepoURL: "file://" + repo.Dir, Branch: "main", Poll: true},
	}}
	startHarness(t, h, nil, poll.Options{Interval: time.Minute, CheckTimeout: 3 * time.Second})
	h.waitForDeployment("2 main "+a[:7]+" reconcile first", 1)

	b := repo.Commit("second", map[string]string{"index.html": "b"})
	next := h.status(2).NextPollAt
	h.clock.Advance(next.Sub(h.clock.Now()))
	h.waitForDeployment("2 main "+b[:7]+" poll second", 1)

	h.settle()
	if st := h.status(1); st.LastPollError != "git ls-remote timed out after 3s" {
		t.Errorf("status of the project whose remote hangs: %+v", st)
	}
}

func TestHangingRemotesKeepToTheirOwnSlots(t *testing.T) {
	repo := gittest.New(t)
	a := repo.Commit("first", map[string]string{"index.html": "a"})
	h := &harness{}
	for id := range int64(3) { // more hanging remotes than there are slots
		h.projects = append(h.projects, poll.Project{ID: id + 1, Slug: fmt.Sprintf("hangs%d", id), RepoURL: hangingRemote(t), Branch: "main", Poll: true})
	}
	h.projects = append(h.projects, poll.Project{ID: 4, Slug: "site", RepoURL: "file://" + repo.Dir, Branch: "main", Poll: true})
	const timeout = 5 * time.Second
	startHarness(t, h, nil, poll.Options{Interval: time.Minute, CheckTimeout: timeout, Concurrency: 2})
	h.until(func() bool {
		for id := range int64(3) {
			if st, _ := h.poller.Status(id + 1); st.LastPollError == "" {
				return false
			}
		}
		return slices.Contains(h.deployer.deployments(), "4 main "+a[:7]+" reconcile first")
	})
	// Checked again together, the hanging remotes take the failing projects' slot and leave the
	// good project's free: its new head deploys long before their checks time out.
	// The failed checks come back after 30 s, the good project's after a minute.
	h.clock.Advance(45 * time.Second)
	time.Sleep(200 * time.Millisecond) // lets the hanging checks start
	b := repo.Commit("second", map[string]string{"index.html": "b"})
	asked := time.Now()
	h.clock.Advance(time.Minute)
	h.until(func() bool { return slices.Contains(h.deployer.deployments(), "4 main "+b[:7]+" poll second") })
	if waited := time.Since(asked); waited > timeout-time.Second {
		t.Fatalf("the new head waited %s, as long as the hanging checks", waited)
	}
}

// until waits, at most a minute, until cond holds.
func (h *harness) until(cond func() bool) {
	h.t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out; deployments: %q", h.deployer.deployments())
		}
	}
}

func TestFailedReconcileIsRetried(t *testing.T) {
	repo := gittest.New(t)
	a := repo.Commit("first", map[string]string{"index.html": "a"})
	away := filepath.Join(t.TempDir(), "away")
	if err := os.Rename(repo.Dir, away); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, nil, poll.Options{Interval: time.Minute, Reconcile: 0},
		poll.Project{ID: 1, Slug: "site", RepoURL: "file://" + repo.Dir, Branch: "main"})
	last := start
	for _, wait := range []time.Duration{15 * time.Second, 30 * time.Second, time.Minute} {
		message, retryAt, failed := h.poller.ReconcileError(1)
		if !failed || !strings.Contains(message, "repository not found") || !retryAt.Equal(last.Add(wait)) {
			t.Fatalf("reconcile error %q, retry at %s (%v), want a retry at %s", message, retryAt, failed, last.Add(wait))
		}
		for h.clock.Now().Before(retryAt) {
			h.step()
		}
		last = retryAt
	}
	// The remote is back (the network is up): the next retry deploys the head, and the error is gone.
	if err := os.Rename(away, repo.Dir); err != nil {
		t.Fatal(err)
	}
	h.runFor(2 * time.Minute)
	if got, want := h.deployer.deployments(), []string{"1 main " + a[:7] + " reconcile first"}; !slices.Equal(got, want) {
		t.Fatalf("deployments %q, want %q", got, want)
	}
	if message, _, failed := h.poller.ReconcileError(1); failed {
		t.Errorf("reconcile error %q after a successful reconciliation", message)
	}
}

// TestRateLimitWaitsAtMostAnHour is answered a reset a day away: polling waits an hour, GitHub's
// window, and the error shows the reset's date.
func TestRateLimitWaitsAtMostAnHour(t *testing.T) {
	gh := githubtest.New(t, token)
	gh.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main", Branches: map[string]string{"main": sha("a")}})
	gh.SetRateLimit(5000, 0, start.Add(24*time.Hour))
	h := newHarness(t, gh, poll.Options{Interval: time.Minute}, githubProject(1, false))
	st := h.status(1)
	if st.NextPollAt == nil || st.NextPollAt.After(start.Add(time.Hour+66*time.Second)) || !strings.Contains(st.LastPollError, "resets at 2025-06-02 12:00:00 UTC") {
		t.Fatalf("status %+v, want the next check within an hour and the reset's date", st)
	}
	gh.SetRateLimit(5000, 5000, start.Add(24*time.Hour))
	h.runFor(time.Hour + 2*time.Minute)
	if got := h.deployer.deployments(); len(got) != 1 {
		t.Errorf("deployments an hour later: %q", got)
	}
}

// TestSecondaryRateLimitPausesEveryProject answers one project's poll with a secondary rate limit:
// GitHub asks for no request with the token until its Retry-After, so every project waits.
func TestSecondaryRateLimitPausesEveryProject(t *testing.T) {
	gh := githubtest.New(t, token)
	other := poll.Project{ID: 2, Slug: "other", Repo: "acme/other", RepoURL: "https://github.com/acme/other.git", Branch: "main", Poll: true}
	for _, name := range []string{"acme/site", "acme/other"} {
		gh.AddRepo(githubtest.Repo{FullName: name, DefaultBranch: "main", Branches: map[string]string{"main": sha("a")}})
	}
	h := newHarness(t, gh, poll.Options{Interval: time.Minute}, githubProject(1, false), other)
	gh.FailWith("GET /repos/acme/site/commits/main", http.StatusTooManyRequests, "You have exceeded a secondary rate limit",
		map[string]string{"Retry-After": "600"})
	for !strings.Contains(h.status(1).LastPollError, "rate limit") {
		h.step()
	}
	until := h.clock.Now().Add(600 * time.Second)
	if st := h.status(2); st.NextPollAt.Before(until) || !strings.Contains(st.LastPollError, "GitHub refused a request for the rate limit of the token: checks resume at") {
		t.Errorf("the other project's status %+v: its next check before the Retry-After of the token ends at %s, or no reason", st, until)
	}
	seen := len(gh.Answers())
	for h.settle().Before(until) {
		h.step()
	}
	if answers := gh.Answers()[seen:]; len(answers) != 0 {
		t.Errorf("requests during the Retry-After: %+v", answers)
	}
}

// TestWatchPathsOfPolledHeads polls a project that watches docs/**: a head that changes other files
// since the last deployed commit is skipped and reported, one that changes a watched file deploys,
// and one whose changes cannot be read (the last deployed commit is gone from the remote) deploys.
func TestWatchPathsOfPolledHeads(t *testing.T) {
	repo := gittest.New(t)
	a := repo.Commit("first", map[string]string{"docs/index.md": "a"})
	h := newHarness(t, nil, poll.Options{Interval: time.Minute},
		poll.Project{ID: 1, Slug: "site", RepoURL: "file://" + repo.Dir, Branch: "main", Poll: true, WatchPaths: []string{"docs/**"}})
	b := repo.Commit("Tweak the code", map[string]string{"src/main.js": "b"})
	h.runFor(70 * time.Second)
	c := repo.Commit("Write the guide", map[string]string{"docs/guide.md": "c"})
	h.runFor(70 * time.Second)
	want := []string{"1 main " + a[:7] + " reconcile first", "1 main " + c[:7] + " poll Write the guide"}
	if got := h.deployer.deployments(); !slices.Equal(got, want) {
		t.Fatalf("deployments %q, want %q", got, want)
	}
	h.deployer.mu.Lock()
	if want := []string{"1 " + b[:7] + " no changed file matches watch_paths"}; !slices.Equal(h.deployer.skips, want) {
		t.Errorf("skips reported %q, want %q", h.deployer.skips, want)
	}
	h.deployer.mu.Unlock()

	// A force-push drops the last deployed commit: what changed cannot be told, so the head deploys.
	repo.Git("reset", "--hard", "--quiet", a)
	repo.Git("reflog", "expire", "--expire=now", "--all")
	repo.Git("gc", "--prune=now", "--quiet")
	d := repo.Commit("Rewrite the code", map[string]string{"src/other.js": "d"})
	h.runFor(70 * time.Second)
	if got := h.deployer.deployments(); len(got) != 3 || got[2] != "1 main "+d[:7]+" poll Rewrite the code" {
		t.Fatalf("after a force-push: %q", got)
	}
}

// TestGitHubPreviewBranches polls a GitHub project whose preview_branches are staging and
// feature/*, with the preview of feature/x up: reconciliation deploys feature/x's head, the next
// check the other branches the listing of branches shows (staging, feature/y, and later feature/z),
// reading no branch one by one; once feature/x is gone from the listing, one request confirms it
// and its preview is taken down.
func TestGitHubPreviewBranches(t *testing.T) {
	gh := githubtest.New(t, token)
	gh.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main",
		Branches: map[string]string{"main": sha("a"), "staging": sha("5"), "feature/x": sha("f"), "feature/y": sha("e"), "other": sha("0")}})
	p := githubProject(1, false)
	p.PreviewBranches = []string{"staging", "feature/*"}
	p.Previews = []poll.Preview{{Alias: "git-feature-x", Branch: "feature/x", HeadSHA: sha("f")}}
	h := newHarness(t, gh, poll.Options{Interval: time.Minute}, p)
	want := []string{"1 main aaaaaaa reconcile Tip of main", "1 feature/x fffffff reconcile Tip of feature/x"}
	if got := h.deployer.deployments(); !slices.Equal(got, want) {
		t.Errorf("deployments at start %q, want %q", got, want)
	}
	h.runFor(70 * time.Second)
	want = append(want, "1 feature/y eeeeeee poll Tip of feature/y", "1 staging 5555555 poll Tip of staging")
	if got := h.deployer.deployments(); !slices.Equal(got, want) {
		t.Errorf("deployments after a check %q, want %q", got, want)
	}
	gh.SetBranch("acme/site", "feature/z", sha("9"))
	gh.SetBranch("acme/site", "feature/x", "")
	h.runFor(70 * time.Second)
	want = append(want, "1 feature/z 9999999 poll Tip of feature/z")
	if got := h.deployer.deployments(); !slices.Equal(got, want) {
		t.Errorf("deployments after a new branch %q, want %q", got, want)
	}
	// The harness's preview stays up: each check takes it down again.
	if got := h.deployer.closedPreviews(); len(got) == 0 || slices.ContainsFunc(got, func(c string) bool { return c != "1 feature/x" }) {
		t.Errorf("previews taken down %q, want feature/x's", got)
	}
	for _, a := range gh.Answers() {
		ref, ok := strings.CutPrefix(a.Request, "GET /repos/acme/site/commits/")
		if ok && !github.ValidSHA(ref) && ref != "main" && ref != "feature/x" {
			t.Errorf("GitHub was asked %s: the listing has that branch", a.Request)
		}
	}
}

// TestDeletedPreviewBranchTakesItsPreviewDown polls a git repository whose branch feature/x has
// a preview up: once the branch is deleted, its preview is taken down, once.
func TestDeletedPreviewBranchTakesItsPreviewDown(t *testing.T) {
	repo := gittest.New(t)
	a := repo.Commit("first", map[string]string{"index.html": "a"})
	repo.Git("branch", "feature/x")
	h := newHarness(t, nil, poll.Options{Interval: time.Minute},
		poll.Project{ID: 1, Slug: "site", RepoURL: "file://" + repo.Dir, Branch: "main", Poll: true,
			Previews: []poll.Preview{{Alias: "git-feature-x", Branch: "feature/x", HeadSHA: a}}})
	h.runFor(70 * time.Second)
	if got := h.deployer.closedPreviews(); len(got) != 0 {
		t.Fatalf("previews taken down while the branch is there: %q", got)
	}
	repo.Git("branch", "-D", "feature/x")
	h.runFor(70 * time.Second)
	if got := h.deployer.closedPreviews(); len(got) == 0 || got[0] != "1 feature/x" {
		t.Errorf("previews taken down %q, want feature/x's", got)
	}
}

// TestReconcileLooksAtPreviewsThatAreUp reconciles a webhook project with pull request #7's
// preview up: #7's head is deployed, #8, which has no preview, is left to its webhook.
func TestReconcileLooksAtPreviewsThatAreUp(t *testing.T) {
	gh := githubtest.New(t, token)
	gh.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main", Branches: map[string]string{"main": sha("a")}})
	gh.SetPulls("acme/site", []githubtest.Pull{{Number: 7, HeadSHA: sha("7"), HeadRef: "topic"}, {Number: 8, HeadSHA: sha("8"), HeadRef: "fix"}})
	p := githubProject(1, true)
	p.Poll = false
	p.Previews = []poll.Preview{{Branch: "topic", PullRequest: 7}}
	h := newHarness(t, gh, poll.Options{Interval: time.Minute, Reconcile: 10 * time.Minute}, p)
	h.runFor(5 * time.Minute)
	want := []string{"1 main aaaaaaa reconcile Tip of main", "1 #7 7777777 reconcile Tip of topic"}
	if got := h.deployer.deployments(); !slices.Equal(got, want) {
		t.Errorf("deployments %q, want %q", got, want)
	}
}

// TestGonePullRequestClosesItsPreview lists the open pull requests of a project whose pull request
// #7 has a preview up: a listing that failed closes nothing, one read in full without #7 closes it.
func TestGonePullRequestClosesItsPreview(t *testing.T) {
	gh := githubtest.New(t, token)
	gh.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main", Branches: map[string]string{"main": sha("a")}})
	gh.SetPulls("acme/site", []githubtest.Pull{{Number: 8, HeadSHA: sha("8"), HeadRef: "fix"}})
	gh.Fail("GET /repos/acme/site/pulls", http.StatusBadGateway, "Server Error")
	p := githubProject(1, true)
	p.Previews = []poll.Preview{{Branch: "topic", PullRequest: 7}, {Branch: "fix", PullRequest: 8}}
	h := newHarness(t, gh, poll.Options{Interval: time.Minute}, p)
	if _, _, failed := h.poller.ReconcileError(1); !failed {
		t.Fatal("the reconciliation at start did not fail with the listing")
	}
	if got := h.deployer.closedPreviews(); len(got) != 0 {
		t.Fatalf("a failed listing closed %q", got)
	}
	h.runFor(20 * time.Second)
	if got := h.deployer.closedPreviews(); len(got) == 0 || got[0] != "1 #7" || slices.Contains(got, "1 #8") {
		t.Errorf("closed %q after a listing without #7, want #7 alone", got)
	}
}

// TestHangingGitHubRequestTimesOut stalls GitHub's answer to a poll: the check ends at its timeout
// and says so.
func TestHangingGitHubRequestTimesOut(t *testing.T) {
	gh := githubtest.New(t, token)
	gh.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main", Branches: map[string]string{"main": sha("a")}})
	h := newHarness(t, gh, poll.Options{Interval: time.Minute, CheckTimeout: 2 * time.Second}, githubProject(1, false))
	gh.Stall("GET /repos/acme/site/commits/main")
	for h.status(1).LastPollError == "" {
		h.step()
	}
	if st := h.status(1); st.LastPollError != "the GitHub request for the head of branch main timed out after 2s" {
		t.Errorf("status %+v", st)
	}
}

// TestSpentRateLimitAtStartCostsOneRequest starts polling ten GitHub projects while the token's
// rate limit is spent, as after a restart during a pause: the first answer pauses the others,
// which were already waiting for a slot, before they send anything.
func TestSpentRateLimitAtStartCostsOneRequest(t *testing.T) {
	gh := githubtest.New(t, token)
	gh.SetRateLimit(5000, 0, start.Add(30*time.Minute))
	var projects []poll.Project
	for id := range int64(10) {
		name := fmt.Sprintf("acme/site-%d", id)
		gh.AddRepo(githubtest.Repo{FullName: name, DefaultBranch: "main", Branches: map[string]string{"main": sha("a")}})
		projects = append(projects, poll.Project{ID: id + 1, Slug: fmt.Sprint("site-", id), Repo: name,
			RepoURL: "https://github.com/" + name + ".git", Branch: "main", Poll: true})
	}
	h := newHarness(t, gh, poll.Options{Interval: time.Minute, Concurrency: 1}, projects...)
	if answers := gh.Answers(); len(answers) != 1 || answers[0].Status != http.StatusForbidden {
		t.Errorf("answers at start %+v, want one 403", answers)
	}
	for id := range int64(10) {
		if st := h.status(id + 1); !strings.Contains(st.LastPollError, "rate limit") {
			t.Errorf("project %d's status says no rate limit: %+v", id+1, st)
		}
	}
}

// TestPreviewHeadLastSeenOutlivesARestart starts polling with feature/x's preview up at one commit
// and the branch at another: the head is handed over with the preview's commit as the one it moved
// from, as it would be had the poller seen it before a restart.
func TestPreviewHeadLastSeenOutlivesARestart(t *testing.T) {
	gh := githubtest.New(t, token)
	gh.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main", Branches: map[string]string{"main": sha("a"), "feature/x": sha("2")}})
	p := githubProject(1, false)
	p.PreviewBranches = []string{"feature/x"}
	p.Previews = []poll.Preview{{Alias: "git-feature-x", Branch: "feature/x", HeadSHA: sha("1")}}
	h := newHarness(t, gh, poll.Options{Interval: time.Minute}, p)
	h.deployer.mu.Lock()
	defer h.deployer.mu.Unlock()
	var before []string
	for _, d := range h.deployer.done {
		before = append(before, d.head.Branch+" "+d.head.Before)
	}
	if want := []string{"main ", "feature/x " + sha("1")}; !slices.Equal(before, want) {
		t.Errorf("heads handed over with the commits they moved from %q, want %q", before, want)
	}
}

// TestUnreadablePreviewBranchHoldsUpNoOtherHead fails the request that would confirm a preview
// branch gone, in the check that also finds a new production head: production deploys, the
// preview stays up, the check says what failed, and the next check takes the preview down.
func TestUnreadablePreviewBranchHoldsUpNoOtherHead(t *testing.T) {
	gh := githubtest.New(t, token)
	gh.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main", Branches: map[string]string{"main": sha("a"), "feature/x": sha("f")}})
	p := githubProject(1, false)
	p.PreviewBranches = []string{"feature/*"}
	p.Previews = []poll.Preview{{Alias: "git-feature-x", Branch: "feature/x", HeadSHA: sha("f")}}
	h := newHarness(t, gh, poll.Options{Interval: time.Minute}, p)
	gh.SetBranch("acme/site", "feature/x", "")
	gh.SetBranch("acme/site", "main", sha("b"))
	gh.Fail("GET /repos/acme/site/commits/feature/x", http.StatusBadGateway, "Server Error")
	for !slices.Contains(h.deployer.deployments(), "1 main bbbbbbb poll Tip of main") {
		h.step()
	}
	if got := h.deployer.closedPreviews(); len(got) != 0 {
		t.Errorf("a preview was taken down on an error: %q", got)
	}
	if st := h.status(1); !strings.Contains(st.LastPollError, "502") && !strings.Contains(st.LastPollError, "Server Error") {
		t.Errorf("status %+v does not say what failed", st)
	}
	for len(h.deployer.closedPreviews()) == 0 {
		h.step()
	}
	if got := h.deployer.closedPreviews(); got[0] != "1 feature/x" {
		t.Errorf("previews taken down %q", got)
	}
}

// TestSecondaryLimitWaitsForItsRetryAfter answers a check with a secondary rate limit (429) whose
// Retry-After is 30 s while the primary limit, whose reset is an hour away, has requests left:
// polling waits the 30 s, not the hour.
func TestSecondaryLimitWaitsForItsRetryAfter(t *testing.T) {
	gh := githubtest.New(t, token)
	gh.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main", Branches: map[string]string{"main": sha("a")}})
	h := newHarness(t, gh, poll.Options{Interval: time.Minute}, githubProject(1, false))
	reset := h.clock.Now().Add(time.Hour)
	gh.FailWith("GET /repos/acme/site/commits/main", http.StatusTooManyRequests, "You have exceeded a secondary rate limit",
		map[string]string{"Retry-After": "30", "X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4990",
			"X-RateLimit-Reset": strconv.FormatInt(reset.Unix(), 10)})
	for !strings.Contains(h.status(1).LastPollError, "rate limit") {
		h.step()
	}
	if next := h.status(1).NextPollAt; next.After(h.clock.Now().Add(2 * time.Minute)) {
		t.Errorf("next check at %s, %s away: the primary limit's reset, not the Retry-After", next, next.Sub(h.clock.Now()))
	}
}

// TestFailedPageOfThePullRequestsHoldsUpNoHeadBefore lists 150 open pull requests whose second page
// fails: a new head on the first page deploys, and no preview is taken down for the pages unread.
func TestFailedPageOfThePullRequestsHoldsUpNoHeadBefore(t *testing.T) {
	gh := githubtest.New(t, token)
	gh.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main", Branches: map[string]string{"main": sha("a")}})
	var pulls []githubtest.Pull
	for n := 150; n >= 1; n-- {
		pulls = append(pulls, githubtest.Pull{Number: n, HeadSHA: sha("c"), HeadRef: fmt.Sprintf("topic-%d", n)})
	}
	gh.SetPulls("acme/site", pulls)
	p := githubProject(1, true)
	p.Previews = []poll.Preview{{Alias: "pr-1", Branch: "topic-1", PullRequest: 1, HeadSHA: sha("c")}}
	h := newHarness(t, gh, poll.Options{Interval: time.Minute}, p)
	pulls[0].HeadSHA = sha("d") // #150, on the first page
	gh.SetPulls("acme/site", pulls)
	gh.Fail("GET /repos/acme/site/pulls?page=2", http.StatusBadGateway, "Server Error")
	h.runFor(70 * time.Second)
	if !slices.ContainsFunc(h.deployer.deployments(), func(d string) bool { return strings.HasPrefix(d, "1 #150 ddddddd poll") }) {
		t.Fatalf("the first page's new head was not deployed: %q", h.deployer.deployments())
	}
	if got := h.deployer.closedPreviews(); len(got) != 0 {
		t.Errorf("previews taken down on a failed listing: %q", got)
	}
}

// TestCutListingIsToldOnce polls a repository with more branches than a listing reads: the log
// says so once, not at every check.
func TestCutListingIsToldOnce(t *testing.T) {
	gh := githubtest.New(t, token)
	branches := map[string]string{"main": sha("a")}
	for n := range github.MaxPages*github.PageSize + 1 {
		branches[fmt.Sprintf("feature/%04d", n)] = sha("a")
	}
	gh.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main", Branches: branches})
	p := githubProject(1, false)
	p.PreviewBranches = []string{"feature/*"}
	h := newHarness(t, gh, poll.Options{Interval: time.Minute}, p)
	h.runFor(3 * time.Minute)
	if n := strings.Count(h.log.String(), "the listing of branches stopped before its end"); n != 1 {
		t.Errorf("the cut listing was told %d times:\n%s", n, h.log)
	}
}
