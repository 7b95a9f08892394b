package serving

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/store"
	"github.com/miaobu/miaobu/internal/trigger"
)

// longBranch is a branch whose preview's host label is cut to 63 characters.
const longBranch = "feature/a-very-long-branch-name-that-goes-on-and-on-and-on-forever-and-ever"

// lookup is a store of one project, blog, with deployments 1 (live) and 2 (failed), the custom
// domain blog.example.org, and previews: pr-12 live on 3, pr-7 removed (it was live on 4), the long
// branch's live on 5, pr-9 with none; and of a project at www.example.net with no live deployment.
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

// previews are the previews of blog.
var previews = []*store.Preview{
	{ProjectID: 1, Alias: "git-" + trigger.BranchSlug(longBranch), Branch: longBranch, ActiveDeploymentID: 5},
	{ProjectID: 1, Alias: "pr-12", PullRequest: 12, Branch: "feature/x", ActiveDeploymentID: 3},
	{ProjectID: 1, Alias: "pr-7", PullRequest: 7, Branch: "patch-1", ActiveDeploymentID: 4, RemovedAt: &time.Time{}},
	{ProjectID: 1, Alias: "pr-9", PullRequest: 9, Branch: "wip"},
}

func (lookup) Preview(projectID int64, alias string) (*store.Preview, error) {
	for _, pv := range previews {
		if pv.ProjectID == projectID && pv.Alias == alias {
			return pv, nil
		}
	}
	return nil, store.ErrNotFound
}

func (lookup) Previews(projectID int64) ([]*store.Preview, error) {
	return previews, nil
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
	case 3, 4, 5:
		return &store.Deployment{ID: id, ProjectID: 1, Status: store.StatusDeployed, Alias: map[int64]string{3: "pr-12", 4: "pr-7", 5: previews[0].Alias}[id]}, nil
	}
	return nil, store.ErrNotFound
}

