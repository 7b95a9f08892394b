package report_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/github/githubtest"
	"github.com/miaobu/miaobu/internal/logtest"
	"github.com/miaobu/miaobu/internal/outbox"
	"github.com/miaobu/miaobu/internal/report"
	"github.com/miaobu/miaobu/internal/store"
)

const (
	token     = "ghp_report-test-token"
	publicURL = "https://deploy.example.com"
	liveURL   = "https://site.example.com/"
)

// sha returns a distinct full commit SHA.
func sha(c string) string { return strings.Repeat(c, 40)[:40] }

// env is a real store whose transitions a Reporter turns into messages, an outbox worker that
// sends them to a strict fake GitHub, and a project of the repository acme/site.
type env struct {
	store    *store.Store
	gh       *githubtest.Server
	reporter *report.Reporter
	project  *store.Project
	log      *logtest.Buffer
	stop     func()
	// sendTimeout is the outbox's SendTimeout.
	sendTimeout time.Duration
}

// options are the Reporter's options of a test, before the environment fills them.
type options struct {
	statuses, deployments, noToken, byHand bool
	// backoff is how failed reports are retried: after 20 ms when zero.
	backoff outbox.Backoff
	// sendTimeout bounds an attempt: the outbox's default when zero.
	sendTimeout time.Duration
}

func newEnv(t *testing.T, o options) *env {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "data"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	gh := githubtest.New(t, token)
	gh.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main"})
	client, err := github.New(github.Options{APIURL: gh.URL, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	log := &logtest.Buffer{}
	e := &env{store: st, gh: gh, log: log, stop: func() {}, sendTimeout: o.sendTimeout}
	if o.backoff == (outbox.Backoff{}) {
		o.backoff = outbox.Backoff{First: 20 * time.Millisecond, Max: 20 * time.Millisecond}
	}
	e.reporter = report.New(report.Options{GitHub: client, HasToken: !o.noToken, Statuses: o.statuses, Deployments: o.deployments,
		PublicURL: publicURL, Store: st, Log: slog.New(slog.NewTextHandler(log, nil)), Backoff: o.backoff,
		LiveURL: func(*store.Project) string { return liveURL },
		DeploymentURL: func(p *store.Project, d *store.Deployment) string {
			if d.Alias != "" {
				return fmt.Sprintf("https://%s--%s.example.com/", p.Slug, d.Alias) // a preview is seen at its alias
			}
			return fmt.Sprintf("https://%s--%d.example.com/", p.Slug, d.ID)
		}})
	st.OnTransition(e.reporter.Transition)
	e.project = &store.Project{Name: "site", Slug: "site", Repo: "acme/site", RepoURL: "https://github.com/acme/site.git",
		DefaultBranch: "main", Target: "local"}
	if o.byHand {
		e.project.Repo = ""
	}
	if err := st.CreateProject(e.project); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.stop()
		st.Close()
	})
	return e
}

// start runs an outbox worker, whose reports are retried after 20 ms, until the test ends or stop.
func (e *env) start() {
	w := outbox.New(e.store, outbox.Options{PollInterval: 20 * time.Millisecond, SendTimeout: e.sendTimeout,
		Logger: slog.New(slog.NewTextHandler(e.log, nil))})
	e.reporter.Register(w)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	e.stop = func() { cancel(); <-done }
}

// waitFor fails the test unless cond holds within 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// statuses waits until GitHub has n commit statuses and returns them.
func (e *env) statuses(t *testing.T, n int) []githubtest.Status {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d commit statuses", n), func() bool { return len(e.gh.Statuses("acme/site")) >= n })
	return e.gh.Statuses("acme/site")
}

// deployments waits until GitHub has n deployments with m statuses in all, and returns them in
// the order of their commits (deployments of different commits are made in any order).
func (e *env) deployments(t *testing.T, n, m int) []githubtest.Deployment {
	t.Helper()
	var got []githubtest.Deployment
	waitFor(t, fmt.Sprintf("%d deployments with %d statuses", n, m), func() bool {
		got = e.gh.Deployments("acme/site")
		total := 0
		for _, d := range got {
			total += len(d.Statuses)
		}
		return len(got) == n && total == m
	})
	slices.SortStableFunc(got, func(a, b githubtest.Deployment) int { return strings.Compare(a.Ref, b.Ref) })
	return got
}

// push queues a deployment of commit c.
func (e *env) push(t *testing.T, c string) int64 {
	t.Helper()
	res, err := e.store.RecordPush(context.Background(), store.Push{ProjectID: e.project.ID, DeliveryID: "d-" + c, CommitSHA: sha(c), Branch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	return res.DeploymentID
}

// claim starts the build of the oldest queued deployment.
func (e *env) claim(t *testing.T) *store.Deployment {
	t.Helper()
	d, err := e.store.ClaimNext(func(int64) bool { return false })
	if err != nil || d == nil {
		t.Fatalf("claim: %+v, %v", d, err)
	}
	return d
}

// status is a commit status of commit c as miaobu sends it for deployment id.
func status(c string, id int64, state, description string) githubtest.Status {
	return githubtest.Status{SHA: sha(c), State: state, Description: description, TargetURL: fmt.Sprintf("%s/deployments/%d", publicURL, id),
		Context: "miaobu/site"}
}

// checkStatuses fails the test unless got is want.
func checkStatuses(t *testing.T, got, want []githubtest.Status) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("commit statuses\n%+v\nwant\n%+v", got, want)
	}
}

