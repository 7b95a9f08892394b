package agent_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/github/githubtest"
	"github.com/miaobu/miaobu/internal/gittest"
	"github.com/miaobu/miaobu/internal/store"
)

// deliverEvent delivers body as a signed event to p's webhook and returns the agent's answer.
func deliverEvent(t *testing.T, ta *agenttest.Agent, p api.Project, event string, body []byte) (int, api.WebhookAnswer) {
	t.Helper()
	code, got := ta.Deliver(t, strconv.FormatInt(p.ID, 10), agenttest.Delivery{Event: event, Body: body,
		Secret: p.WebhookSecret, GUID: strconv.FormatInt(time.Now().UnixNano(), 10)})
	raw, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var answer api.WebhookAnswer
	if err := json.Unmarshal(raw, &answer); err != nil {
		t.Fatal(err)
	}
	return code, answer
}

// deploymentPayload is the real deployment event fixture changed to deploy sha to environment in
// acme/site, made by miaobu when fromMiaobu.
func deploymentPayload(t *testing.T, id int64, sha, environment string, fromMiaobu bool) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(fixture(t, "deployment.payload.json"), &p); err != nil {
		t.Fatal(err)
	}
	d := p["deployment"].(map[string]any)
	d["id"], d["sha"], d["ref"], d["environment"] = id, sha, "main", environment
	p["repository"].(map[string]any)["full_name"] = "acme/site"
	if fromMiaobu {
		d["payload"] = map[string]any{"miaobu": map[string]any{"deployment_id": 1}}
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitGitHub fails the test unless cond holds for what the fake GitHub received within 20 seconds.
func waitGitHub(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("GitHub never received %s", what)
		}
	}
}

// githubDeployment returns the deployment with id on the fake, and whether it has one.
func githubDeployment(gh *githubtest.Server, id int64) (githubtest.Deployment, bool) {
	all := gh.Deployments("acme/site")
	i := slices.IndexFunc(all, func(d githubtest.Deployment) bool { return d.ID == id })
	if i < 0 {
		return githubtest.Deployment{}, false
	}
	return all[i], true
}

