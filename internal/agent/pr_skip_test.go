package agent_test

import (
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/github/githubtest"
	"github.com/miaobu/miaobu/internal/gittest"
)

// prUpdate is GitHub's payload of pull request n of the project's own repository moving from
// before to head, with action.
func prUpdate(t *testing.T, action string, n int, before, head string) []byte {
	t.Helper()
	return githubtest.Payload(t, "pull_request.synchronize.json", func(doc map[string]any) {
		doc["action"], doc["number"], doc["before"], doc["after"] = action, n, before, head
		pr := doc["pull_request"].(map[string]any)
		pr["number"] = n
		pr["head"].(map[string]any)["sha"] = head
	})
}

// deliverPR delivers a pull_request event to p and returns the deployment its success queued.
func deliverPR(t *testing.T, ta *agenttest.Agent, p api.Project, body []byte) int64 {
	t.Helper()
	code, answer := ta.Deliver(t, strconv.FormatInt(p.ID, 10), agenttest.Delivery{Event: "pull_request", Body: body, Secret: p.WebhookSecret,
		GUID: strconv.FormatInt(time.Now().UnixNano(), 10)})
	id, _ := answer["deployment_id"].(float64)
	if code != http.StatusOK || answer["status"] != "success" || id == 0 {
		t.Fatalf("pull_request: %d %v", code, answer)
	}
	return int64(id)
}

// skippedForMarker fails unless deployment d was cancelled for a [skip ci] in its commit's message,
// which the build read from the clone.
func skippedForMarker(t *testing.T, ta *agenttest.Agent, d api.Deployment, message string) {
	t.Helper()
	if d.Status != api.StatusCancelled || d.ErrorMessage != "Skipped: commit message contains [skip ci]" || d.CommitMessage != message || d.Live {
		t.Fatalf("deployment %+v\n%s", d, ta.Log(t, d.ID))
	}
	if log := ta.Log(t, d.ID); !strings.Contains(log, "==> Skipped: commit message contains [skip ci]") || strings.Contains(log, "==> Publishing") {
		t.Errorf("build log:\n%s", log)
	}
}

// TestPullRequestSkipMarkerReadFromTheClone: for a project added by hand (no GitHub API), a pull
// request update whose head commit's message has a skip marker is recorded, then cancelled by its
// build once the clone tells the message; the preview keeps its live deployment.
func TestPullRequestSkipMarkerReadFromTheClone(t *testing.T) {
	t.Parallel()
	repo := gittest.New(t)
	first := repo.Commit("First version", map[string]string{"index.html": "one"})
	ta := agenttest.Start(t, agenttest.Config(t))
	p := ta.AddProject(t, localProject("site", repo.Dir))
	live := ta.Deployed(t, deliverPR(t, ta, p, prUpdate(t, "opened", 3, zeroSHA, first)))

	second := repo.Commit("Reword the greeting [skip ci]", map[string]string{"index.html": "two"})
	skipped := ta.Wait(t, deliverPR(t, ta, p, prUpdate(t, "synchronize", 3, first, second)))
	skippedForMarker(t, ta, skipped, "Reword the greeting [skip ci]")
	if pv := previewOf(t, ta, "pr-3"); pv.DeploymentID == nil || *pv.DeploymentID != live.ID || pv.HeadSHA != second {
		t.Errorf("preview %+v", pv)
	}
	if _, body := ta.Site(t, "site--pr-3", "/"); body != "one" {
		t.Errorf("pr-3 serves %q", body)
	}
}

// importedSite starts an agent with a fake GitHub serving acme/site, cloned from repo, whose tip
// first it imports and deploys; it returns the project as a webhook sender knows it.
func importedSite(t *testing.T, repo *gittest.Repo, first string) (*agenttest.Agent, *githubtest.Server, api.Project) {
	t.Helper()
	gh := githubtest.New(t, ghToken)
	gh.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main", Branches: map[string]string{"main": first},
		Files: map[string]string{"index.html": "one"}, CloneURL: repo.Dir})
	cfg := agenttest.Config(t)
	cfg.GitHub = config.GitHub{APIURL: gh.URL, Token: ghToken, Statuses: true, Deployments: true}
	ta := agenttest.Start(t, cfg)
	var imported api.ImportResult
	ta.Call(t, "POST", api.ImportPath("acme", "site"), api.ImportRequest{}, http.StatusCreated, &imported)
	ta.Deployed(t, imported.Deployment.ID)
	return ta, gh, api.Project{ID: imported.Project.ID, DefaultBranch: "main", WebhookSecret: gh.Hooks("acme/site")[0].Secret}
}

