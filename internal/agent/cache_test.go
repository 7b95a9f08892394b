package agent

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/config"
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

func TestRetentionBoundsTheBuildCache(t *testing.T) {
	ta := startAgent(t, func(cfg *config.Config) { cfg.Retention.CacheBytes = 1 })
	repo := gittest.New(t)
	var p api.Project
	ta.call("POST", api.PathProjects, api.ProjectCreate{Name: "bounded", RepoURL: repo.Dir, Branch: "main",
		InstallCommand: "mkdir -p node_modules/dep && date +%s%N > node_modules/dep/stamp"}, http.StatusCreated, &p)
	for i, version := range []string{"v1", "v2"} {
		d := ta.deployed(ta.push(p, repo.Commit(version, stampedSite(version))))
		if log := ta.log(d.ID); !strings.Contains(log, "==> Installing: mkdir") {
			t.Errorf("deployment %d did not install, though retention left no cache:\n%s", i+1, log)
		}
		// Retention applies once the deployment is recorded deployed.
		var got api.Project
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			ta.call("GET", api.PathProjects+"/"+p.Slug, nil, http.StatusOK, &got)
			if got.CacheBytes <= 4096 || time.Now().After(deadline) {
				break
			}
		}
		if got.CacheBytes > 4096 {
			t.Errorf("after deployment %d the cache takes %d bytes, over retention.cache_bytes", i+1, got.CacheBytes)
		}
	}
}

func TestBuildCacheThroughTheAPI(t *testing.T) {
	ta := startAgent(t, nil)
	repo := gittest.New(t)
	var p api.Project
	ta.call("POST", api.PathProjects, api.ProjectCreate{Name: "cached", RepoURL: repo.Dir, Branch: "main",
		InstallCommand: "mkdir -p node_modules/dep && date +%s%N > node_modules/dep/stamp"}, http.StatusCreated, &p)
	skipped := regexp.MustCompile(`==> Installing: skipped, dependencies unchanged \(cache [0-9a-f]{7}\)`)
	installs := func(d api.Deployment) bool {
		log := ta.log(d.ID)
		if strings.Contains(log, "==> Installing: mkdir") == skipped.MatchString(log) {
			t.Fatalf("deployment %d neither installed nor skipped:\n%s", d.ID, log)
		}
		return !skipped.MatchString(log)
	}
	page := func() string {
		_, body := ta.get(p.Slug, "/")
		return body
	}
	project := func() api.Project {
		var got api.Project
		ta.call("GET", api.PathProjects+"/"+p.Slug, nil, http.StatusOK, &got)
		return got
	}

	if d := ta.deployed(ta.push(p, repo.Commit("first", stampedSite("v1")))); !installs(d) {
		t.Error("the first deployment skipped its install")
	}
	_, stamp, _ := strings.Cut(page(), " ")
	if d := ta.deployed(ta.push(p, repo.Commit("second", stampedSite("v2")))); installs(d) {
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
	ta.call("GET", api.PathStatus, nil, http.StatusOK, &status)
	if len(status.Projects) != 1 || status.Projects[0].CacheBytes != size {
		t.Errorf("status shows cache_bytes %+v, want %d", status.Projects, size)
	}

	var d api.Deployment
	ta.call("POST", api.PathProjects+"/"+p.Slug+"/deploy", api.DeployRequest{NoCache: true}, http.StatusCreated, &d)
	if d = ta.deployed(d.ID); !installs(d) || !strings.Contains(ta.log(d.ID), "Build cache: cleared") {
		t.Errorf("deploy with no_cache did not start from nothing:\n%s", ta.log(d.ID))
	}

	var cleared api.CacheCleared
	ta.call("DELETE", api.PathProjects+"/"+p.Slug+"/cache", nil, http.StatusOK, &cleared)
	if cleared.ProjectID != p.ID || cleared.FreedBytes <= 0 {
		t.Errorf("cache clear answered %+v", cleared)
	}
	if got := project().CacheBytes; got != 0 {
		t.Errorf("cache_bytes = %d after cache clear", got)
	}
	if d := ta.deployed(ta.push(p, repo.Commit("third", stampedSite("v3")))); !installs(d) {
		t.Error("the deployment after cache clear skipped its install")
	}

	ta.call("DELETE", api.PathProjects+"/"+p.Slug+"/cache", nil, http.StatusOK, nil)
	ta.call("DELETE", api.PathProjects+"/999/cache", nil, http.StatusNotFound, nil)
	ta.deployed(ta.push(p, repo.Commit("fourth", stampedSite("v4"))))
	ta.call("DELETE", api.PathProjects+"/"+p.Slug, nil, http.StatusOK, nil)
	if _, err := os.Stat(filepath.Join(ta.cfg.DataDir, "cache", "1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the deleted project's cache is still there: %v", err)
	}
}
