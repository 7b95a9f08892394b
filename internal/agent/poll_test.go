package agent

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/clock/clocktest"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/gittest"
)

// deploymentOf waits until project p has a deployment of commit sha and returns it once it has ended.
func (ta *testAgent) deploymentOf(p api.Project, sha string) api.Deployment {
	ta.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var list []api.Deployment
		ta.call("GET", fmt.Sprintf("%s?project_id=%d&limit=100", api.PathDeployments, p.ID), nil, http.StatusOK, &list)
		for _, d := range list {
			if d.CommitSHA == sha {
				return ta.wait(d.ID)
			}
		}
		if time.Now().After(deadline) {
			ta.t.Fatalf("no deployment of %s: %+v", sha[:7], list)
		}
	}
}

// history returns the commits of project p's deployments, oldest first, with their triggers.
func (ta *testAgent) history(p api.Project) []string {
	ta.t.Helper()
	var list []api.Deployment
	ta.call("GET", fmt.Sprintf("%s?project_id=%d&limit=100", api.PathDeployments, p.ID), nil, http.StatusOK, &list)
	var out []string
	for i := len(list) - 1; i >= 0; i-- {
		out = append(out, list[i].CommitSHA[:7]+" "+list[i].Trigger)
	}
	return out
}

func TestPolledProjectDeploysWithoutWebhook(t *testing.T) {
	clock := clocktest.New(time.Now())
	ta := startAgentWith(t, func(cfg *config.Config) { cfg.Poll.Interval = time.Minute }, func(a *Agent) { a.clock = clock })
	repo := gittest.New(t)
	first := repo.Commit("first", map[string]string{"index.html": "version one"})
	var p api.Project
	ta.call("POST", api.PathProjects, api.ProjectCreate{Name: "laptop", RepoURL: "file://" + repo.Dir, TriggerSettings: api.TriggerSettings{Trigger: ptr(api.ProjectTriggerPoll)}},
		http.StatusCreated, &p)
	if p.Trigger != api.ProjectTriggerPoll || p.DefaultBranch != "main" {
		t.Fatalf("created %+v", p)
	}
	// The first check deploys the head, as no deployment of it exists.
	if d := ta.deploymentOf(p, first); d.Status != api.StatusDeployed || d.Trigger != api.TriggerPoll || d.CommitMessage != "first" {
		t.Fatalf("first check: %+v\n%s", d, ta.log(d.ID))
	}
	second := repo.Commit("second", map[string]string{"index.html": "version two"})
	clock.Advance(90 * time.Second)
	if d := ta.deploymentOf(p, second); d.Status != api.StatusDeployed || d.Trigger != api.TriggerPoll || !d.Live {
		t.Fatalf("after a commit: %+v\n%s", d, ta.log(d.ID))
	}
	if _, body := ta.get(p.Slug, "/"); body != "version two" {
		t.Errorf("the site serves %q", body)
	}

	var status api.Status
	ta.call("GET", api.PathStatus, nil, http.StatusOK, &status)
	ps := status.Projects[0]
	if ps.Trigger != api.ProjectTriggerPoll || ps.LastPollAt == nil || ps.LastPollError != nil || ps.NextPollAt == nil ||
		!ps.NextPollAt.After(*ps.LastPollAt) || ps.LastPollAt.Before(clock.Now().Add(-time.Minute)) {
		t.Errorf("status of the polled project: %+v", ps)
	}
	assertMetrics(t, ta, `miaobu_polls_total{result="changed"} 2`, `miaobu_polls_total{result="error"} 0`)

	// A project switched back to webhooks is no longer polled.
	ta.call("PATCH", api.PathProjects+"/"+p.Slug, api.ProjectUpdate{TriggerSettings: api.TriggerSettings{Trigger: ptr(api.ProjectTriggerWebhook)}}, http.StatusOK, &p)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ta.call("GET", api.PathStatus, nil, http.StatusOK, &status)
		if ps := status.Projects[0]; ps.Trigger == api.ProjectTriggerWebhook && ps.NextPollAt == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status of a project switched to webhooks: %+v", status.Projects[0])
		}
	}
}

func TestPollTriggerIsValidated(t *testing.T) {
	ta := startAgent(t, nil)
	repo := gittest.New(t)
	ta.call("POST", api.PathProjects, api.ProjectCreate{Name: "x", RepoURL: repo.Dir, Branch: "main", TriggerSettings: api.TriggerSettings{Trigger: ptr("cron")}}, http.StatusBadRequest, nil)
	p := ta.addProject("site", repo.Dir)
	if p.Trigger != api.ProjectTriggerWebhook {
		t.Errorf("default trigger %q", p.Trigger)
	}
	ta.call("PATCH", api.PathProjects+"/"+p.Slug, api.ProjectUpdate{TriggerSettings: api.TriggerSettings{Trigger: ptr("sometimes")}}, http.StatusBadRequest, nil)
}

// TestPushesMissedWhileStoppedDeployAtStart stops the agent, pushes two commits, and starts it again:
// the newest is live within seconds, deployed by reconciliation, and the older is never built.
func TestPushesMissedWhileStoppedDeployAtStart(t *testing.T) {
	data := t.TempDir()
	onData := func(cfg *config.Config) { cfg.DataDir = data }
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	ta, stop, done := serveAgent(t, listen(), onData)
	repo := gittest.New(t)
	p := ta.addProject("site", repo.Dir)
	first := repo.Commit("first", map[string]string{"index.html": "version one"})
	ta.deployed(ta.push(p, first))
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := ta.agent.store.Close(); err != nil {
		t.Fatal(err)
	}

	repo.Commit("second", map[string]string{"index.html": "version two"})
	third := repo.Commit("third", map[string]string{"index.html": "version three"})
	ta, stop, done = serveAgent(t, listen(), onData)
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	if d := ta.deploymentOf(p, third); d.Status != api.StatusDeployed || d.Trigger != api.TriggerReconcile || !d.Live {
		t.Fatalf("after the restart: %+v\n%s", d, ta.log(d.ID))
	}
	if _, body := ta.get(p.Slug, "/"); body != "version three" {
		t.Errorf("the site serves %q", body)
	}
	want := []string{first[:7] + " webhook", third[:7] + " reconcile"}
	if got := ta.history(p); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("deployments %v, want %v: the older missed commit must never be built", got, want)
	}
}
