package agent_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent"
	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/clock/clocktest"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/github/githubtest"
	"github.com/miaobu/miaobu/internal/gittest"
)

// deploymentOf waits until project p has a deployment of commit sha and returns it once it has ended.
func deploymentOf(t *testing.T, ta *agenttest.Agent, p api.Project, sha string) api.Deployment {
	t.Helper()
	return ta.Wait(t, queuedOf(t, ta, p, sha).ID)
}

// queuedOf waits until project p has a deployment of commit sha and returns it.
func queuedOf(t *testing.T, ta *agenttest.Agent, p api.Project, sha string) api.Deployment {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var list []api.Deployment
		ta.Call(t, "GET", fmt.Sprintf("%s?project_id=%d&limit=100", api.PathDeployments, p.ID), nil, http.StatusOK, &list)
		for _, d := range list {
			if d.CommitSHA == sha {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no deployment of %s: %+v", sha[:7], list)
		}
	}
}

// history returns the commits of project p's deployments, oldest first, with their triggers.
func history(t *testing.T, ta *agenttest.Agent, p api.Project) []string {
	t.Helper()
	var list []api.Deployment
	ta.Call(t, "GET", fmt.Sprintf("%s?project_id=%d&limit=100", api.PathDeployments, p.ID), nil, http.StatusOK, &list)
	var out []string
	for i := len(list) - 1; i >= 0; i-- {
		out = append(out, list[i].CommitSHA[:7]+" "+list[i].Trigger)
	}
	return out
}

func TestPolledProjectDeploysWithoutWebhook(t *testing.T) {
	t.Parallel()
	clock := clocktest.New(time.Now())
	cfg := agenttest.Config(t)
	cfg.Poll.Interval = time.Minute
	ta := agenttest.StartWith(t, cfg, agenttest.Options{Prepare: func(a *agent.Agent) { a.SetClock(clock) }})
	repo := gittest.New(t)
	first := repo.Commit("first", map[string]string{"index.html": "version one"})
	var p api.Project
	ta.Call(t, "POST", api.PathProjects, api.ProjectCreate{Name: "laptop", RepoURL: "file://" + repo.Dir, TriggerSettings: api.TriggerSettings{Trigger: ptr(api.ProjectTriggerPoll)}},
		http.StatusCreated, &p)
	if p.Trigger != api.ProjectTriggerPoll || p.DefaultBranch != "main" {
		t.Fatalf("created %+v", p)
	}
	// The first check deploys the head, as no deployment of it exists.
	if d := deploymentOf(t, ta, p, first); d.Status != api.StatusDeployed || d.Trigger != api.TriggerPoll || d.CommitMessage != "first" {
		t.Fatalf("first check: %+v\n%s", d, ta.Log(t, d.ID))
	}
	second := repo.Commit("second", map[string]string{"index.html": "version two"})
	clock.Advance(90 * time.Second)
	if d := deploymentOf(t, ta, p, second); d.Status != api.StatusDeployed || d.Trigger != api.TriggerPoll || !d.Live {
		t.Fatalf("after a commit: %+v\n%s", d, ta.Log(t, d.ID))
	}
	if _, body := ta.Site(t, p.Slug, "/"); body != "version two" {
		t.Errorf("the site serves %q", body)
	}

	var status api.Status
	ta.Call(t, "GET", api.PathStatus, nil, http.StatusOK, &status)
	ps := status.Projects[0]
	if ps.Trigger != api.ProjectTriggerPoll || ps.LastPollAt == nil || ps.LastPollError != nil || ps.NextPollAt == nil ||
		!ps.NextPollAt.After(*ps.LastPollAt) || ps.LastPollAt.Before(clock.Now().Add(-time.Minute)) {
		t.Errorf("status of the polled project: %+v", ps)
	}
	assertMetrics(t, ta, `miaobu_polls_total{result="changed"} 2`, `miaobu_polls_total{result="error"} 0`)

	// A project switched back to webhooks is no longer polled.
	ta.Call(t, "PATCH", api.PathProjects+"/"+p.Slug, api.ProjectUpdate{TriggerSettings: api.TriggerSettings{Trigger: ptr(api.ProjectTriggerWebhook)}}, http.StatusOK, &p)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ta.Call(t, "GET", api.PathStatus, nil, http.StatusOK, &status)
		if ps := status.Projects[0]; ps.Trigger == api.ProjectTriggerWebhook && ps.NextPollAt == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status of a project switched to webhooks: %+v", status.Projects[0])
		}
	}
}

