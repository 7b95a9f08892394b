package agent_test

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/gittest"
)

// stampedSite is a Node project whose build publishes version and what its install wrote into
// node_modules: the time it ran.
func stampedSite(version string) map[string]string {
	return map[string]string{
		"package.json": `{"name":"site","private":true,"scripts":{"build":"node build.js"}}`,
		"build.js": `const fs = require("fs");
fs.mkdirSync("dist", {recursive: true});
fs.writeFileSync("dist/index.html", "` + version + ` " + fs.readFileSync("node_modules/dep/stamp", "utf8").trim());
`,
	}
}

// trimmedCache is the size of p's build cache once it is at most 4 KiB, or after 10 seconds.
func trimmedCache(t *testing.T, ta *agenttest.Agent, p api.Project) int64 {
	t.Helper()
	var got api.Project
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ta.Call(t, "GET", api.PathProjects+"/"+p.Slug, nil, http.StatusOK, &got)
		if got.CacheBytes <= 4096 || time.Now().After(deadline) {
			return got.CacheBytes
		}
	}
}

func TestRetentionBoundsTheBuildCache(t *testing.T) {
	t.Parallel()
	cfg := agenttest.Config(t)
	cfg.Retention.CacheBytes = 1
	ta := agenttest.Start(t, cfg)
	repo := gittest.New(t)
	var p api.Project
	ta.Call(t, "POST", api.PathProjects, api.ProjectCreate{Name: "bounded", RepoURL: repo.Dir, Branch: "main",
		InstallCommand: "mkdir -p node_modules/dep && date +%s%N > node_modules/dep/stamp"}, http.StatusCreated, &p)
	for i, version := range []string{"v1", "v2"} {
		d := ta.Deployed(t, ta.Push(t, p, repo.Commit(version, stampedSite(version))))
		if log := ta.Log(t, d.ID); !strings.Contains(log, "==> Installing: mkdir") {
			t.Errorf("deployment %d did not install, though retention left no cache:\n%s", i+1, log)
		}
		// Retention applies once the deployment is recorded deployed.
		if size := trimmedCache(t, ta, p); size > 4096 {
			t.Errorf("after deployment %d the cache takes %d bytes, over retention.cache_bytes", i+1, size)
		}
	}
}

func TestRetentionBoundsTheCacheOfFailedBuilds(t *testing.T) {
	t.Parallel()
	cfg := agenttest.Config(t)
	cfg.Retention.CacheBytes = 1
	ta := agenttest.Start(t, cfg)
	repo := gittest.New(t)
	var p api.Project
	ta.Call(t, "POST", api.PathProjects, api.ProjectCreate{Name: "failing", RepoURL: repo.Dir, Branch: "main",
		InstallCommand: "mkdir -p node_modules/dep && date +%s%N > node_modules/dep/stamp",
		BuildCommand:   `head -c 200000 /dev/zero > "$npm_config_cache/junk" && exit 1`}, http.StatusCreated, &p)
	d := ta.Wait(t, ta.Push(t, p, repo.Commit("v1", stampedSite("v1"))))
	if d.Status != "failed" {
		t.Fatalf("deployment %s, want failed:\n%s", d.Status, ta.Log(t, d.ID))
	}
	if size := trimmedCache(t, ta, p); size > 4096 {
		t.Errorf("after a failed build the cache takes %d bytes, over retention.cache_bytes", size)
	}
}

func TestBuildCacheThroughTheAPI(t *testing.T) {
	t.Parallel()
	ta := agenttest.Start(t, agenttest.Config(t))
	repo := gittest.New(t)
	var p api.Project
	ta.Call(t, "POST", api.PathProjects, api.ProjectCreate{Name: "cached", RepoURL: repo.Dir, Branch: "main",
		InstallCommand: "mkdir -p node_modules/dep && date +%s%N > node_modules/dep/stamp"}, http.StatusCreated, &p)
	skipped := regexp.MustCompile(`==> Installing: skipped, dependencies unchanged \(cache [0-9a-f]{7}\)`)
	installs := func(d api.Deployment) bool {
		log := ta.Log(t, d.ID)
		if strings.Contains(log, "==> Installing: mkdir") == skipped.MatchString(log) {
			t.Fatalf("deployment %d neither installed nor skipped:\n%s", d.ID, log)
		}
		return !skipped.MatchString(log)
	}
	page := func() string {
		_, body := ta.Site(t, p.Slug, "/")
		return body
	}
	project := func() api.Project {
		var got api.Project
		ta.Call(t, "GET", api.PathProjects+"/"+p.Slug, nil, http.StatusOK, &got)
		return got
	}

	if d := ta.Deployed(t, ta.Push(t, p, repo.Commit("first", stampedSite("v1")))); !installs(d) {
		t.Error("the first deployment skipped its install")
	}
	_, stamp, _ := strings.Cut(page(), " ")
	if d := ta.Deployed(t, ta.Push(t, p, repo.Commit("second", stampedSite("v2")))); installs(d) {
		t.Error("the second deployment, with the same package.json, installed again")
	}
	if got := page(); got != "v2 "+stamp {
		t.Errorf("the second deployment serves %q, want v2 built with the first install's %s", got, stamp)
	}

	size := project().CacheBytes
	if size <= 0 {
		t.Fatalf("cache_bytes = %d after two builds", size)
	}
	var status api.Status
	ta.Call(t, "GET", api.PathStatus, nil, http.StatusOK, &status)
	if len(status.Projects) != 1 || status.Projects[0].CacheBytes != size {
		t.Errorf("status shows cache_bytes %+v, want %d", status.Projects, size)
	}

	var d api.Deployment
	ta.Call(t, "POST", api.PathProjects+"/"+p.Slug+"/deploy", api.DeployRequest{NoCache: true}, http.StatusCreated, &d)
	if d = ta.Deployed(t, d.ID); !installs(d) || !strings.Contains(ta.Log(t, d.ID), "Build cache: cleared") {
		t.Errorf("deploy with no_cache did not start from nothing:\n%s", ta.Log(t, d.ID))
	}

	var cleared api.CacheCleared
	ta.Call(t, "DELETE", api.PathProjects+"/"+p.Slug+"/cache", nil, http.StatusOK, &cleared)
	if cleared.ProjectID != p.ID || cleared.FreedBytes <= 0 {
		t.Errorf("cache clear answered %+v", cleared)
	}
	if got := project().CacheBytes; got != 0 {
		t.Errorf("cache_bytes = %d after cache clear", got)
	}
	if d := ta.Deployed(t, ta.Push(t, p, repo.Commit("third", stampedSite("v3")))); !installs(d) {
		t.Error("the deployment after cache clear skipped its install")
	}

	ta.Call(t, "DELETE", api.PathProjects+"/"+p.Slug+"/cache", nil, http.StatusOK, nil)
	ta.Call(t, "DELETE", api.PathProjects+"/999/cache", nil, http.StatusNotFound, nil)
	ta.Deployed(t, ta.Push(t, p, repo.Commit("fourth", stampedSite("v4"))))
	ta.Call(t, "DELETE", api.PathProjects+"/"+p.Slug, nil, http.StatusOK, nil)
	if _, err := os.Stat(filepath.Join(ta.Config.DataDir, "cache", "1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the deleted project's cache is still there: %v", err)
	}
}