// production is a GitHub Deployment of commit c for miaobu deployment id, with statuses.
func production(c string, id, githubID int64, statuses ...githubtest.DeploymentStatus) githubtest.Deployment {
	return githubtest.Deployment{ID: githubID, Ref: sha(c), Environment: "production", Description: fmt.Sprintf("miaobu deployment #%d", id),
		Production: true, Payload: fmt.Sprintf(`{"miaobu":{"deployment_id":%d}}`, id), Statuses: statuses}
}

// checkDeployments fails the test unless got is want, ignoring GitHub's ids.
func checkDeployments(t *testing.T, got, want []githubtest.Deployment) {
	t.Helper()
	for i := range got {
		if i < len(want) {
			want[i].ID = got[i].ID
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("deployments\n%+v\nwant\n%+v", got, want)
	}
}

// logURL is the log link of deployment id.
func logURL(id int64) string { return fmt.Sprintf("%s/deployments/%d", publicURL, id) }

func TestSuccess(t *testing.T) {
	e := newEnv(t, options{statuses: true, deployments: true})
	e.start()
	id := e.push(t, "a")
	e.statuses(t, 1)
	e.claim(t)
	e.statuses(t, 2)
	if err := e.store.SetStatus(id, store.StatusBuilding); err != nil {
		t.Fatal(err)
	}
	e.statuses(t, 3)
	if _, err := e.store.Complete(id); err != nil {
		t.Fatal(err)
	}
	d, _ := e.store.Deployment(id)
	live := "Live in " + time.Duration(*d.BuildTimeSeconds*float64(time.Second)).Round(time.Second).String()
	checkStatuses(t, e.statuses(t, 4), []githubtest.Status{
		status("a", id, "pending", "Queued"), status("a", id, "pending", "Cloning"),
		status("a", id, "pending", "Building"), status("a", id, "success", live),
	})
	got := e.deployments(t, 1, 2)
	checkDeployments(t, got, []githubtest.Deployment{production("a", id, 0,
		githubtest.DeploymentStatus{State: "in_progress", Description: "Building", LogURL: logURL(id)},
		githubtest.DeploymentStatus{State: "success", Description: live, EnvironmentURL: liveURL, LogURL: logURL(id)})})
	if d, _ := e.store.Deployment(id); d.GitHubDeploymentID != got[0].ID {
		t.Errorf("deployment remembers GitHub deployment %d, GitHub made %d", d.GitHubDeploymentID, got[0].ID)
	}
}

func TestFailure(t *testing.T) {
	e := newEnv(t, options{statuses: true, deployments: true})
	id := e.push(t, "a")
	e.claim(t)
	e.start()
	e.statuses(t, 1) // Queued was outdated by the time the worker started
	e.deployments(t, 1, 1)
	long := "npm ERR! " + strings.Repeat("missing script ", 12)
	if err := e.store.Fail(id, store.StatusFailed, long+"\nnpm ERR! A complete log of this run can be found in: /tmp/x.log"); err != nil {
		t.Fatal(err)
	}
	cut := string([]rune("Build failed: " + long)[:139]) + "…"
	checkStatuses(t, e.statuses(t, 2), []githubtest.Status{status("a", id, "pending", "Cloning"), status("a", id, "failure", cut)})
	checkDeployments(t, e.deployments(t, 1, 2), []githubtest.Deployment{production("a", id, 0,
		githubtest.DeploymentStatus{State: "in_progress", Description: "Building", LogURL: logURL(id)},
		githubtest.DeploymentStatus{State: "failure", Description: cut, LogURL: logURL(id)})})
}

func TestCancelAndSupersede(t *testing.T) {
	e := newEnv(t, options{statuses: true, deployments: true})
	e.start()
	first := e.push(t, "a")
	e.statuses(t, 1)
	second := e.push(t, "b")
	e.statuses(t, 3)
	e.claim(t)
	e.statuses(t, 4)
	e.deployments(t, 2, 2)
	if _, err := e.store.Cancel(second); err != nil {
		t.Fatal(err)
	}
	got := e.statuses(t, 5)
	// The two deployments report under keys of their own: only each one's order is fixed.
	slices.SortStableFunc(got, func(a, b githubtest.Status) int { return strings.Compare(a.SHA, b.SHA) })
	checkStatuses(t, got, []githubtest.Status{
		status("a", first, "pending", "Queued"), status("a", first, "error", fmt.Sprintf("Superseded by #%d", second)),
		status("b", second, "pending", "Queued"), status("b", second, "pending", "Cloning"), status("b", second, "error", "Cancelled"),
	})
	checkDeployments(t, e.deployments(t, 2, 3), []githubtest.Deployment{
		production("a", first, 0, githubtest.DeploymentStatus{State: "error", Description: fmt.Sprintf("Superseded by #%d", second), LogURL: logURL(first)}),
		production("b", second, 0,
			githubtest.DeploymentStatus{State: "in_progress", Description: "Building", LogURL: logURL(second)},
			githubtest.DeploymentStatus{State: "error", Description: "Cancelled", LogURL: logURL(second)}),
	})
}

func TestSkipped(t *testing.T) {
	e := newEnv(t, options{statuses: true, deployments: true})
	e.start()
	for _, m := range e.reporter.Skipped(e.project, sha("c"), "commit message contains [skip ci]") {
		if _, err := e.store.EnqueueMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	checkStatuses(t, e.statuses(t, 1), []githubtest.Status{{SHA: sha("c"), State: "success",
		Description: "Skipped: commit message contains [skip ci]", Context: "miaobu/site"}})
	if d := e.gh.Deployments("acme/site"); len(d) != 0 {
		t.Errorf("a skipped push made deployments %+v", d)
	}
}

// enqueue adds messages to the outbox.
func (e *env) enqueue(t *testing.T, messages []outbox.Message) {
	t.Helper()
	if len(messages) == 0 {
		t.Fatal("no message to enqueue")
	}
	for _, m := range messages {
		if _, err := e.store.EnqueueMessage(m); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLaterReportsOfADeployment sends the reports that may follow a deployment's success: its
// preview removed, or the deployment live again after a rollback in miaobu.
func TestLaterReportsOfADeployment(t *testing.T) {
	for _, tc := range []struct {
		name   string
		report func(r *report.Reporter, p *store.Project, d *store.Deployment) []outbox.Message
		want   func(id int64) githubtest.DeploymentStatus
	}{
		{"inactive", func(r *report.Reporter, p *store.Project, d *store.Deployment) []outbox.Message {
			return r.Inactive(p, d, "pr-12")
		},
			func(int64) githubtest.DeploymentStatus {
				return githubtest.DeploymentStatus{State: "inactive", Description: "Preview removed"}
			}},
		{"live again", func(r *report.Reporter, p *store.Project, d *store.Deployment) []outbox.Message {
			return r.LiveAgain(p, d, 0)
		},
			func(id int64) githubtest.DeploymentStatus {
				return githubtest.DeploymentStatus{State: "success", Description: fmt.Sprintf("Live again: deployment #%d", id),
					EnvironmentURL: liveURL, LogURL: logURL(id)}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, options{deployments: true})
			e.start()
			id := e.push(t, "a")
			e.claim(t)
			if _, err := e.store.Complete(id); err != nil {
				t.Fatal(err)
			}
			e.deployments(t, 1, 2)
			d, _ := e.store.Deployment(id)
			e.enqueue(t, tc.report(e.reporter, e.project, d))
			if got := e.deployments(t, 1, 3); got[0].Statuses[2] != tc.want(id) {
				t.Errorf("third status %+v, want %+v", got[0].Statuses[2], tc.want(id))
			}
		})
	}
}

func TestInactiveOfADeploymentNotYetOnGitHub(t *testing.T) {
	e := newEnv(t, options{deployments: true})
	id := e.push(t, "a")
	d, _ := e.store.Deployment(id)
	e.enqueue(t, e.reporter.Inactive(e.project, d, "pr-12"))
	e.start()
	checkDeployments(t, e.deployments(t, 1, 1), []githubtest.Deployment{{Ref: sha("a"), Environment: "preview/pr-12",
		Description: fmt.Sprintf("miaobu deployment #%d", id), Transient: true, Payload: fmt.Sprintf(`{"miaobu":{"deployment_id":%d}}`, id),
		Statuses: []githubtest.DeploymentStatus{{State: "inactive", Description: "Preview removed"}}}})
}

func TestLiveAgain(t *testing.T) {
	e := newEnv(t, options{statuses: true, deployments: true})
	id := e.push(t, "a")
	e.claim(t)
	if _, err := e.store.Complete(id); err != nil {
		t.Fatal(err)
	}
	githubID := e.gh.AddDeployment("acme/site", githubtest.Deployment{Ref: "main", Environment: "production", Payload: "{}"})
	d, _ := e.store.Deployment(id)
	e.enqueue(t, e.reporter.LiveAgain(e.project, d, githubID))
	e.start()
	// miaobu's own deployment of the commit has in_progress and success; the one made on GitHub gets
	// its success.
	got := e.deployments(t, 2, 3)
	i := slices.IndexFunc(got, func(d githubtest.Deployment) bool { return d.ID == githubID })
	want := []githubtest.DeploymentStatus{{State: "success", Description: fmt.Sprintf("Live again: deployment #%d", id),
		EnvironmentURL: liveURL, LogURL: logURL(id)}}
	if i < 0 || !reflect.DeepEqual(got[i].Statuses, want) {
		t.Errorf("deployments %+v: the one made on GitHub (%d) should have %+v", got, githubID, want)
	}
}

// TestOutdatedPendingDropped builds a deployment while the worker is stopped: once it runs, the
// pending statuses are outdated and only the final state reaches the commit, while the GitHub
// Deployment still gets every state.
func TestOutdatedPendingDropped(t *testing.T) {
	e := newEnv(t, options{statuses: true, deployments: true})
	id := e.push(t, "a")
	e.claim(t)
	if err := e.store.SetStatus(id, store.StatusBuilding); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Complete(id); err != nil {
		t.Fatal(err)
	}
	e.start()
	e.deployments(t, 1, 2)
	got := e.statuses(t, 1)
	if len(got) != 1 || got[0].State != "success" {
		t.Errorf("commit statuses %+v, want the success alone", got)
	}
}

// TestServerErrorRetriedInOrder fails the creation of the GitHub Deployment and then a commit
// status with 502: both are retried, and nothing of the same deployment overtakes them.
func TestServerErrorRetriedInOrder(t *testing.T) {
	e := newEnv(t, options{statuses: true, deployments: true})
	e.gh.Fail("POST /repos/acme/site/deployments", 502, "Server Error")
	e.gh.Fail("POST /repos/acme/site/deployments", 503, "Service Unavailable")
	id := e.push(t, "a")
	e.claim(t)
	if _, err := e.store.Complete(id); err != nil {
		t.Fatal(err)
	}
	e.gh.Fail("POST /repos/acme/site/statuses/"+sha("a"), 502, "Server Error")
	e.start()
	d, _ := e.store.Deployment(id)
	live := "Live in " + time.Duration(*d.BuildTimeSeconds*float64(time.Second)).Round(time.Second).String()
	checkDeployments(t, e.deployments(t, 1, 2), []githubtest.Deployment{production("a", id, 0,
		githubtest.DeploymentStatus{State: "in_progress", Description: "Building", LogURL: logURL(id)},
		githubtest.DeploymentStatus{State: "success", Description: live, EnvironmentURL: liveURL, LogURL: logURL(id)})})
	checkStatuses(t, e.statuses(t, 1), []githubtest.Status{status("a", id, "success", live)})
	var creates, statusPosts int
	for _, r := range e.gh.Requests() {
		switch r {
		case "POST /repos/acme/site/deployments":
			creates++
		case "POST /repos/acme/site/statuses/" + sha("a"):
			statusPosts++
		}
	}
	if creates != 3 || statusPosts != 2 {
		t.Errorf("GitHub saw %d deployment creations and %d commit statuses, want 3 (two failed) and 2 (one failed)", creates, statusPosts)
	}
	if strings.Contains(e.log.String(), token) {
		t.Error("the log shows the token")
	}
}

// TestSupersededStatusOfTheLiveCommit supersedes deployment #1 of commit a with #2 of the same
// commit, which goes live, and fails the first two commit statuses with 500: #1's "Superseded"
// status, retried, must not end after #2's success, as GitHub keeps one status per commit.
func TestSupersededStatusOfTheLiveCommit(t *testing.T) {
	e := newEnv(t, options{statuses: true})
	first := e.push(t, "a")
	again := &store.Deployment{ProjectID: e.project.ID, CommitSHA: sha("a"), Branch: "main", Trigger: store.TriggerManual}
	if err := e.store.CreateDeployment(again); err != nil {
		t.Fatal(err)
	}
	second := again.ID
	if d, _ := e.store.Deployment(first); d.Status != store.StatusCancelled {
		t.Fatalf("deployment #%d is %s, want superseded", first, d.Status)
	}
	e.claim(t)
	if _, err := e.store.Complete(second); err != nil {
		t.Fatal(err)
	}
	e.gh.Fail("POST /repos/acme/site/statuses/"+sha("a"), 500, "Server Error")
	e.gh.Fail("POST /repos/acme/site/statuses/"+sha("a"), 500, "Server Error")
	e.start()
	waitFor(t, "an empty outbox", func() bool {
		due, next, err := e.store.DueMessages(time.Now().Add(time.Hour), 0, nil)
		return err == nil && len(due) == 0 && next.IsZero()
	})
	d, _ := e.store.Deployment(second)
	live := "Live in " + time.Duration(*d.BuildTimeSeconds*float64(time.Second)).Round(time.Second).String()
	checkStatuses(t, e.gh.Statuses("acme/site"), []githubtest.Status{status("a", second, "success", live)})
	if n := len(e.gh.Requests()); n != 3 {
		t.Errorf("GitHub saw %d requests, want 3 (two failed)", n)
	}
}

// TestRateLimitWaits answers a commit status with 429 and Retry-After: 1; the retry waits for it,
// not for the worker's 20 ms schedule.
func TestRateLimitWaits(t *testing.T) {
	e := newEnv(t, options{statuses: true})
	e.gh.FailWith("POST /repos/acme/site/statuses/"+sha("a"), 429, "You have exceeded a secondary rate limit", map[string]string{"Retry-After": "1"})
	e.push(t, "a")
	e.start()
	waitFor(t, "the first attempt", func() bool { return len(e.gh.Requests()) == 1 })
	refused := time.Now()
	e.statuses(t, 1)
	if waited := time.Since(refused); waited < 800*time.Millisecond {
		t.Errorf("retried after %s, before the second GitHub asked to wait", waited)
	}
}

// TestRefusalHoldsTheKindUntilResume answers the first commit status with 403: it is logged once,
// with the permission the token lacks, and the commit statuses of the project wait in the outbox,
// while deployments are still reported, until Resume sends them, in order.
func TestRefusalHoldsTheKindUntilResume(t *testing.T) {
	e := newEnv(t, options{statuses: true, deployments: true})
	e.gh.Fail("POST /repos/acme/site/statuses/"+sha("a"), 403, "Resource not accessible by personal access token")
	e.start()
	first := e.push(t, "a")
	waitFor(t, "the refused status", func() bool { return len(e.gh.Requests()) == 1 })
	e.claim(t)
	if _, err := e.store.Complete(first); err != nil {
		t.Fatal(err)
	}
	e.deployments(t, 1, 2)
	second := e.push(t, "b")
	e.claim(t)
	if err := e.store.Fail(second, store.StatusFailed, "boom"); err != nil {
		t.Fatal(err)
	}
	e.enqueue(t, e.reporter.Skipped(e.project, sha("d"), "first reason"))
	e.enqueue(t, e.reporter.Skipped(e.project, sha("d"), "second reason"))
	e.deployments(t, 2, 4)
	waitFor(t, "only the held commit statuses left in the outbox", func() bool {
		due, next, err := e.store.DueMessages(time.Now().Add(time.Hour), 0, nil)
		return err == nil && next.IsZero() && len(due) == 3 && !slices.ContainsFunc(due, func(m outbox.Message) bool { return m.Kind != report.KindStatus })
	})
	if got := e.gh.Statuses("acme/site"); len(got) != 0 {
		t.Errorf("commit statuses sent while paused: %+v", got)
	}
	log := e.log.String()
	if n := strings.Count(log, "paused"); n != 1 || !strings.Contains(log, "repo:status") || !strings.Contains(log, "Commit statuses: write") {
		t.Errorf("log says paused %d times, want once naming the permission:\n%s", n, log)
	}
	if s := e.reporter.Summary(e.project); s.Statuses || !s.Deployments || !strings.Contains(s.Note, "commit statuses paused") {
		t.Errorf("Summary while paused = %+v", s)
	}

	e.reporter.Resume(e.project.ID)
	third := e.push(t, "c")
	waitFor(t, "an empty outbox", func() bool {
		due, next, err := e.store.DueMessages(time.Now().Add(time.Hour), 0, nil)
		return err == nil && len(due) == 0 && next.IsZero()
	})
	// Of each deployment the last state is sent (the pending ones are outdated by then), and the
	// reports of commit d in the order they were made.
	a, _ := e.store.Deployment(first)
	live := "Live in " + time.Duration(*a.BuildTimeSeconds*float64(time.Second)).Round(time.Second).String()
	got := e.gh.Statuses("acme/site")
	slices.SortStableFunc(got, func(a, b githubtest.Status) int { return strings.Compare(a.SHA, b.SHA) })
	checkStatuses(t, got, []githubtest.Status{
		status("a", first, "success", live), status("b", second, "failure", "Build failed: boom"), status("c", third, "pending", "Queued"),
		{SHA: sha("d"), State: "success", Description: "Skipped: first reason", Context: "miaobu/site"},
		{SHA: sha("d"), State: "success", Description: "Skipped: second reason", Context: "miaobu/site"},
	})
	if s := e.reporter.Summary(e.project); !s.Statuses || !s.Deployments || s.Note != "" {
		t.Errorf("Summary after Resume = %+v", s)
	}
}

// TestWhatIsReported checks which messages a transition makes under each configuration.
func TestWhatIsReported(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  options
		kinds []string
		note  string
	}{
		{"both", options{statuses: true, deployments: true}, []string{report.KindStatus, report.KindDeployment}, ""},
		{"statuses only", options{statuses: true}, []string{report.KindStatus}, "github.deployments is off"},
		{"deployments only", options{deployments: true}, []string{report.KindDeployment}, "github.statuses is off"},
		{"no token", options{statuses: true, deployments: true, noToken: true}, nil, "no GitHub token: set MIAOBU_GITHUB_TOKEN"},
		{"added by hand", options{statuses: true, deployments: true, byHand: true}, nil, "added by hand, not imported from GitHub"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts)
			d := store.Deployment{ID: 3, ProjectID: e.project.ID, CommitSHA: sha("a"), Status: store.StatusCloning}
			var kinds []string
			for _, m := range e.reporter.Transition(*e.project, d) {
				kinds = append(kinds, m.Kind)
				// GitHub keeps a status per commit, and shows an environment's last success as active.
				want := fmt.Sprintf("%s:%d:production", m.Kind, e.project.ID)
				if m.Kind == report.KindStatus {
					want = fmt.Sprintf("%s:%d:%s", m.Kind, e.project.ID, sha("a"))
				}
				if m.Key != want {
					t.Errorf("key %q, want %q", m.Key, want)
				}
			}
			if !slices.Equal(kinds, tc.kinds) {
				t.Errorf("kinds %q, want %q", kinds, tc.kinds)
			}
			if s := e.reporter.Summary(e.project); s.Note != tc.note {
				t.Errorf("Summary note %q, want %q", s.Note, tc.note)
			}
		})
	}
}