func TestPollTriggerIsValidated(t *testing.T) {
	t.Parallel()
	ta := agenttest.Start(t, agenttest.Config(t))
	repo := gittest.New(t)
	ta.Call(t, "POST", api.PathProjects, api.ProjectCreate{Name: "x", RepoURL: repo.Dir, Branch: "main", TriggerSettings: api.TriggerSettings{Trigger: ptr("cron")}}, http.StatusBadRequest, nil)
	p := ta.AddProject(t, localProject("site", repo.Dir))
	if p.Trigger != api.ProjectTriggerWebhook {
		t.Errorf("default trigger %q", p.Trigger)
	}
	ta.Call(t, "PATCH", api.PathProjects+"/"+p.Slug, api.ProjectUpdate{TriggerSettings: api.TriggerSettings{Trigger: ptr("sometimes")}}, http.StatusBadRequest, nil)
}

// TestPushesMissedWhileStoppedDeployAtStart stops the agent, pushes two commits, and starts it again:
// the newest is live within seconds, deployed by reconciliation, and the older is never built.
func TestPushesMissedWhileStoppedDeployAtStart(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	onData := func() *agenttest.Agent {
		cfg := agenttest.Config(t)
		cfg.DataDir = data
		return agenttest.Start(t, cfg)
	}
	ta := onData()
	repo := gittest.New(t)
	p := ta.AddProject(t, localProject("site", repo.Dir))
	first := repo.Commit("first", map[string]string{"index.html": "version one"})
	ta.Deployed(t, ta.Push(t, p, first))
	if err := ta.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := ta.Store.Close(); err != nil {
		t.Fatal(err)
	}

	repo.Commit("second", map[string]string{"index.html": "version two"})
	third := repo.Commit("third", map[string]string{"index.html": "version three"})
	ta = onData()
	if d := deploymentOf(t, ta, p, third); d.Status != api.StatusDeployed || d.Trigger != api.TriggerReconcile || !d.Live {
		t.Fatalf("after the restart: %+v\n%s", d, ta.Log(t, d.ID))
	}
	if _, body := ta.Site(t, p.Slug, "/"); body != "version three" {
		t.Errorf("the site serves %q", body)
	}
	want := []string{first[:7] + " webhook", third[:7] + " reconcile"}
	if got := history(t, ta, p); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("deployments %v, want %v: the older missed commit must never be built", got, want)
	}
}

// TestImportedPolledProjectIsCheckedAtOnce imports a repository with trigger poll: its first check
// comes at once, as for `project add --trigger poll`, not when the poller next reads the project list.
func TestImportedPolledProjectIsCheckedAtOnce(t *testing.T) {
	t.Parallel()
	ta, _, gh, p := importPolled(t, nil)
	// The clock stands still: only a check started by the import itself reads the branch.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var status api.Status
		ta.Call(t, "GET", api.PathStatus, nil, http.StatusOK, &status)
		if ps := status.Projects[0]; ps.LastPollAt != nil && ps.NextPollAt != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("an imported project with trigger poll was not checked: %+v\nGitHub received %q", status.Projects[0], gh.Requests())
		}
	}
	if d := history(t, ta, p); len(d) != 1 || d[0] != tipSHA[:7]+" import" {
		t.Errorf("deployments %q, want the import's alone", d)
	}
}