// skippedOnGitHub fails unless GitHub heard that commit sha was skipped for a [skip ci]: a successful
// "Skipped" commit status.
func skippedOnGitHub(t *testing.T, gh *githubtest.Server, sha string) {
	t.Helper()
	waitGitHub(t, "the skipped status", func() bool {
		return slices.ContainsFunc(gh.Statuses("acme/site"), func(s githubtest.Status) bool {
			return s.SHA == sha && s.State == "success" && s.Description == "Skipped: commit message contains [skip ci]"
		})
	})
}

// TestPullRequestSkipMarkerAnsweredByTheWebhook: a pull request update of a GitHub project whose
// head commit's message, read from GitHub, has a skip marker is answered ignored at once, like a
// push, records no deployment, and gives the commit a successful "Skipped" status.
func TestPullRequestSkipMarkerAnsweredByTheWebhook(t *testing.T) {
	t.Parallel()
	repo := gittest.New(t)
	first := repo.Commit("First version", map[string]string{"index.html": "one"})
	ta, gh, hook := importedSite(t, repo, first)
	before := deploymentCount(t, ta)

	second := repo.Commit("Try a new layout [skip ci]", map[string]string{"index.html": "two"})
	gh.SetMessage("acme/site", second, "Try a new layout [skip ci]")
	code, answer := ta.Deliver(t, strconv.FormatInt(hook.ID, 10), agenttest.Delivery{Event: "pull_request",
		Body: prUpdate(t, "opened", 4, zeroSHA, second), Secret: hook.WebhookSecret, GUID: "pr-4-opened"})
	want := map[string]any{"status": "ignored", "message": "Skipped: commit message contains [skip ci]"}
	if code != http.StatusOK || !reflect.DeepEqual(answer, want) {
		t.Fatalf("pull_request: %d %v, want 200 %v", code, answer, want)
	}
	if !slices.Contains(gh.Requests(), "GET /repos/acme/site/commits/"+second) {
		t.Errorf("the webhook did not ask GitHub for the head commit: %q", gh.Requests())
	}
	if n := deploymentCount(t, ta); n != before {
		t.Errorf("%d deployments after the skipped update, want %d", n, before)
	}
	skippedOnGitHub(t, gh, second)
	var previews []api.Preview
	ta.Call(t, "GET", api.PreviewsPath("site"), nil, 0, &previews)
	if len(previews) != 0 {
		t.Errorf("previews %+v", previews)
	}
}

// TestPullRequestHeadCommitUnknownBuildReadsMarker: when GitHub fails to tell a pull request's head
// commit, the webhook records the update anyway; its build finds the skip marker in the clone and
// cancels the deployment, which GitHub hears of as a successful "Skipped" status, an inactive
// Deployment and the sticky comment.
func TestPullRequestHeadCommitUnknownBuildReadsMarker(t *testing.T) {
	t.Parallel()
	repo := gittest.New(t)
	first := repo.Commit("First version", map[string]string{"index.html": "one"})
	ta, gh, hook := importedSite(t, repo, first)

	second := repo.Commit("Try a new layout [skip ci]", map[string]string{"index.html": "two"})
	gh.SetMessage("acme/site", second, "Try a new layout [skip ci]")
	gh.Fail("GET /repos/acme/site/commits/"+second, http.StatusInternalServerError, "Server Error")
	id := deliverPR(t, ta, hook, prUpdate(t, "opened", 4, zeroSHA, second))
	skippedForMarker(t, ta, ta.Wait(t, id), "Try a new layout [skip ci]")

	skippedOnGitHub(t, gh, second)
	waitGitHub(t, "the inactive Deployment", func() bool {
		return slices.ContainsFunc(gh.Deployments("acme/site"), func(d githubtest.Deployment) bool {
			return d.Ref == second && len(d.Statuses) > 0 && d.Statuses[len(d.Statuses)-1].State == "inactive"
		})
	})
	waitGitHub(t, "the sticky comment saying skipped", func() bool {
		comments := gh.Comments("acme/site")
		return len(comments) == 1 && strings.Contains(comments[0].Body, "Skipped: commit message contains [skip ci]")
	})
	if slices.ContainsFunc(gh.Statuses("acme/site"), func(s githubtest.Status) bool { return s.SHA == second && s.State == "error" }) {
		t.Errorf("GitHub heard of a cancellation: %+v", gh.Statuses("acme/site"))
	}
}