// TestDescriptions checks the words of each state.
func TestDescriptions(t *testing.T) {
	e := newEnv(t, options{statuses: true})
	twelve := 12.4
	for _, tc := range []struct {
		d     store.Deployment
		live  bool
		state string
		want  string
	}{
		{store.Deployment{Status: store.StatusInstalling}, false, "pending", "Installing dependencies"},
		{store.Deployment{Status: store.StatusPurging}, false, "pending", "Purging the CDN"},
		{store.Deployment{Status: store.StatusDeployed, BuildTimeSeconds: &twelve}, true, "success", "Live in 12s"},
		{store.Deployment{Status: store.StatusDeployed, BuildTimeSeconds: &twelve}, false, "success", "Deployed in 12s; a newer deployment is live"},
		{store.Deployment{Status: store.StatusFailed, ErrorMessage: "\n  exit status 1\nmore"}, false, "failure", "Build failed: exit status 1"},
		{store.Deployment{Status: store.StatusFailed}, false, "failure", "Build failed"},
		{store.Deployment{Status: store.StatusCancelled, ErrorMessage: "cancelled by user"}, false, "error", "Cancelled"},
		{store.Deployment{Status: store.StatusCancelled, ErrorMessage: "superseded by #9"}, false, "error", "Superseded by #9"},
		{store.Deployment{Status: store.StatusCancelled, ErrorMessage: "Skipped: commit message contains [no ci]", Skipped: true}, false,
			"success", "Skipped: commit message contains [no ci]"},
	} {
		tc.d.ID, tc.d.CommitSHA = 5, sha("a")
		p := *e.project
		if tc.live {
			p.ActiveDeploymentID = 5
		}
		messages := e.reporter.Transition(p, tc.d)
		if len(messages) != 1 || !strings.Contains(string(messages[0].Payload), fmt.Sprintf(`"state":%q,"description":%q`, tc.state, tc.want)) {
			t.Errorf("%s: %+v, want state %s and %q", tc.d.Status, messages, tc.state, tc.want)
		}
	}
}