// TestFailedReconcileAtStartIsRetried starts the agent while a project's remote is unreachable (a
// laptop whose network is not up yet): status shows the failure, and the push missed meanwhile is
// deployed once the remote is back, without waiting for reconcile.interval.
func TestFailedReconcileAtStartIsRetried(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	repo := gittest.New(t)
	first := repo.Commit("first", map[string]string{"index.html": "version one"})
	cfg := agenttest.Config(t)
	cfg.DataDir = data
	ta := agenttest.Start(t, cfg)
	p := ta.AddProject(t, localProject("site", repo.Dir))
	ta.Deployed(t, ta.Push(t, p, first))
	if err := ta.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := ta.Store.Close(); err != nil {
		t.Fatal(err)
	}
	second := repo.Commit("second", map[string]string{"index.html": "version two"})
	away := filepath.Join(t.TempDir(), "away")
	if err := os.Rename(repo.Dir, away); err != nil {
		t.Fatal(err)
	}

	clock := clocktest.New(time.Now())
	cfg = agenttest.Config(t)
	cfg.DataDir, cfg.Reconcile.Interval = data, 0
	ta = agenttest.StartWith(t, cfg, agenttest.Options{Prepare: func(a *agent.Agent) { a.SetClock(clock) }})
	var status api.Status
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ta.Call(t, "GET", api.PathStatus, nil, http.StatusOK, &status)
		if ps := status.Projects[0]; ps.LastReconcileError != nil {
			if ps.ReconcileRetryAt == nil || ps.ReconcileRetryAt.Sub(clock.Now()) > 15*time.Second {
				t.Fatalf("status %+v: the retry is not 15 s away", ps)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status shows no failed reconciliation: %+v", status.Projects[0])
		}
	}
	if err := os.Rename(away, repo.Dir); err != nil {
		t.Fatal(err)
	}
	clock.Advance(15 * time.Second)
	if d := deploymentOf(t, ta, p, second); d.Status != api.StatusDeployed || d.Trigger != api.TriggerReconcile || !d.Live {
		t.Fatalf("after the remote came back: %+v\n%s", d, ta.Log(t, d.ID))
	}
	ta.Call(t, "GET", api.PathStatus, nil, http.StatusOK, &status)
	if ps := status.Projects[0]; ps.LastReconcileError != nil || ps.ReconcileRetryAt != nil {
		t.Errorf("status after a successful reconciliation: %+v", ps)
	}
}

// TestPolledHeadSkippedIsReported polls a GitHub project whose new head has a skip marker: it is not
// deployed, and GitHub's commit status says it was skipped, as for a skipped push.
func TestPolledHeadSkippedIsReported(t *testing.T) {
	t.Parallel()
	ta, clock, gh, p := importPolled(t, func(cfg *config.Config) { cfg.GitHub.Statuses = true })
	skipped := strings.Repeat("5", 40)
	gh.SetBranch("acme/site", "main", skipped)
	gh.SetMessage("acme/site", skipped, "Draft the docs [skip ci]")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		clock.Advance(10 * time.Second)
		if slices.ContainsFunc(gh.Statuses("acme/site"), func(s githubtest.Status) bool {
			return s.SHA == skipped && s.State == "success" && s.Description == "Skipped: commit message contains [skip ci]"
		}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Skipped status for the polled head: %+v", gh.Statuses("acme/site"))
		}
	}
	if d := history(t, ta, p); len(d) != 1 {
		t.Errorf("deployments %q, want the import's alone", d)
	}
}

// TestPolledHeadsFollowWatchPaths polls a project that watches docs/**: a commit outside it is not
// deployed, the next one inside it is.
func TestPolledHeadsFollowWatchPaths(t *testing.T) {
	t.Parallel()
	clock := clocktest.New(time.Now())
	cfg := agenttest.Config(t)
	ta := agenttest.StartWith(t, cfg, agenttest.Options{Prepare: func(a *agent.Agent) { a.SetClock(clock) }})
	repo := gittest.New(t)
	first := repo.Commit("first", map[string]string{"index.html": "version one", "docs/a.md": "a"})
	var p api.Project
	ta.Call(t, "POST", api.PathProjects, api.ProjectCreate{Name: "docs", RepoURL: "file://" + repo.Dir, TriggerSettings: api.TriggerSettings{
		Trigger: ptr(api.ProjectTriggerPoll), WatchPaths: &[]string{"docs/**"}}}, http.StatusCreated, &p)
	deploymentOf(t, ta, p, first)
	outside := repo.Commit("Tweak the page", map[string]string{"index.html": "version two"})
	clock.Advance(90 * time.Second)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var status api.Status
		ta.Call(t, "GET", api.PathStatus, nil, http.StatusOK, &status)
		if at := status.Projects[0].LastPollAt; at != nil && at.After(clock.Now().Add(-time.Minute)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no check after the commit outside docs/: %+v", status.Projects[0])
		}
	}
	inside := repo.Commit("Write the guide", map[string]string{"index.html": "version three", "docs/guide.md": "g"})
	clock.Advance(90 * time.Second)
	if d := deploymentOf(t, ta, p, inside); d.Status != api.StatusDeployed || d.Trigger != api.TriggerPoll {
		t.Fatalf("the commit changing docs/: %+v", d)
	}
	want := []string{first[:7] + " poll", inside[:7] + " poll"}
	if got := history(t, ta, p); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("deployments %v, want %v: %s changes no watched path", got, want, outside[:7])
	}
}

