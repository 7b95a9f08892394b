package serving

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/miaobu/miaobu/internal/store"
)

// lookup is a store of one project, blog, with deployments 1 (live) and 2 (failed) and the custom
// domain blog.example.org, and of a project at www.example.net with no live deployment.
type lookup struct{}

func (lookup) ProjectByDomain(name string) (*store.Project, error) {
	switch name {
	case "blog.example.org":
		return &store.Project{ID: 1, Slug: "blog", ActiveDeploymentID: 1}, nil
	case "www.example.net":
		return &store.Project{ID: 2, Slug: "shop"}, nil
	}
	return nil, store.ErrNotFound
}

func (lookup) ProjectBySlug(slug string) (*store.Project, error) {
	if slug != "blog" {
		return nil, store.ErrNotFound
	}
	return &store.Project{ID: 1, Slug: "blog", ActiveDeploymentID: 1}, nil
}

func (lookup) Deployment(id int64) (*store.Deployment, error) {
	switch id {
	case 1:
		return &store.Deployment{ID: 1, ProjectID: 1, Status: store.StatusDeployed}, nil
	case 2:
		return &store.Deployment{ID: 2, ProjectID: 1, Status: store.StatusFailed}, nil
	}
	return nil, store.ErrNotFound
}

func TestSitesByHost(t *testing.T) {
	root := t.TempDir()
	dir := func(slug string, id int64) string { return filepath.Join(root, slug, strconv.FormatInt(id, 10)) }
	if err := os.MkdirAll(dir("blog", 1), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir("blog", 1), "index.html"), []byte("home"), 0o600); err != nil {
		t.Fatal(err)
	}
	sites := &Sites{Store: lookup{}, Dir: dir, Domain: "sites.example.com", PublicURL: "https://deploy.sites.example.com",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	h := sites.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "api") }))
	tests := []struct {
		method, host string
		code         int
		body         string
	}{
		{"GET", "blog.sites.example.com", http.StatusOK, "home"},
		{"GET", "BLOG.Sites.Example.com.:8443", http.StatusOK, "home"},
		{"GET", "blog--1.sites.example.com", http.StatusOK, "home"},
		{"GET", "blog--2.sites.example.com", http.StatusNotFound, "No deployment 2 of blog here.\n"},
		{"GET", "blog--x.sites.example.com", http.StatusNotFound, "No deployment x of blog here.\n"},
		{"GET", "shop.sites.example.com", http.StatusNotFound, "No site shop here.\n"},
		{"POST", "blog.sites.example.com", http.StatusMethodNotAllowed, "405 method not allowed\n"},
		{"GET", "deploy.sites.example.com", http.StatusOK, "api"},
		{"GET", "a.blog.sites.example.com", http.StatusOK, "api"},
		{"GET", "example.com", http.StatusOK, "api"},
		{"GET", "Blog.Example.org:443", http.StatusOK, "home"},
		{"HEAD", "blog.example.org", http.StatusOK, ""},
		{"DELETE", "blog.example.org", http.StatusMethodNotAllowed, "405 method not allowed\n"},
		{"GET", "www.example.net", http.StatusNotFound, "shop has no live deployment yet.\n"},
		{"GET", "example.org", http.StatusOK, "api"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, "/", nil)
		r.Host = tt.host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.code || w.Body.String() != tt.body {
			t.Errorf("%s %s: %d %q, want %d %q", tt.method, tt.host, w.Code, w.Body, tt.code, tt.body)
		}
	}
}