func TestSitesByHost(t *testing.T) {
	root := t.TempDir()
	dir := func(slug string, id int64) string { return filepath.Join(root, slug, strconv.FormatInt(id, 10)) }
	if err := os.MkdirAll(dir("blog", 1), 0o700); err != nil {
		t.Fatal(err)
	}
	for id, body := range map[int64]string{1: "home", 3: "pr-12", 4: "pr-7", 5: "long"} {
		if err := os.MkdirAll(dir("blog", id), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir("blog", id), "index.html"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
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
		{"GET", "blog--01.sites.example.com", http.StatusNotFound, "No deployment 01 of blog here.\n"},
		{"GET", "blog--+1.sites.example.com", http.StatusNotFound, "No deployment +1 of blog here.\n"},
		{"GET", "blog--0.sites.example.com", http.StatusNotFound, "No deployment 0 of blog here.\n"},
		{"GET", "blog--pr-12.sites.example.com", http.StatusOK, "pr-12"},
		{"GET", "blog--3.sites.example.com", http.StatusOK, "pr-12"},
		{"GET", "blog--pr-7.sites.example.com", http.StatusNotFound, "404 preview removed\n"},
		{"GET", "blog--4.sites.example.com", http.StatusNotFound, "404 preview removed\n"},
		{"GET", "blog--pr-9.sites.example.com", http.StatusNotFound, "pr-9 of blog has no live deployment yet.\n"},
		{"GET", "blog--pr-99.sites.example.com", http.StatusNotFound, "No deployment pr-99 of blog here.\n"},
		{"GET", trigger.HostLabel("blog", previews[0].Alias, 0, longBranch) + ".sites.example.com", http.StatusOK, "long"},
		{"GET", "blog--" + previews[0].Alias + ".sites.example.com", http.StatusNotFound, "No deployment " + previews[0].Alias + " of blog here.\n"},
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

// takenLabel is blog with two long branches whose cut host labels are the same: the preview of the
// first was taken down, and the second's is up.
type takenLabel struct {
	lookup
	previews []*store.Preview
}

func (takenLabel) Preview(int64, string) (*store.Preview, error) {
	return nil, store.ErrNotFound
}

func (l takenLabel) Previews(int64) ([]*store.Preview, error) { return l.previews, nil }

// TestCutLabelServesThePreviewThatIsUp: of two previews sharing a cut label, the one up is served,
// whichever comes first.
func TestCutLabelServesThePreviewThatIsUp(t *testing.T) {
	labels := map[string]string{}
	var first, second string
	for n := 0; second == ""; n++ {
		branch := longBranch + "-" + strconv.Itoa(n)
		label := trigger.HostLabel("blog", "git-"+trigger.BranchSlug(branch), 0, branch)
		if other, ok := labels[label]; ok {
			first, second = other, branch
		}
		labels[label] = branch
	}
	root := t.TempDir()
	dir := func(slug string, id int64) string { return filepath.Join(root, slug, strconv.FormatInt(id, 10)) }
	if err := os.MkdirAll(dir("blog", 5), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir("blog", 5), "index.html"), []byte("second"), 0o600); err != nil {
		t.Fatal(err)
	}
	fake := takenLabel{previews: []*store.Preview{
		{ProjectID: 1, Alias: "git-" + trigger.BranchSlug(first), Branch: first, ActiveDeploymentID: 4, RemovedAt: &time.Time{}},
		{ProjectID: 1, Alias: "git-" + trigger.BranchSlug(second), Branch: second, ActiveDeploymentID: 5},
	}}
	fake.lookup = lookup{}
	sites := &Sites{Store: fake, Dir: dir, Domain: "sites.example.com", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	h := sites.Handler(http.NotFoundHandler())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "http://"+trigger.HostLabel("blog", fake.previews[1].Alias, 0, second)+".sites.example.com/", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "second" {
		t.Errorf("answer %d %q", rec.Code, rec.Body.String())
	}
}

// TestServesAgreesWithHandler: a name is served exactly when the handler answers its site, or it is
// the public URL's host, and only in its plain form.
func TestServesAgreesWithHandler(t *testing.T) {
	sites := &Sites{Store: lookup{}, Dir: func(string, int64) string { return t.TempDir() }, Domain: "sites.example.com",
		PublicURL: "https://deploy.example.net:8443", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	tests := []struct {
		name string
		want bool
	}{
		{"deploy.example.net", true},
		{"blog.sites.example.com", true},
		{"blog--1.sites.example.com", true},
		{"blog--3.sites.example.com", true},
		{"blog--pr-12.sites.example.com", true},
		{trigger.HostLabel("blog", previews[0].Alias, 0, longBranch) + ".sites.example.com", true},
		{"blog.example.org", true},
		{"www.example.net", true},
		{"blog--01.sites.example.com", false},
		{"blog--0001.sites.example.com", false},
		{"blog--+1.sites.example.com", false},
		{"blog--0.sites.example.com", false},
		{"blog---1.sites.example.com", false},
		{"blog--2.sites.example.com", false},
		{"blog--4.sites.example.com", false},
		{"blog--pr-7.sites.example.com", false},
		{"blog--pr-9.sites.example.com", false},
		{"blog--pr-99.sites.example.com", false},
		{"shop.sites.example.com", false},
		{"a.blog.sites.example.com", false},
		{"sites.example.com", false},
		{"example.org", false},
		{"BLOG.sites.example.com", false},
		{"blog.sites.example.com.", false},
		{"blog.sites.example.com:443", false},
		{"127.0.0.1", false},
		{"[::1]", false},
		{"", false},
	}
	for _, tt := range tests {
		if got, err := sites.Serves(tt.name); err != nil || got != tt.want {
			t.Errorf("Serves(%q) = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
}

func TestIsHostName(t *testing.T) {
	for name, want := range map[string]bool{
		"example.com": true, "a-b.example": true, "xn--bcher-kva.example": true, "localhost": true, "1.example.com": true,
		"example.com.": false, "Example.com": false, "example.com:80": false, "a..b": false, "-a.example": false,
		"a-.example": false, "under_score.example": false, "127.0.0.1": false, "127.1": false, "0x7f.1": false,
		"example.0x1f": false, "example.0x": false, "example.123": false, strings.Repeat("a", 64) + ".example": false,
		strings.Repeat("a.", 127) + "a": false, "": false,
	} {
		if got := IsHostName(name); got != want {
			t.Errorf("IsHostName(%q) = %v, want %v", name, got, want)
		}
	}
}

// FuzzServes: whatever the name, Serves answers without an error, only for plain host names, and a
// deployment host only by its id's one spelling.
func FuzzServes(f *testing.F) {
	for _, seed := range []string{"blog--1.sites.example.com", "blog--01.sites.example.com", "blog--+1.sites.example.com",
		"blog--pr-12.sites.example.com", "blog.example.org", "BLOG.sites.example.com.", "0x7f.1", "[::1]:443"} {
		f.Add(seed)
	}
	sites := &Sites{Store: lookup{}, Domain: "sites.example.com", PublicURL: "https://deploy.example.net",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	f.Fuzz(func(t *testing.T, name string) {
		ok, err := sites.Serves(name)
		if err != nil {
			t.Fatalf("Serves(%q): %v", name, err)
		}
		if !ok {
			return
		}
		if !IsHostName(name) {
			t.Fatalf("Serves(%q) though it is not a plain host name", name)
		}
		label, _ := SiteLabel(name, sites.Domain)
		if _, rest, _ := strings.Cut(label, "--"); strings.Trim(rest, "0123456789") == "" && rest != "" {
			if id, err := strconv.ParseInt(rest, 10, 64); err != nil || strconv.FormatInt(id, 10) != rest {
				t.Fatalf("Serves(%q): deployment %q is not spelt as its id", name, rest)
			}
		}
	})
}

// errUnavailable is the failure of a store that cannot answer for now.
var errUnavailable = errors.New("no quorum")

// switchable is lookup, or a store that fails with errUnavailable once down is set.
type switchable struct {
	lookup
	down *atomic.Bool
}

func (s switchable) ProjectBySlug(slug string) (*store.Project, error) {
	if s.down.Load() {
		return nil, fmt.Errorf("reading project: %w", errUnavailable)
	}
	return s.lookup.ProjectBySlug(slug)
}

func TestUnavailableStoreServesWhatAHostLastWas(t *testing.T) {
	root := t.TempDir()
	dir := func(slug string, id int64) string { return filepath.Join(root, slug, strconv.FormatInt(id, 10)) }
	if err := os.MkdirAll(dir("blog", 1), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir("blog", 1), "index.html"), []byte("home"), 0o600); err != nil {
		t.Fatal(err)
	}
	down := new(atomic.Bool)
	sites := &Sites{Store: switchable{down: down}, Dir: dir, Domain: "sites.example.com", Unavailable: errUnavailable,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	h := sites.Handler(http.NotFoundHandler())
	get := func(host string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := get("blog.sites.example.com"); w.Code != http.StatusOK {
		t.Fatalf("with the store up: %d %q", w.Code, w.Body)
	}
	down.Store(true)
	if w := get("blog.sites.example.com"); w.Code != http.StatusOK || w.Body.String() != "home" {
		t.Fatalf("a host served before, with the store down: %d %q, want its last deployment", w.Code, w.Body)
	}
	w := get("blog--1.sites.example.com")
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("a host never served, with the store down: %d %q, want 503 with Retry-After", w.Code, w.Body)
	}
}