// TestPolledHeadMovedBackAfterAChosenCommit deploys B over A by polling, then A by hand: the
// branch force-pushed to A deploys nothing (A is live), and pushed back to B deploys B again, as
// the same pushes through a webhook would.
func TestPolledHeadMovedBackAfterAChosenCommit(t *testing.T) {
	t.Parallel()
	clock := clocktest.New(time.Now())
	cfg := agenttest.Config(t)
	ta := agenttest.StartWith(t, cfg, agenttest.Options{Prepare: func(a *agent.Agent) { a.SetClock(clock) }})
	repo := gittest.New(t)
	a := repo.Commit("first", map[string]string{"index.html": "a"})
	var p api.Project
	ta.Call(t, "POST", api.PathProjects, api.ProjectCreate{Name: "laptop", RepoURL: "file://" + repo.Dir, TriggerSettings: api.TriggerSettings{Trigger: ptr(api.ProjectTriggerPoll)}},
		http.StatusCreated, &p)
	deploymentOf(t, ta, p, a)
	b := repo.Commit("second", map[string]string{"index.html": "b"})
	clock.Advance(90 * time.Second)
	deploymentOf(t, ta, p, b)
	var chosen api.Deployment
	ta.Call(t, "POST", api.PathProjects+"/"+p.Slug+"/deploy", api.DeployRequest{CommitSHA: a}, http.StatusCreated, &chosen)
	ta.Wait(t, chosen.ID)

	repo.Git("reset", "--hard", "--quiet", a)
	clock.Advance(90 * time.Second)
	waitForPoll(t, ta, clock.Now().Add(-time.Second))
	repo.Git("reset", "--hard", "--quiet", b)
	clock.Advance(90 * time.Second)
	waitForPoll(t, ta, clock.Now().Add(-time.Second))
	want := []string{a[:7] + " poll", b[:7] + " poll", a[:7] + " manual", b[:7] + " poll"}
	for deadline := time.Now().Add(10 * time.Second); fmt.Sprint(history(t, ta, p)) != fmt.Sprint(want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("deployments %v, want %v", history(t, ta, p), want)
		}
	}
	var list []api.Deployment
	ta.Call(t, "GET", fmt.Sprintf("%s?project_id=%d&limit=1", api.PathDeployments, p.ID), nil, http.StatusOK, &list)
	if d := ta.Wait(t, list[0].ID); !d.Live {
		t.Fatalf("b deployed again: %+v", d)
	}
	if _, body := ta.Site(t, p.Slug, "/"); body != "b" {
		t.Errorf("the site serves %q, want b's", body)
	}
}

// importPolled starts an agent on a fake clock, building paused, against a fake GitHub serving
// acme/site (configure, when set, changes the configuration first), and imports the repository
// with trigger poll and no webhook.
func importPolled(t *testing.T, configure func(*config.Config)) (*agenttest.Agent, *clocktest.Fake, *githubtest.Server, api.Project) {
	t.Helper()
	clock := clocktest.New(time.Now())
	gh := githubtest.New(t, ghToken)
	gh.AddRepo(siteRepo())
	cfg := agenttest.Config(t)
	cfg.GitHub.APIURL, cfg.GitHub.Token, cfg.PublicURL = gh.URL, ghToken, publicURL
	cfg.Build.Concurrency = 0
	if configure != nil {
		configure(cfg)
	}
	ta := agenttest.StartWith(t, cfg, agenttest.Options{Prepare: func(a *agent.Agent) { a.SetClock(clock) }})
	code, res, raw := importRepo(t, ta, "acme/site", api.ImportRequest{NoWebhook: true,
		TriggerSettings: api.TriggerSettings{Trigger: ptr(api.ProjectTriggerPoll)}})
	if code != http.StatusCreated {
		t.Fatalf("import = %d %s", code, raw)
	}
	return ta, clock, gh, res.Project
}
