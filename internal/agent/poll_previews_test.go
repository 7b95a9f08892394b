package agent_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent"
	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/clock/clocktest"
	"github.com/miaobu/miaobu/internal/github/githubtest"
	"github.com/miaobu/miaobu/internal/gittest"
)

// TestPolledPreviewBranchGetsPreview polls a local repository whose project previews feature/*: a
// commit on feature/login deploys its preview, as a push would, and production stays as it was.
func TestPolledPreviewBranchGetsPreview(t *testing.T) {
	t.Parallel()
	clock := clocktest.New(time.Now())
	ta := agenttest.StartWith(t, agenttest.Config(t), agenttest.Options{Prepare: func(a *agent.Agent) { a.SetClock(clock) }})
	repo := gittest.New(t)
	first := repo.Commit("first", map[string]string{"index.html": "production"})
	var p api.Project
	ta.Call(t, "POST", api.PathProjects, api.ProjectCreate{Name: "laptop", RepoURL: "file://" + repo.Dir, TriggerSettings: api.TriggerSettings{
		Trigger: ptr(api.ProjectTriggerPoll), PreviewBranches: &[]string{"feature/*"}}}, http.StatusCreated, &p)
	deploymentOf(t, ta, p, first)

	repo.Git("checkout", "--quiet", "-b", "feature/login")
	login := repo.Commit("Add the login page", map[string]string{"index.html": "login"})
	repo.Git("checkout", "--quiet", "-b", "experiment")
	repo.Commit("Try something", map[string]string{"index.html": "experiment"})
	repo.Git("checkout", "--quiet", "main")
	clock.Advance(90 * time.Second)
	d := deploymentOf(t, ta, p, login)
	if d.Status != api.StatusDeployed || d.Trigger != api.TriggerPoll || d.Environment != "preview" || d.Alias != "git-feature-login" {
		t.Fatalf("the preview branch's head: %+v\n%s", d, ta.Log(t, d.ID))
	}
	if _, body := ta.Site(t, p.Slug+"--git-feature-login", "/"); body != "login" {
		t.Errorf("the preview serves %q", body)
	}
	if _, body := ta.Site(t, p.Slug, "/"); body != "production" {
		t.Errorf("production serves %q", body)
	}
	clock.Advance(90 * time.Second)
	waitForPoll(t, ta, clock.Now().Add(-time.Second))
	want := []string{first[:7] + " poll", login[:7] + " poll"}
	if got := history(t, ta, p); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("deployments %v, want %v: experiment is no preview branch, and an unchanged head deploys once", got, want)
	}

	// The branch deleted, its preview is taken down as the deletion's webhook would.
	repo.Git("branch", "-D", "feature/login")
	clock.Advance(90 * time.Second)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var previews []api.Preview
		ta.Call(t, "GET", api.PreviewsPath(p.Slug), nil, http.StatusOK, &previews)
		if len(previews) == 1 && previews[0].RemovedAt != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("previews after the branch's deletion: %+v", previews)
		}
	}
	if resp, _ := ta.Site(t, p.Slug+"--git-feature-login", "/"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the deleted branch's preview answers %d", resp.StatusCode)
	}
	if _, body := ta.Site(t, p.Slug, "/"); body != "production" {
		t.Errorf("production serves %q", body)
	}
}

// waitForPoll waits until the first polled project's last successful check is after since, by the
// agent's clock.
func waitForPoll(t *testing.T, ta *agenttest.Agent, since time.Time) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var status api.Status
		ta.Call(t, "GET", api.PathStatus, nil, http.StatusOK, &status)
		if at := status.Projects[0].LastPollAt; at != nil && at.After(since) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no check after %s: %+v", since, status.Projects[0])
		}
	}
}