// TestReportsAndDeploymentEvents imports a repository and builds it for real: GitHub gets the
// commit statuses and Deployments of each build; a deployment made on GitHub of a commit built
// before puts it live without a build, and one of a commit never built builds it and reports to
// that deployment.
func TestReportsAndDeploymentEvents(t *testing.T) {
	t.Parallel()
	repo := gittest.New(t)
	first := repo.Commit("first", map[string]string{"index.html": "version one"})
	gh := githubtest.New(t, ghToken)
	gh.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main", Branches: map[string]string{"main": first},
		Files: map[string]string{"index.html": "version one"}, CloneURL: repo.Dir})
	cfg := agenttest.Config(t)
	cfg.GitHub = config.GitHub{APIURL: gh.URL, Token: ghToken, Statuses: true, Deployments: true}
	ta := agenttest.Start(t, cfg)
	var imported api.ImportResult
	ta.Call(t, "POST", api.ImportPath("acme", "site"), api.ImportRequest{}, http.StatusCreated, &imported)
	p := imported.Project
	hook := api.Project{ID: p.ID, DefaultBranch: "main", WebhookSecret: gh.Hooks("acme/site")[0].Secret}
	ta.Deployed(t, imported.Deployment.ID)
	siteURL := fmt.Sprintf("http://site.localhost:%s/", port(ta))

	waitGitHub(t, "the success of deployment 1", func() bool {
		s := gh.Statuses("acme/site")
		return len(s) > 0 && s[len(s)-1].State == "success"
	})
	last := gh.Statuses("acme/site")[len(gh.Statuses("acme/site"))-1]
	if last.SHA != first || last.Context != "miaobu/site" || !strings.HasPrefix(last.Description, "Live in ") ||
		last.TargetURL != ta.Config.PublicURL+"/deployments/1" {
		t.Errorf("final commit status %+v", last)
	}
	waitGitHub(t, "the Deployment of deployment 1", func() bool {
		d := gh.Deployments("acme/site")
		return len(d) == 1 && len(d[0].Statuses) == 2
	})
	own := gh.Deployments("acme/site")[0]
	if own.Ref != first || own.Environment != "production" || own.Payload != `{"miaobu":{"deployment_id":1}}` ||
		own.Statuses[0].State != "in_progress" || own.Statuses[1].State != "success" || own.Statuses[1].EnvironmentURL != siteURL {
		t.Errorf("GitHub Deployment %+v", own)
	}

	second := repo.Commit("second", map[string]string{"index.html": "version two"})
	ta.Deployed(t, ta.Push(t, hook, second))

	// miaobu's own deployments come back as deployment events: ignored.
	code, answer := deliverEvent(t, ta, hook, "deployment", deploymentPayload(t, own.ID, first, "production", true))
	if code != http.StatusOK || answer.Status != "ignored" || answer.Message != "Deployment created by miaobu ignored" {
		t.Errorf("miaobu's own deployment event: %d %+v", code, answer)
	}
	code, answer = deliverEvent(t, ta, hook, "deployment", deploymentPayload(t, 77, first, "staging", false))
	if code != http.StatusOK || answer.Status != "ignored" || answer.Message != "Deployment to environment 'staging' ignored (only 'production' deploys)" {
		t.Errorf("a staging deployment event: %d %+v", code, answer)
	}

	// Rolling back from GitHub: the first build goes live again, nothing is built.
	rollback := gh.AddDeployment("acme/site", githubtest.Deployment{Ref: "main", Environment: "production", Payload: "{}"})
	code, answer = deliverEvent(t, ta, hook, "deployment", deploymentPayload(t, rollback, first, "production", false))
	want := api.WebhookAnswer{Status: "success", Message: "Deployment triggered for commit " + first[:7], DeploymentID: 1,
		CommitSHA: first, CommitMessage: imported.Deployment.CommitMessage, Branch: "main"}
	if code != http.StatusOK || answer != want {
		t.Fatalf("rollback deployment event: %d %+v, want %+v", code, answer, want)
	}
	if _, body := ta.Site(t, p.Slug, "/"); body != "version one" {
		t.Errorf("after the rollback from GitHub the site serves %q", body)
	}
	var history []api.Deployment
	ta.Call(t, "GET", api.PathDeployments+"?project_id=site", nil, http.StatusOK, &history)
	if len(history) != 2 || !history[1].Live {
		t.Errorf("after the rollback from GitHub: %d deployments, the first live %v; want 2 and no build", len(history), len(history) == 2 && history[1].Live)
	}
	waitGitHub(t, "the success of the rollback", func() bool {
		d, ok := githubDeployment(gh, rollback)
		return ok && len(d.Statuses) == 1
	})
	d, _ := githubDeployment(gh, rollback)
	if wantStatus := (githubtest.DeploymentStatus{State: "success", Description: "Live again: deployment #1", EnvironmentURL: siteURL,
		LogURL: ta.Config.PublicURL + "/deployments/1"}); !reflect.DeepEqual(d.Statuses, []githubtest.DeploymentStatus{wantStatus}) {
		t.Errorf("statuses of the rollback deployment %+v, want %+v", d.Statuses, wantStatus)
	}

	// A commit never built is built, and reports to the deployment made on GitHub.
	third := repo.Commit("third", map[string]string{"index.html": "version three"})
	made := gh.AddDeployment("acme/site", githubtest.Deployment{Ref: third, Environment: "production", Payload: "{}"})
	code, answer = deliverEvent(t, ta, hook, "deployment", deploymentPayload(t, made, third, "production", false))
	if code != http.StatusOK || answer.Status != "success" || answer.DeploymentID != 3 || answer.CommitSHA != third {
		t.Fatalf("deployment event of a new commit: %d %+v", code, answer)
	}
	built := ta.Deployed(t, 3)
	if built.Trigger != api.TriggerGitHubDeployment || !built.Live {
		t.Errorf("deployment 3: trigger %s live %v", built.Trigger, built.Live)
	}
	waitGitHub(t, "the statuses of the deployment made on GitHub", func() bool {
		d, ok := githubDeployment(gh, made)
		return ok && len(d.Statuses) == 2
	})
	d, _ = githubDeployment(gh, made)
	if d.Statuses[0].State != "in_progress" || d.Statuses[1].State != "success" || d.Statuses[1].EnvironmentURL != siteURL {
		t.Errorf("statuses of the deployment made on GitHub: %+v", d.Statuses)
	}
	if n := len(gh.Deployments("acme/site")); n != 4 {
		t.Errorf("GitHub has %d deployments, want 4: miaobu's two, and the two made on GitHub, with no copy", n)
	}

	// A rollback in miaobu is reported to the deployment's own GitHub Deployment.
	ta.Call(t, "POST", api.PathProjects+"/site/rollback", api.RollbackRequest{DeploymentID: 2}, http.StatusOK, nil)
	waitGitHub(t, "the success of the rollback to deployment 2", func() bool {
		d := gh.Deployments("acme/site")
		return len(d) == 4 && len(d[1].Statuses) == 3
	})
	if s := gh.Deployments("acme/site")[1]; s.Payload != `{"miaobu":{"deployment_id":2}}` || s.Statuses[2].Description != "Live again: deployment #2" {
		t.Errorf("deployment 2 on GitHub after the rollback: %+v", s)
	}

	// Replayed deployment events change nothing: neither the rollback nor the build happens again.
	for _, replay := range []struct {
		id  int64
		sha string
	}{{rollback, first}, {made, third}} {
		code, answer = deliverEvent(t, ta, hook, "deployment", deploymentPayload(t, replay.id, replay.sha, "production", false))
		want := api.WebhookAnswer{Status: "ignored", Message: fmt.Sprintf("GitHub deployment %d was already handled", replay.id)}
		if code != http.StatusOK || answer != want {
			t.Errorf("replayed deployment event %d: %d %+v, want %+v", replay.id, code, answer, want)
		}
	}
	ta.Call(t, "GET", api.PathDeployments+"?project_id=site", nil, http.StatusOK, &history)
	if len(history) != 3 || !history[1].Live {
		t.Errorf("after the replays: %d deployments, deployment 2 live %v; want 3 and deployment 2 still live", len(history), len(history) == 3 && history[1].Live)
	}
	if _, body := ta.Site(t, p.Slug, "/"); body != "version two" {
		t.Errorf("after the replays the site serves %q, want deployment 2's", body)
	}
}

