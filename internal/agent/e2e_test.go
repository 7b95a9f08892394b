package agent_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/gittest"
)

func TestPushDeploysAndServes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		files func(body string) map[string]string
	}{
		{"static", func(body string) map[string]string {
			return map[string]string{"index.html": body, "404.html": "custom 404", "docs/index.html": "docs"}
		}},
		{"node", nodeSite},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ta := agenttest.Start(t, agenttest.Config(t))
			repo := gittest.New(t)
			p := ta.AddProject(t, localProject(tc.name+" site", repo.Dir))
			first := ta.Deployed(t, ta.Push(t, p, repo.Commit("first", tc.files("version one"))))
			if _, body := ta.Site(t, p.Slug, "/"); body != "version one" {
				t.Fatalf("live site serves %q", body)
			}
			if !first.Live || first.URL != fmt.Sprintf("http://%s--%d.localhost:%s/", p.Slug, first.ID, port(ta)) {
				t.Errorf("first deployment: live %v, url %s", first.Live, first.URL)
			}
			if log := ta.Log(t, first.ID); !strings.Contains(log, "Commit: pushed — Ada") || !strings.Contains(log, "succeeded") {
				t.Errorf("log:\n%s", log)
			}

			second := ta.Deployed(t, ta.Push(t, p, repo.Commit("second", tc.files("version two"))))
			if _, body := ta.Site(t, p.Slug, "/"); body != "version two" {
				t.Fatalf("after the second push the site serves %q", body)
			}
			preview := fmt.Sprintf("%s--%d", p.Slug, first.ID)
			if _, body := ta.Site(t, preview, "/"); body != "version one" {
				t.Errorf("preview of the first deployment serves %q", body)
			}

			var rolled api.Deployment
			ta.Call(t, "POST", api.PathProjects+"/"+p.Slug+"/rollback", nil, http.StatusOK, &rolled)
			if rolled.ID != first.ID || !rolled.Live {
				t.Errorf("rollback made %d live (%v), want %d", rolled.ID, rolled.Live, first.ID)
			}
			if _, body := ta.Site(t, p.Slug, "/"); body != "version one" {
				t.Errorf("after rollback the site serves %q", body)
			}
			if _, body := ta.Site(t, fmt.Sprintf("%s--%d", p.Slug, second.ID), "/"); body != "version two" {
				t.Errorf("preview of the second deployment serves %q", body)
			}
		})
	}
}

func TestSiteServing(t *testing.T) {
	t.Parallel()
	ta := agenttest.Start(t, agenttest.Config(t))
	repo := gittest.New(t)
	p := ta.AddProject(t, localProject("served", repo.Dir))
	ta.Deployed(t, ta.Push(t, p, repo.Commit("site", map[string]string{
		"index.html": "home", "404.html": "custom 404", "docs/index.html": "docs",
		"assets/app-3f9a1c2e.js": "js", "data.json": "{}",
	})))
	resp, body := ta.Site(t, p.Slug, "/")
	if resp.Header.Get("Content-Type") != "text/html; charset=utf-8" || resp.Header.Get("Cache-Control") != "no-cache" || body != "home" {
		t.Errorf("/: %v %q", resp.Header, body)
	}
	etag := resp.Header.Get("ETag")
	if resp, _ := ta.Site(t, p.Slug, "/", "If-None-Match", etag); etag == "" || resp.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET with ETag %q: %d", etag, resp.StatusCode)
	}
	if resp, body := ta.Site(t, p.Slug, "/assets/app-3f9a1c2e.js"); resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" ||
		resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || body != "js" {
		t.Errorf("hashed asset: %v %q", resp.Header, body)
	}
	if resp, _ := ta.Site(t, p.Slug, "/docs"); resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/docs/" {
		t.Errorf("/docs: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, body := ta.Site(t, p.Slug, "/docs/"); body != "docs" {
		t.Errorf("/docs/ = %q", body)
	}
	if resp, body := ta.Site(t, p.Slug, "/missing"); resp.StatusCode != http.StatusNotFound || body != "custom 404" {
		t.Errorf("/missing: %d %q", resp.StatusCode, body)
	}
	if resp, _ := ta.Site(t, p.Slug, "/../../../etc/passwd"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("path escape: %d", resp.StatusCode)
	}
	if resp, _ := ta.Site(t, "nosuchsite", "/"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown site: %d", resp.StatusCode)
	}
	// The public URL's host reaches the API, not a site.
	resp2, err := http.Get(ta.URL + api.PathHealth)
	if err != nil || resp2.StatusCode != http.StatusOK {
		t.Errorf("healthz through the public host: %v %v", resp2, err)
	}
}