// outboxEmpty waits until every report has left the outbox.
func (e *env) outboxEmpty(t *testing.T) {
	t.Helper()
	waitFor(t, "an empty outbox", func() bool {
		due, next, err := e.store.DueMessages(time.Now().Add(1000*time.Hour), 0, nil)
		return err == nil && len(due) == 0 && next.IsZero()
	})
}

// TestOutageOfAnyLength fails every request for longer than any schedule of retries lasts: no
// report is given up on, and all reach GitHub once it answers again.
func TestOutageOfAnyLength(t *testing.T) {
	e := newEnv(t, options{statuses: true, deployments: true})
	e.gh.Outage(http.StatusBadGateway)
	e.start()
	id := e.push(t, "a")
	e.claim(t)
	if _, err := e.store.Complete(id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "30 failed requests", func() bool { return len(e.gh.Requests()) >= 30 })
	e.gh.Outage(0)
	e.deployments(t, 1, 2)
	if got := e.statuses(t, 1); got[len(got)-1].State != "success" {
		t.Errorf("commit statuses %+v, want the success last", got)
	}
	if log := e.log.String(); strings.Contains(log, "giving up") {
		t.Errorf("a report was given up on:\n%s", log)
	}
}

// TestSuccessWakesWaitingReports fails the reports of a deployment once, so that they wait an
// hour; as soon as another report of the kind goes through, they are sent, not an hour later.
func TestSuccessWakesWaitingReports(t *testing.T) {
	e := newEnv(t, options{statuses: true, backoff: outbox.Backoff{First: time.Hour, Max: time.Hour}})
	e.gh.Outage(http.StatusServiceUnavailable)
	e.start()
	id := e.push(t, "a")
	waitFor(t, "the failed attempt", func() bool {
		due, next, err := e.store.DueMessages(time.Now(), 0, nil)
		return err == nil && len(due) == 0 && next.After(time.Now().Add(30*time.Minute))
	})
	e.gh.Outage(0)
	e.enqueue(t, e.reporter.Skipped(e.project, sha("b"), "commit message contains [skip ci]"))
	got := e.statuses(t, 2)
	slices.SortStableFunc(got, func(a, b githubtest.Status) int { return strings.Compare(a.SHA, b.SHA) })
	checkStatuses(t, got, []githubtest.Status{status("a", id, "pending", "Queued"),
		{SHA: sha("b"), State: "success", Description: "Skipped: commit message contains [skip ci]", Context: "miaobu/site"}})
}