// TestWebhookSetupAddsMissingEvents sets up a project whose hook predates the deployment events:
// status and project show say what it lacks, and setup PATCHes the events with the secret.
func TestWebhookSetupAddsMissingEvents(t *testing.T) {
	t.Parallel()
	ta, gh := githubAgent(t, siteRepo(), nil)
	if code, _, raw := importRepo(t, ta, "acme/site", api.ImportRequest{NoWebhook: true, NoDeploy: true}); code != http.StatusCreated {
		t.Fatalf("import = %d %s", code, raw)
	}
	old := gh.AddHook("acme/site", publicURL+"/api/v1/webhooks/github/1", "an-older-secret-of-43-characters-aaaaaaaaaa")
	if _, err := ta.Store.UpdateProject(1, func(p *store.Project) error {
		p.WebhookID, p.WebhookSecret = old, "an-older-secret-of-43-characters-aaaaaaaaaa"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var status api.Status
	ta.Call(t, "GET", api.PathStatus, nil, 0, &status)
	if got := status.Projects[0].WebhookEventsMissing; !slices.Equal(got, []string{"pull_request", "deployment"}) {
		t.Errorf("status: webhook_events_missing %q", got)
	}
	var answer api.WebhookAnswer
	if code := ta.Call(t, "POST", api.WebhookSetupPath("site"), nil, 0, &answer); code != http.StatusOK || answer.Status != "already_configured" ||
		answer.Message != "Webhook is already configured for this project; it now also sends pull_request and deployment events" {
		t.Fatalf("setup = %d %+v", code, answer)
	}
	hooks := gh.Hooks("acme/site")
	if len(hooks) != 1 || !slices.Equal(hooks[0].Events, github.HookEvents) || hooks[0].Secret != "an-older-secret-of-43-characters-aaaaaaaaaa" {
		t.Errorf("hooks on GitHub %+v", hooks)
	}
	var p api.Project
	ta.Call(t, "GET", api.PathProjects+"/site", nil, 0, &p)
	if len(p.WebhookEventsMissing) != 0 || p.WebhookEventsMissing == nil {
		t.Errorf("after setup: webhook_events_missing %q, want []", p.WebhookEventsMissing)
	}
	if code := ta.Call(t, "POST", api.WebhookSetupPath("site"), nil, 0, &answer); code != http.StatusOK || answer.Message != "Webhook is already configured for this project" {
		t.Errorf("second setup = %d %+v", code, answer)
	}
	checkRequests(t, gh, "GET /repos/acme/site", "GET /repos/acme/site/branches/main",
		"GET /repos/acme/site/hooks", fmt.Sprintf("PATCH /repos/acme/site/hooks/%d", old), "GET /repos/acme/site/hooks")
}

func TestProjectShowsWhatIsReported(t *testing.T) {
	t.Parallel()
	ta, _ := githubAgent(t, siteRepo(), func(cfg *config.Config) { cfg.GitHub.Deployments = false })
	if code, _, raw := importRepo(t, ta, "acme/site", api.ImportRequest{NoDeploy: true}); code != http.StatusCreated {
		t.Fatalf("import = %d %s", code, raw)
	}
	byHand := ta.AddProject(t, remoteProject("by-hand", "main"))
	var p api.Project
	ta.Call(t, "GET", api.PathProjects+"/site", nil, 0, &p)
	if want := (api.GitHubReports{Statuses: true, Note: "github.deployments is off"}); p.GitHubReports != want {
		t.Errorf("imported project: github_reports %+v, want %+v", p.GitHubReports, want)
	}
	ta.Call(t, "GET", api.PathProjects+"/"+byHand.Slug, nil, 0, &p)
	if want := (api.GitHubReports{Note: "added by hand, not imported from GitHub"}); p.GitHubReports != want {
		t.Errorf("project added by hand: github_reports %+v, want %+v", p.GitHubReports, want)
	}
}

// TestReportSentAfterKill kills the agent after a build is recorded deployed but before GitHub,
// down at the time, got its status: the next start sends it.
func TestReportSentAfterKill(t *testing.T) {
	// Not parallel: it restarts the agent on the same port.
	if testing.Short() {
		t.Skip("starts agent processes")
	}
	repo := gittest.New(t)
	sha := repo.Commit("site", map[string]string{"index.html": "hello"})
	down := githubtest.New(t, ghToken)
	down.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main"})
	down.Outage(http.StatusServiceUnavailable)

	data, addr := t.TempDir(), freeAddr(t)
	st, err := store.Open(data, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	project := &store.Project{Name: "site", Slug: "site", Repo: "acme/site", RepoURL: repo.Dir, DefaultBranch: "main", Target: "local",
		WebhookSecret: "kill-secret", WebhookID: 9}
	if err := st.CreateProject(project); err != nil {
		t.Fatal(err)
	}
	st.Close()

	env := []string{"MIAOBU_GITHUB_TOKEN=" + ghToken}
	proc := startAgentProcess(t, data, addr, append(env, "MIAOBU_GITHUB_API_URL="+down.URL)...)
	ta := proc.client()
	id := ta.Push(t, api.Project{ID: project.ID, DefaultBranch: "main", WebhookSecret: "kill-secret"}, sha)
	ta.Deployed(t, id)
	if err := proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = proc.cmd.Wait()
	if s, d := down.Statuses("acme/site"), down.Deployments("acme/site"); len(s) != 0 || len(d) != 0 {
		t.Fatalf("GitHub was down but recorded %+v %+v", s, d)
	}

	up := githubtest.New(t, ghToken)
	up.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main"})
	restarted := startAgentProcess(t, data, addr, append(env, "MIAOBU_GITHUB_API_URL="+up.URL)...)
	defer func() {
		_ = restarted.cmd.Process.Signal(syscall.SIGTERM)
		_ = restarted.cmd.Wait()
	}()
	waitGitHub(t, "the final status after the restart", func() bool {
		d := up.Deployments("acme/site")
		return len(up.Statuses("acme/site")) == 1 && len(d) == 1 && len(d[0].Statuses) == 2
	})
	s := up.Statuses("acme/site")[0]
	if s.SHA != sha || s.State != "success" || !strings.HasPrefix(s.Description, "Live in ") {
		t.Errorf("commit status after the restart %+v, want the success alone (the pending ones are outdated)", s)
	}
	if d := up.Deployments("acme/site")[0]; d.Statuses[0].State != "in_progress" || d.Statuses[1].State != "success" {
		t.Errorf("Deployment after the restart %+v", d)
	}
	if b, err := os.ReadFile(proc.cmd.Stdout.(*os.File).Name()); err == nil && strings.Contains(string(b), ghToken) {
		t.Error("the agent's log shows the GitHub token")
	}
}

// queuedGitHubAgent imports acme/site from a fake GitHub into an agent that records deployments
// but builds none (build.concurrency 0) and sends its reports, and returns the project with its
// hook's secret.
func queuedGitHubAgent(t *testing.T) (*agenttest.Agent, *githubtest.Server, api.Project) {
	t.Helper()
	gh := githubtest.New(t, ghToken)
	gh.AddRepo(siteRepo())
	cfg := agenttest.Config(t)
	cfg.GitHub.APIURL, cfg.GitHub.Token, cfg.PublicURL = gh.URL, ghToken, publicURL
	cfg.Build.Concurrency = 0
	ta := agenttest.Start(t, cfg)
	code, imported, raw := importRepo(t, ta, "acme/site", api.ImportRequest{NoDeploy: true})
	if code != http.StatusCreated {
		t.Fatalf("import = %d %s", code, raw)
	}
	return ta, gh, api.Project{ID: imported.Project.ID, DefaultBranch: "main", WebhookSecret: gh.Hooks("acme/site")[0].Secret}
}

// TestConcurrentDeploymentEventsBuildOnce delivers ten deployment events, made on GitHub at once,
// of a commit never built: one deployment is created, the others are skipped as duplicates of it,
// as pushes are, and their GitHub deployments are told which deployment is under way.
func TestConcurrentDeploymentEventsBuildOnce(t *testing.T) {
	t.Parallel()
	ta, gh, hook := queuedGitHubAgent(t)
	ids := make([]int64, 10)
	for i := range ids {
		ids[i] = gh.AddDeployment("acme/site", githubtest.Deployment{Ref: otherSHA, Environment: "production", Payload: "{}"})
	}
	answers := make([]api.WebhookAnswer, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			code, answer := deliverEvent(t, ta, hook, "deployment", deploymentPayload(t, id, otherSHA, "production", false))
			if code != http.StatusOK {
				t.Errorf("deployment event %d: %d %+v", id, code, answer)
			}
			answers[i] = answer
		})
	}
	wg.Wait()
	var history []api.Deployment
	ta.Call(t, "GET", api.PathDeployments+"?project_id=site", nil, http.StatusOK, &history)
	if len(history) != 1 {
		t.Fatalf("%d deployments of the commit, want 1: %+v", len(history), history)
	}
	built, skipped := 0, 0
	for _, a := range answers {
		switch {
		case a.Status == "success" && a.DeploymentID == history[0].ID:
			built++
		case a.Status == "skipped" && a.DeploymentID == history[0].ID && a.Message == "Deployment for commit "+otherSHA[:7]+" already exists":
			skipped++
		default:
			t.Errorf("answer %+v", a)
		}
	}
	if built != 1 || skipped != 9 {
		t.Errorf("%d answers triggered a deployment and %d were skipped, want 1 and 9", built, skipped)
	}
	want := []githubtest.DeploymentStatus{{State: "inactive", Description: fmt.Sprintf("Already deploying this commit: deployment #%d", history[0].ID),
		LogURL: fmt.Sprintf("%s/deployments/%d", publicURL, history[0].ID)}}
	waitGitHub(t, "the statuses of the nine duplicates", func() bool {
		n := 0
		for _, d := range gh.Deployments("acme/site") {
			if reflect.DeepEqual(d.Statuses, want) {
				n++
			}
		}
		return n == 9
	})
}

// TestDeploymentEventsNotActedOn delivers deployment events of another repository, and with
// another action than created: each is ignored, with a message that says why, and changes nothing.
func TestDeploymentEventsNotActedOn(t *testing.T) {
	t.Parallel()
	ta, gh, hook := queuedGitHubAgent(t)
	id := gh.AddDeployment("acme/site", githubtest.Deployment{Ref: otherSHA, Environment: "production", Payload: "{}"})
	for _, tc := range []struct {
		name    string
		edit    func(p map[string]any)
		message string
	}{
		{"another repository", func(p map[string]any) { p["repository"].(map[string]any)["full_name"] = "mallory/site" },
			"Deployment in repository 'mallory/site' ignored (this project deploys 'acme/site')"},
		{"another action", func(p map[string]any) { p["action"] = "deleted" },
			"Deployment action 'deleted' ignored (only 'created' deploys)"},
		{"no action", func(p map[string]any) { delete(p, "action") },
			"Deployment action '' ignored (only 'created' deploys)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p map[string]any
			if err := json.Unmarshal(deploymentPayload(t, id, otherSHA, "production", false), &p); err != nil {
				t.Fatal(err)
			}
			tc.edit(p)
			body, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			code, answer := deliverEvent(t, ta, hook, "deployment", body)
			if want := (api.WebhookAnswer{Status: "ignored", Message: tc.message}); code != http.StatusOK || answer != want {
				t.Errorf("answer %d %+v, want 200 %+v", code, answer, want)
			}
		})
	}
	var history []api.Deployment
	ta.Call(t, "GET", api.PathDeployments+"?project_id=site", nil, http.StatusOK, &history)
	if handled, err := ta.Store.HandledGitHubDeployment(1, id); len(history) != 0 || err != nil || handled {
		t.Errorf("after the ignored events: deployments %+v, GitHub deployment handled %v (%v)", history, handled, err)
	}
}

