package agent_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/gittest"
	"github.com/miaobu/miaobu/internal/pipeline"
)

func TestBuildLogIsCutAndStillServed(t *testing.T) {
	t.Parallel()
	ta := agenttest.Start(t, agenttest.Config(t))
	repo := gittest.New(t)
	create := localProject("noisy", repo.Dir)
	create.InstallCommand, create.OutputDirectory = "true", "."
	// About 24 MiB of output, in lines of 300 bytes.
	create.BuildCommand = "yes " + strings.Repeat("y", 300) + " | head -n 80000"
	p := ta.AddProject(t, create)
	repo.Commit("noisy", map[string]string{"index.html": "hello"})
	var d api.Deployment
	ta.Call(t, "POST", api.PathProjects+"/"+p.Slug+"/deploy", nil, http.StatusCreated, &d)
	if d = ta.Deployed(t, d.ID); d.Status != "deployed" {
		t.Fatalf("deployment %s", d.Status)
	}
	log := ta.Log(t, d.ID)
	if len(log) > pipeline.MaxLogBytes+200 || len(log) < pipeline.MaxLogBytes-400 ||
		!strings.HasSuffix(log, "the rest of the build's output is not logged.\n") {
		t.Fatalf("the log of a build that printed 24 MiB: %d bytes ending %q", len(log), log[max(0, len(log)-200):])
	}
	// `miaobu deployment logs -f` follows the log through the API to its end.
	if followed := ta.Text(t, api.PathDeployments+"/"+strconv.FormatInt(d.ID, 10)+"/logs?follow=1"); followed != log {
		t.Errorf("the followed log: %d bytes, the log %d", len(followed), len(log))
	}
}