// TestDeletedGitHubDeployment deletes a deployment's GitHub Deployment on GitHub: its later statuses
// are dropped, logged once without talk of permissions, and the other deployments are reported.
func TestDeletedGitHubDeployment(t *testing.T) {
	e := newEnv(t, options{deployments: true})
	e.start()
	first := e.push(t, "a")
	e.claim(t)
	e.deployments(t, 1, 1)
	e.gh.RemoveDeployment("acme/site", e.gh.Deployments("acme/site")[0].ID)
	if _, err := e.store.Complete(first); err != nil {
		t.Fatal(err)
	}
	d, _ := e.store.Deployment(first)
	e.enqueue(t, e.reporter.LiveAgain(e.project, d, 0))
	second := e.push(t, "b")
	e.claim(t)
	if err := e.store.Fail(second, store.StatusFailed, "boom"); err != nil {
		t.Fatal(err)
	}
	checkDeployments(t, e.deployments(t, 1, 2), []githubtest.Deployment{production("b", second, 0,
		githubtest.DeploymentStatus{State: "in_progress", Description: "Building", LogURL: logURL(second)},
		githubtest.DeploymentStatus{State: "failure", Description: "Build failed: boom", LogURL: logURL(second)})})
	e.outboxEmpty(t)
	log := e.log.String()
	if n := strings.Count(log, "was deleted on GitHub; its statuses are dropped"); n != 1 || strings.Contains(log, "paused") || strings.Contains(log, "repo_deployment") {
		t.Errorf("log, which should say once that the deployment was deleted, and nothing of permissions:\n%s", log)
	}
	if s := e.reporter.Summary(e.project); !s.Deployments {
		t.Errorf("Summary = %+v, want deployments reported", s)
	}
}

