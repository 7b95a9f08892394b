package agent_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/gittest"
)

// TestAskAgreesWithServing: the ask endpoint answers 200 exactly for the site hosts that are
// served, deployment hosts only by their canonical id, preview hosts only while the preview is up.
func TestAskAgreesWithServing(t *testing.T) {
	ta := startWithHosts(t, agenttest.Config(t))
	repo := gittest.New(t)
	p := ta.AddProject(t, localProject("blog", repo.Dir))
	branches := []string{"feat-*"}
	ta.Call(t, "PATCH", api.PathProjects+"/blog", api.ProjectUpdate{TriggerSettings: api.TriggerSettings{PreviewBranches: &branches}}, http.StatusOK, nil)
	live := ta.Deployed(t, ta.Push(t, p, repo.Commit("site", map[string]string{"index.html": "home"})))
	repo.Git("checkout", "-q", "-b", "feat-x")
	repo.Commit("feature", map[string]string{"index.html": "feature"})
	repo.Git("checkout", "-q", "main")
	var queued api.Deployment
	ta.Call(t, "POST", api.PathProjects+"/blog/deploy", api.DeployRequest{Branch: "feat-x"}, http.StatusCreated, &queued)
	preview := ta.Deployed(t, queued.ID)
	ta.Call(t, "POST", api.PathProjects+"/blog/deploy", api.DeployRequest{CommitSHA: strings.Repeat("f", 40)}, http.StatusCreated, &queued)
	if failed := ta.Wait(t, queued.ID); failed.Status != api.StatusFailed {
		t.Fatalf("a deployment of a missing commit: %s", failed.Status)
	}
	id := strconv.FormatInt(live.ID, 10)
	tests := []struct {
		label string
		code  int
	}{
		{"blog", 200},
		{"blog--" + id, 200},
		{"blog--" + preview.Alias, 200},
		{"blog--" + strconv.FormatInt(preview.ID, 10), 200},
		{"blog--0" + id, 404},
		{"blog--00" + id, 404},
		{"blog--" + strings.Repeat("0", 40) + id, 404},
		{"blog--+" + id, 404},
		{"blog--" + strconv.FormatInt(queued.ID, 10), 404},
		{"blog--git-nope", 404},
		{"blog--" + strings.Repeat("0", 70) + id, 404},
		{"shop", 404},
	}
	for _, tt := range tests {
		host := tt.label + ".localhost"
		resp, _ := ta.Site(t, tt.label, "/")
		if got := ask(t, ta, host); got != tt.code || resp.StatusCode != tt.code {
			t.Errorf("%s: ask %d, served %d; want both %d", host, got, resp.StatusCode, tt.code)
		}
	}
	for _, host := range []string{"blog.localhost:443", "blog.localhost.", "BLOG.localhost.", "[::1]", "127.0.0.1", "blog.localhost/x"} {
		if got := ask(t, ta, host); got != http.StatusNotFound {
			t.Errorf("ask %q: %d, want 404 for what is not a plain host name", host, got)
		}
	}
}
