package agent_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/gittest"
)

func TestProjectShowsWhatTheLastBuildDetected(t *testing.T) {
	t.Parallel()
	ta := agenttest.Start(t, agenttest.Config(t))
	repo := gittest.New(t)
	p := ta.AddProject(t, localProject("detected", repo.Dir))
	fields := []string{"detected_framework", "detected_install_command", "detected_build_command", "detected_output_directory"}
	var raw map[string]any
	ta.Call(t, "GET", api.PathProjects+"/"+p.Slug, nil, http.StatusOK, &raw)
	for _, field := range fields {
		if v, ok := raw[field]; !ok || v != nil {
			t.Errorf("before any build %s = %v (present %v), want null", field, v, ok)
		}
	}

	first := ta.Deployed(t, ta.Push(t, p, repo.Commit("node", nodeSite("node"))))
	node := []string{"node", "npm install", "npm run build", "dist"}
	var project api.Project
	ta.Call(t, "GET", api.PathProjects+"/"+p.Slug, nil, http.StatusOK, &project)
	checkDetection(t, "project after the first build", project.Detection, node)
	checkDetection(t, "first deployment", first.Detection, node)

	// The project's own settings win at build time, but detection still reports what it found.
	ta.Call(t, "PATCH", api.PathProjects+"/"+p.Slug, api.ProjectUpdate{InstallCommand: ptr("true")}, http.StatusOK, nil)
	vite := nodeSite("vite")
	vite["package.json"] = `{"name":"spa","private":true,"scripts":{"build":"node build.js"},"devDependencies":{"vite":"*"}}`
	second := ta.Deployed(t, ta.Push(t, p, repo.Commit("vite", vite)))
	ta.Call(t, "GET", api.PathProjects+"/"+p.Slug, nil, http.StatusOK, &project)
	checkDetection(t, "project after the second build", project.Detection, []string{"vite", "npm install", "npm run build", "dist"})
	if project.InstallCommand != "true" {
		t.Errorf("install_command = %q, want the project's own", project.InstallCommand)
	}
	var again api.Deployment
	ta.Call(t, "GET", fmt.Sprintf("%s/%d", api.PathDeployments, first.ID), nil, http.StatusOK, &again)
	checkDetection(t, "first deployment later", again.Detection, node)
	checkDetection(t, "second deployment", second.Detection, []string{"vite", "npm install", "npm run build", "dist"})
}

// checkDetection fails the test unless d holds want: framework, install, build and output.
func checkDetection(t *testing.T, what string, d api.Detection, want []string) {
	t.Helper()
	got := []*string{d.DetectedFramework, d.DetectedInstallCommand, d.DetectedBuildCommand, d.DetectedOutputDirectory}
	for i, v := range got {
		if v == nil || *v != want[i] {
			t.Errorf("%s: detected %s, want %q", what, show(got), want)
			return
		}
	}
}

// show prints optional strings, nil as null.
func show(values []*string) string {
	out := "["
	for i, v := range values {
		if i > 0 {
			out += " "
		}
		if v == nil {
			out += "null"
		} else {
			out += fmt.Sprintf("%q", *v)
		}
	}
	return out + "]"
}