// TestLostCreationAnswer makes GitHub create the deployment but lose the answer: the retry finds
// the deployment made and reports to it instead of making a second one.
func TestLostCreationAnswer(t *testing.T) {
	for _, loss := range []githubtest.Loss{githubtest.Dropped, githubtest.Hung} {
		t.Run(fmt.Sprint(loss), func(t *testing.T) {
			e := newEnv(t, options{deployments: true, sendTimeout: time.Second})
			e.gh.LoseAnswer("POST /repos/acme/site/deployments", loss)
			id := e.push(t, "a")
			e.claim(t)
			if _, err := e.store.Complete(id); err != nil {
				t.Fatal(err)
			}
			e.start()
			e.outboxEmpty(t)
			d, _ := e.store.Deployment(id)
			live := "Live in " + time.Duration(*d.BuildTimeSeconds*float64(time.Second)).Round(time.Second).String()
			got := e.gh.Deployments("acme/site")
			checkDeployments(t, got, []githubtest.Deployment{production("a", id, 0,
				githubtest.DeploymentStatus{State: "in_progress", Description: "Building", LogURL: logURL(id)},
				githubtest.DeploymentStatus{State: "success", Description: live, EnvironmentURL: liveURL, LogURL: logURL(id)})})
			if len(got) == 1 && d.GitHubDeploymentID != got[0].ID {
				t.Errorf("deployment remembers GitHub deployment %d, GitHub made %d", d.GitHubDeploymentID, got[0].ID)
			}
		})
	}
}