// TestRefusedReportsSentAfterWebhookSetup refuses the first commit status with 403: the reports of
// the project wait, and `webhook setup` (after the token got its permission) sends them.
func TestRefusedReportsSentAfterWebhookSetup(t *testing.T) {
	t.Parallel()
	ta, gh, hook := queuedGitHubAgent(t)
	gh.Fail("POST /repos/acme/site/statuses/"+otherSHA, http.StatusForbidden, "Resource not accessible by personal access token")
	first := ta.Push(t, hook, otherSHA)
	waitGitHub(t, "the refused commit status", func() bool {
		return slices.Contains(gh.Requests(), "POST /repos/acme/site/statuses/"+otherSHA)
	})
	// The agent records the pause just after GitHub's refusal reaches it.
	waitGitHub(t, "the project showing commit statuses paused", func() bool {
		var p api.Project
		ta.Call(t, "GET", api.PathProjects+"/site", nil, http.StatusOK, &p)
		return !p.GitHubReports.Statuses && strings.Contains(p.GitHubReports.Note, "commit statuses paused")
	})
	if got := gh.Statuses("acme/site"); len(got) != 0 {
		t.Fatalf("commit statuses %+v before the setup", got)
	}
	ta.Call(t, "POST", api.WebhookSetupPath("site"), nil, http.StatusOK, nil)
	want := githubtest.Status{SHA: otherSHA, State: "pending", Description: "Queued",
		TargetURL: fmt.Sprintf("%s/deployments/%d", publicURL, first), Context: "miaobu/site"}
	waitGitHub(t, "the held commit status", func() bool {
		got := gh.Statuses("acme/site")
		return len(got) == 1 && got[0] == want
	})
}