func TestSPAFallback(t *testing.T) {
	t.Parallel()
	ta := agenttest.Start(t, agenttest.Config(t))
	repo := gittest.New(t)
	p := ta.AddProject(t, localProject("spa", repo.Dir))
	files := nodeSite("app shell")
	// vite in devDependencies makes it a Vite SPA; the build script is still plain node.
	files["package.json"] = `{"name":"spa","private":true,"scripts":{"build":"node build.js"},"devDependencies":{"vite":"*"}}`
	var project api.Project
	ta.Call(t, "PATCH", api.PathProjects+"/"+p.Slug, api.ProjectUpdate{InstallCommand: ptr("true")}, http.StatusOK, &project)
	ta.Deployed(t, ta.Push(t, p, repo.Commit("spa", files)))
	if resp, body := ta.Site(t, p.Slug, "/users/42"); resp.StatusCode != http.StatusOK || body != "app shell" {
		t.Errorf("SPA route: %d %q", resp.StatusCode, body)
	}
	if resp, _ := ta.Site(t, p.Slug, "/missing.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing asset in an SPA: %d", resp.StatusCode)
	}
}

func ptr[T any](v T) *T { return &v }

func TestNewestPushWins(t *testing.T) {
	t.Parallel()
	ta := agenttest.Start(t, agenttest.Config(t))
	repo := gittest.New(t)
	p := ta.AddProject(t, localProject("quick", repo.Dir))
	first := ta.Push(t, p, repo.Commit("older", nodeSite("older")))
	second := ta.Push(t, p, repo.Commit("newer", nodeSite("newer")))
	b := ta.Deployed(t, second)
	if a := ta.Wait(t, first); a.Live || (a.Status != api.StatusDeployed && a.Status != api.StatusCancelled) {
		t.Errorf("the older deployment ended %s, live %v", a.Status, a.Live)
	}
	if !b.Live {
		t.Errorf("the newer deployment is not live")
	}
	if _, body := ta.Site(t, p.Slug, "/"); body != "newer" {
		t.Errorf("site serves %q, want the newer push", body)
	}
}