// TestRateLimitResetFarAhead answers with a primary rate limit that claims to reset in 2030: the
// report is tried again within the hour, not in years.
func TestRateLimitResetFarAhead(t *testing.T) {
	e := newEnv(t, options{statuses: true})
	reset := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	e.gh.FailWith("POST /repos/acme/site/statuses/"+sha("a"), http.StatusForbidden, "API rate limit exceeded",
		map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Limit": "5000", "X-RateLimit-Reset": strconv.FormatInt(reset.Unix(), 10)})
	e.push(t, "a")
	e.start()
	var m outbox.Message
	waitFor(t, "the limited attempt", func() bool {
		due, _, err := e.store.DueMessages(time.Now().Add(100000*time.Hour), 0, nil)
		if err != nil || len(due) != 1 {
			return false
		}
		m = due[0]
		return m.Attempts == 1
	})
	if latest := time.Now().Add(outbox.MaxRetryAfter); m.NextAttemptAt.After(latest) {
		t.Errorf("retried at %v, after %v", m.NextAttemptAt, latest)
	}
}

// TestRateLimit403DoesNotPause answers a commit status and a deployment with the 403s of GitHub's
// rate limits, primary (no request left) and secondary (saying no time): neither pauses its kind,
// both wait to be retried, the secondary one at least the minute GitHub's documentation asks for.
func TestRateLimit403DoesNotPause(t *testing.T) {
	e := newEnv(t, options{statuses: true, deployments: true})
	reset := time.Now().Add(10 * time.Minute)
	e.gh.FailWith("POST /repos/acme/site/statuses/"+sha("a"), http.StatusForbidden, "API rate limit exceeded for user ID 1.",
		map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Limit": "5000", "X-RateLimit-Reset": strconv.FormatInt(reset.Unix(), 10)})
	e.gh.FailWith("POST /repos/acme/site/deployments", http.StatusForbidden,
		"You have exceeded a secondary rate limit and have been temporarily blocked from content creation. Please retry your request again later.",
		map[string]string{"X-RateLimit-Remaining": "4990", "X-RateLimit-Limit": "5000", "X-RateLimit-Reset": strconv.FormatInt(reset.Unix(), 10)})
	e.push(t, "a")
	e.claim(t)
	e.start()
	var due []outbox.Message
	waitFor(t, "both reports limited once", func() bool {
		var err error
		due, _, err = e.store.DueMessages(time.Now().Add(time.Hour), 0, nil)
		return err == nil && len(due) == 2 && due[0].Attempts == 1 && due[1].Attempts == 1
	})
	for _, m := range due {
		earliest := time.Now().Add(50 * time.Second)
		if m.Kind == report.KindStatus {
			earliest = reset.Add(-time.Second)
		}
		if m.NextAttemptAt.Before(earliest) {
			t.Errorf("%s retried at %v, before %v", m.Kind, m.NextAttemptAt, earliest)
		}
	}
	if s := e.reporter.Summary(e.project); !s.Statuses || !s.Deployments || s.Note != "" {
		t.Errorf("Summary after rate limits = %+v", s)
	}
	if log := e.log.String(); strings.Contains(log, "paused") {
		t.Errorf("a rate limit paused reporting:\n%s", log)
	}
}

// TestPreviewOfTheLiveCommit deploys commit a to production and, while it builds, as pull request
// 13's preview, which commit b then supersedes; then a preview branch deploys commit a too. The
// status of commit a on GitHub must end with production's success: neither the newer preview nor
// its "Superseded" error takes it away, whatever the order the reports go out in.
func TestPreviewOfTheLiveCommit(t *testing.T) {
	for _, running := range []bool{true, false} {
		t.Run(fmt.Sprintf("worker running %v", running), func(t *testing.T) {
			e := newEnv(t, options{statuses: true})
			if running {
				e.start()
			}
			production := e.push(t, "a")
			e.claim(t)
			preview := func(c, alias string, n int) int64 {
				t.Helper()
				res, err := e.store.RecordPush(context.Background(), store.Push{ProjectID: e.project.ID, DeliveryID: "d-" + alias + c,
					CommitSHA: sha(c), Branch: alias, Alias: alias, PullRequest: n})
				if err != nil {
					t.Fatal(err)
				}
				return res.DeploymentID
			}
			preview("a", "pr-13", 13)
			next := preview("b", "pr-13", 13)
			if _, err := e.store.Complete(production); err != nil {
				t.Fatal(err)
			}
			if d := e.claim(t); d.ID != next {
				t.Fatalf("claimed #%d, want #%d", d.ID, next)
			}
			if _, err := e.store.Complete(next); err != nil {
				t.Fatal(err)
			}
			branch := preview("a", "git-feature", 0)
			e.claim(t)
			if _, err := e.store.Complete(branch); err != nil {
				t.Fatal(err)
			}
			if !running {
				e.start()
			}
			waitFor(t, "an empty outbox", func() bool {
				due, next, err := e.store.DueMessages(time.Now().Add(time.Hour), 0, nil)
				return err == nil && len(due) == 0 && next.IsZero()
			})
			var onA []githubtest.Status
			for _, s := range e.gh.Statuses("acme/site") {
				if s.SHA == sha("a") {
					onA = append(onA, s)
				}
			}
			d, _ := e.store.Deployment(production)
			live := "Live in " + time.Duration(*d.BuildTimeSeconds*float64(time.Second)).Round(time.Second).String()
			if len(onA) == 0 || onA[len(onA)-1] != status("a", production, "success", live) {
				t.Errorf("statuses of commit a end with %+v, want production's success", onA)
			}
		})
	}
}

// TestDeploymentsOfAnEnvironmentInOrder fails the creation of the first of three production
// deployments' GitHub Deployments: the others wait for it, so that GitHub creates them, and gets
// their statuses, in miaobu's order, and shows the newest one's success last.
func TestDeploymentsOfAnEnvironmentInOrder(t *testing.T) {
	e := newEnv(t, options{deployments: true})
	var ids []int64
	for _, c := range []string{"a", "b", "c"} {
		id := e.push(t, c)
		e.claim(t)
		if _, err := e.store.Complete(id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	e.gh.Fail("POST /repos/acme/site/deployments", 502, "Server Error")
	e.start()
	e.deployments(t, 3, 6)
	for i, d := range e.gh.Deployments("acme/site") {
		if want := fmt.Sprintf(`{"miaobu":{"deployment_id":%d}}`, ids[i]); d.Payload != want {
			t.Errorf("GitHub Deployment %d is of %s, want %s", i, d.Payload, want)
		}
	}
}
