package agent_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/cdn/cdnfake"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/gittest"
	"github.com/miaobu/miaobu/internal/oss/ossfake"
)

// TestOSSTargetPublishesPurgesAndRollsBack deploys a project with target oss through the whole agent
// against a fake OSS and a fake CDN: the first push uploads the site, a one-page change uploads that
// page and purges its URLs only, and a rollback re-publishes the earlier output.
func TestOSSTargetPublishesPurgesAndRollsBack(t *testing.T) {
	t.Parallel()
	bucket := ossfake.New(t, "sites")
	cdnAPI := cdnfake.New(t, "AKID-test", "secret-never-logged")
	cfg := agenttest.Config(t)
	cfg.OSS = config.OSS{Endpoint: bucket.URL, Bucket: "sites", Prefix: "projects/{slug}/", Concurrency: 4, MaxDelete: 1000,
		AccessKeyID: "AKID-test", AccessKeySecret: "secret-never-logged"}
	cfg.CDN = config.CDN{Provider: "aliyun", Domain: "{slug}.cdn.example.com", Endpoint: cdnAPI.URL, MaxURLs: 500}
	ta := agenttest.Start(t, cfg)
	repo := gittest.New(t)
	var p api.Project
	ta.Call(t, "POST", api.PathProjects, api.ProjectCreate{Name: "shop", RepoURL: repo.Dir, Branch: "main", Target: "oss"}, http.StatusCreated, &p)
	if p.SiteURL != "https://shop.cdn.example.com/" {
		t.Fatalf("site URL %q", p.SiteURL)
	}
	files := map[string]string{"index.html": "home v1", "about/index.html": "about v1", "assets/app-3f9a1c2e.js": "js"}
	first := ta.Deployed(t, ta.Push(t, p, repo.Commit("first", files)))
	if first.URL != p.SiteURL || !first.Live {
		t.Fatalf("first deployment: %+v", first)
	}
	home, ok := bucket.Object("projects/shop/index.html")
	if !ok || string(home.Body) != "home v1" || home.Header.Get("Cache-Control") != "no-cache" ||
		!strings.HasPrefix(home.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("index.html in the bucket: %v %+v", ok, home)
	}
	asset, _ := bucket.Object("projects/shop/assets/app-3f9a1c2e.js")
	if asset.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Errorf("hashed asset Cache-Control %q", asset.Header.Get("Cache-Control"))
	}

	bucket.ResetCounts()
	callsBefore := len(cdnAPI.Calls())
	files["about/index.html"] = "about v2"
	second := ta.Deployed(t, ta.Push(t, p, repo.Commit("second", files)))
	if about, _ := bucket.Object("projects/shop/about/index.html"); string(about.Body) != "about v2" {
		t.Fatalf("about page not updated: %q", about.Body)
	}
	if pagePuts := bucket.Count(ossfake.OpPut); pagePuts > 2 { // the page, and at most one bookkeeping object
		t.Errorf("a one-page change made %d PUTs", pagePuts)
	}
	var purged []string
	for _, c := range cdnAPI.Calls()[callsBefore:] {
		purged = append(purged, c.Paths...)
	}
	slices.Sort(purged)
	want := []string{"https://shop.cdn.example.com/about", "https://shop.cdn.example.com/about/", "https://shop.cdn.example.com/about/index.html"}
	if !slices.Equal(purged, want) {
		t.Errorf("purged %v, want %v", purged, want)
	}
	if log := ta.Log(t, second.ID); strings.Contains(log, "secret-never-logged") || !strings.Contains(log, "oss://sites/projects/shop/") {
		t.Errorf("build log:\n%s", log)
	}

	// A failed purge is a warning: the deployment still succeeds.
	cdnAPI.FailWith(http.StatusInternalServerError)
	files["index.html"] = "home v3"
	third := ta.Deployed(t, ta.Push(t, p, repo.Commit("third", files)))
	if log := ta.Log(t, third.ID); !strings.Contains(log, "WARNING: the CDN purge failed") {
		t.Errorf("a failed purge left no warning in the log:\n%s", log)
	}

	var rolled api.Deployment
	ta.Call(t, "POST", api.PathProjects+"/shop/rollback", api.RollbackRequest{DeploymentID: first.ID}, http.StatusOK, &rolled)
	if rolled.ID != first.ID {
		t.Fatalf("rolled back to %d", rolled.ID)
	}
	if about, _ := bucket.Object("projects/shop/about/index.html"); string(about.Body) != "about v1" {
		t.Fatalf("rollback did not re-publish the first output: %q", about.Body)
	}
}

func TestOSSTargetNeedsConfiguration(t *testing.T) {
	t.Parallel()
	ta := agenttest.Start(t, agenttest.Config(t))
	var e api.Error
	ta.Call(t, "POST", api.PathProjects, api.ProjectCreate{Name: "shop", RepoURL: "/tmp/x", Branch: "main", Target: "oss"}, http.StatusBadRequest, &e)
	if !strings.Contains(e.Detail, "oss.endpoint") || !strings.Contains(e.Detail, "oss.access_key_secret") {
		t.Fatalf("answer %q", e.Detail)
	}
}