func TestFailedBuildAndCancel(t *testing.T) {
	t.Parallel()
	ta := agenttest.Start(t, agenttest.Config(t))
	repo := gittest.New(t)
	p := ta.AddProject(t, localProject("fails", repo.Dir))
	broken := nodeSite("x")
	broken["build.js"] = `console.error("Error: the build broke"); process.exit(1)`
	d := ta.Wait(t, ta.Push(t, p, repo.Commit("broken", broken)))
	if d.Status != api.StatusFailed || !strings.Contains(d.ErrorMessage, "Error: the build broke") || d.FinishedAt == nil || d.BuildTimeSeconds == nil {
		t.Errorf("failed deployment: %+v", d)
	}
	if log := ta.Log(t, d.ID); !strings.Contains(log, "Error: the build broke") || !strings.Contains(log, "failed") {
		t.Errorf("log:\n%s", log)
	}

	ta.Call(t, "PUT", api.PathProjects+"/"+p.Slug+"/env", map[string]string{"SLEEP": "60000"}, http.StatusOK, nil)
	id := ta.Push(t, p, repo.Commit("slow", nodeSite("slow")))
	for {
		var cur api.Deployment
		ta.Call(t, "GET", fmt.Sprintf("%s/%d", api.PathDeployments, id), nil, http.StatusOK, &cur)
		if cur.Status == api.StatusBuilding {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	ta.Call(t, "POST", fmt.Sprintf("%s/%d/cancel", api.PathDeployments, id), nil, http.StatusOK, nil)
	if d := ta.Wait(t, id); d.Status != api.StatusCancelled {
		t.Errorf("cancelled deployment is %s", d.Status)
	}
	// The project is free again: the next push builds.
	ta.Call(t, "DELETE", api.PathProjects+"/"+p.Slug+"/env/SLEEP", nil, http.StatusOK, nil)
	ta.Deployed(t, ta.Push(t, p, repo.Commit("fixed", nodeSite("fixed"))))
}

func TestEnvAPI(t *testing.T) {
	t.Parallel()
	ta := agenttest.Start(t, agenttest.Config(t))
	repo := gittest.New(t)
	p := ta.AddProject(t, localProject("env", repo.Dir))
	var vars []api.EnvVar
	ta.Call(t, "PUT", api.PathProjects+"/"+p.Slug+"/env", map[string]string{"B_KEY": "secret-b", "A_KEY": "secret-a"}, http.StatusOK, &vars)
	if len(vars) != 2 || vars[0].Name != "A_KEY" || vars[1].Name != "B_KEY" {
		t.Errorf("names: %+v", vars)
	}
	ta.Call(t, "PUT", api.PathProjects+"/"+p.Slug+"/env", map[string]string{"PATH": "/x"}, http.StatusBadRequest, nil)
	ta.Call(t, "PUT", api.PathProjects+"/"+p.Slug+"/env", map[string]string{"1BAD": "x"}, http.StatusBadRequest, nil)
	ta.Call(t, "DELETE", api.PathProjects+"/"+p.Slug+"/env/NOPE", nil, http.StatusNotFound, nil)
	ta.Call(t, "DELETE", api.PathProjects+"/"+p.Slug+"/env/A_KEY", nil, http.StatusOK, &vars)
	if len(vars) != 1 || vars[0].Name != "B_KEY" {
		t.Errorf("after unset: %+v", vars)
	}
	var raw []map[string]any
	ta.Call(t, "GET", api.PathProjects+"/"+p.Slug+"/env", nil, http.StatusOK, &raw)
	var project map[string]any
	ta.Call(t, "GET", api.PathProjects+"/"+p.Slug, nil, http.StatusOK, &project)
	if fmt.Sprint(raw, project) != strings.ReplaceAll(fmt.Sprint(raw, project), "secret-b", "") {
		t.Errorf("a value was returned: %v %v", raw, project)
	}
}

func TestLogFollowAndRetention(t *testing.T) {
	t.Parallel()
	cfg := agenttest.Config(t)
	cfg.Retention.Deployments = 1
	ta := agenttest.Start(t, cfg)
	repo := gittest.New(t)
	p := ta.AddProject(t, localProject("kept", repo.Dir))
	ta.Call(t, "PUT", api.PathProjects+"/"+p.Slug+"/env", map[string]string{"SLEEP": "500"}, http.StatusOK, nil)
	first := ta.Push(t, p, repo.Commit("one", nodeSite("one")))

	req, _ := http.NewRequest("GET", fmt.Sprintf("%s%s/%d/logs?follow=1", ta.URL, api.PathDeployments, first), nil)
	req.Header.Set("Authorization", "Bearer "+ta.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	followed, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || !strings.Contains(string(followed), "Deployment #1 succeeded") {
		t.Errorf("followed log (%s):\n%s", resp.Header.Get("Content-Type"), followed)
	}
	if d := ta.Wait(t, first); d.Status != api.StatusDeployed {
		t.Fatalf("first deployment %s", d.Status)
	}

	second := ta.Deployed(t, ta.Push(t, p, repo.Commit("two", nodeSite("two"))))
	// Pruning follows the deployed status by a moment.
	gone := func(path string) bool { _, err := os.Stat(path); return errors.Is(err, os.ErrNotExist) }
	for deadline := time.Now().Add(5 * time.Second); !gone(ta.Domain().LogPath(first)) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	ta.Call(t, "GET", fmt.Sprintf("%s/%d", api.PathDeployments, first), nil, http.StatusNotFound, nil)
	if !gone(ta.Domain().SiteDir(p.Slug, first)) || !gone(ta.Domain().LogPath(first)) {
		t.Errorf("the pruned deployment's files or log remain")
	}
	if _, body := ta.Site(t, p.Slug, "/"); body != "two" || !second.Live {
		t.Errorf("site serves %q", body)
	}
}