// TestPolledPullRequestPreviews polls a GitHub project: an open pull request in the listing gets
// its preview, a listing GitHub answers 304 costs no deployment, and a pull request gone from the
// listing has its preview removed, as its closed event would.
func TestPolledPullRequestPreviews(t *testing.T) {
	t.Parallel()
	ta, clock, gh, p := importPolled(t, nil)
	// The import's own check comes first, so that the next one is a whole interval away.
	waitForPoll(t, ta, time.Time{})
	head, forkHead := strings.Repeat("c", 40), strings.Repeat("d", 40)
	gh.SetPulls("acme/site", []githubtest.Pull{{Number: 12, HeadSHA: head, HeadRef: "feature/x"},
		{Number: 13, HeadSHA: forkHead, HeadRef: "patch-1", HeadRepo: "someone/site"}})
	clock.Advance(70 * time.Second)
	d := queuedOf(t, ta, p, head)
	if d.Trigger != api.TriggerPoll || d.Alias != "pr-12" || d.PullRequest == nil || *d.PullRequest != 12 || d.CommitMessage != "Tip of feature/x" {
		t.Fatalf("the pull request's head: %+v", d)
	}
	// A fork's head waits for an approval (fork_previews approve), as its opened event would.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		pv, err := ta.Store.Preview(p.ID, "pr-13")
		if err == nil && pv.HeadSHA == forkHead && pv.Fork && pv.ApprovedSHA == "" && pv.ActiveDeploymentID == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fork's preview %+v, %v: want its head held for approval", pv, err)
		}
	}
	// The check ends after the fork's head is held; the next is then a whole interval away.
	waitForPoll(t, ta, clock.Now().Add(-time.Second))

	listings := func() (answers []int) {
		for _, a := range gh.Answers() {
			if a.Request == "GET /repos/acme/site/pulls" {
				answers = append(answers, a.Status)
			}
		}
		return answers
	}
	before := len(listings())
	clock.Advance(70 * time.Second)
	waitForPoll(t, ta, clock.Now().Add(-time.Second))
	if got := listings()[before:]; len(got) != 1 || got[0] != http.StatusNotModified {
		t.Errorf("the next listing was answered %v, want one 304", got)
	}
	if got := history(t, ta, p); len(got) != 2 {
		t.Errorf("deployments %v after an unchanged listing, want the import's and the same-repository preview's", got)
	}

	gh.SetPulls("acme/site", nil)
	clock.Advance(70 * time.Second)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		pv, err := ta.Store.Preview(p.ID, "pr-12")
		if err != nil {
			t.Fatal(err)
		}
		if pv.Removed() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the closed pull request's preview is still up: %+v", pv)
		}
	}
	var list []api.Deployment
	ta.Call(t, "GET", api.PathDeployments+"?project_id="+strconv.FormatInt(p.ID, 10), nil, http.StatusOK, &list)
	if list[0].ID != d.ID || list[0].Status != api.StatusCancelled {
		t.Errorf("the preview's queued deployment after the pull request closed: %+v", list[0])
	}
}

// TestPreviewPushedWhileStoppedDeploysAtStart stops the agent, commits to a preview branch whose
// preview is up, and starts it again: reconciliation deploys the branch's new head.
func TestPreviewPushedWhileStoppedDeploysAtStart(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	onData := func() *agenttest.Agent {
		cfg := agenttest.Config(t)
		cfg.DataDir = data
		return agenttest.Start(t, cfg)
	}
	ta := onData()
	repo := gittest.New(t)
	repo.Commit("first", map[string]string{"index.html": "production"})
	create := localProject("site", repo.Dir)
	create.TriggerSettings.PreviewBranches = &[]string{"feature/*"}
	p := ta.AddProject(t, create)
	repo.Git("checkout", "--quiet", "-b", "feature/login")
	login := repo.Commit("Add the login page", map[string]string{"index.html": "login"})
	status, answer := ta.Deliver(t, strconv.FormatInt(p.ID, 10), agenttest.Delivery{Event: "push",
		Body: pushPayload(t, "feature/login", login), Secret: p.WebhookSecret})
	if status != http.StatusOK || answer["status"] != "success" {
		t.Fatalf("push to the preview branch: %d %v", status, answer)
	}
	ta.Deployed(t, int64(answer["deployment_id"].(float64)))
	if err := ta.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := ta.Store.Close(); err != nil {
		t.Fatal(err)
	}

	second := repo.Commit("Style the login page", map[string]string{"index.html": "styled login"})
	ta = onData()
	d := deploymentOf(t, ta, p, second)
	if d.Status != api.StatusDeployed || d.Trigger != api.TriggerReconcile || d.Alias != "git-feature-login" {
		t.Fatalf("after the restart: %+v\n%s", d, ta.Log(t, d.ID))
	}
	if _, body := ta.Site(t, p.Slug+"--git-feature-login", "/"); body != "styled login" {
		t.Errorf("the preview serves %q", body)
	}
}
