package domain

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/buildcache"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/github/githubtest"
	"github.com/miaobu/miaobu/internal/notify"
	"github.com/miaobu/miaobu/internal/oss/ossfake"
	"github.com/miaobu/miaobu/internal/publish"
	"github.com/miaobu/miaobu/internal/report"
	"github.com/miaobu/miaobu/internal/store"
)

const (
	token    = "ghp_domain-test-token"
	tipSHA   = "6dcb09b5b57875f334f61aebed695e2e4193db5e"
	otherSHA = "0123456789abcdef0123456789abcdef01234567"
)

// queue records what the service asked of the build queue.
type queue struct {
	wakes   int
	stopped []int64
}

func (q *queue) Wake()                   { q.wakes++ }
func (q *queue) Stop(deploymentID int64) { q.stopped = append(q.stopped, deploymentID) }

// fixture is a Service on a store in a temporary directory, a fake GitHub serving acme/site, and
// a recorded build queue.
type fixture struct {
	svc    *Service
	store  *store.Store
	github *githubtest.Server
	queue  *queue
}

// newFixture builds a fixture; configure may change the configuration first.
func newFixture(t *testing.T, configure func(*config.Config)) *fixture {
	t.Helper()
	gh := githubtest.New(t, token)
	gh.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main", Branches: map[string]string{"main": tipSHA},
		Files: map[string]string{"package.json": `{"scripts":{"build":"vite build"},"devDependencies":{"vite":"^5.2.0"}}`,
			"package-lock.json": `{}`}})
	cfg := &config.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:8000", PublicURL: "https://deploy.example.com",
		Sites: config.Sites{Domain: "localhost"}, Target: "local"}
	cfg.GitHub.APIURL, cfg.GitHub.Token = gh.URL, token
	if configure != nil {
		configure(cfg)
	}
	st, err := store.Open(cfg.DataDir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	client, err := github.New(github.Options{APIURL: cfg.GitHub.APIURL, Token: cfg.GitHub.Token})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: st, github: gh, queue: &queue{}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reports := report.New(report.Options{GitHub: client, HasToken: true, Statuses: true, Deployments: true, PublicURL: cfg.PublicURL,
		LiveURL:       func(p *store.Project) string { return f.svc.LiveURL(p) },
		DeploymentURL: func(p *store.Project, d *store.Deployment) string { return f.svc.DeploymentURL(p, d) },
		Store:         st, Log: log})
	notifier := notify.New(notify.Options{Store: st, PublicURL: cfg.PublicURL, Log: log,
		AllowPrivateNetworks: cfg.Notifications.AllowPrivateNetworks,
		Views: func(p *store.Project, d *store.Deployment) (api.Project, api.Deployment) {
			return api.Project{ID: p.ID, Name: p.Name}, api.Deployment{ID: d.ID, ProjectID: d.ProjectID}
		}})
	f.svc = New(Options{Config: cfg, Store: st, GitHub: client, Builds: f.queue, Reports: reports,
		Targets: publish.NewTargets(cfg), Notifier: notifier, Caches: buildcache.New(filepath.Join(cfg.DataDir, "cache")), Log: log})
	return f
}

// addProject stores a hand-made project from a git URL.
func (f *fixture) addProject(t *testing.T, name string) *store.Project {
	t.Helper()
	p, err := f.svc.CreateProject(context.Background(), NewProject{Name: name, RepoURL: "https://example.com/" + name + ".git", Branch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkError fails the test unless err is an *Error of kind with detail.
func checkError(t *testing.T, err error, kind Kind, detail string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Kind != kind || e.Detail != detail {
		t.Errorf("error %#v, want kind %d %q", err, kind, detail)
	}
}

func TestErrorsOfProjects(t *testing.T) {
	f := newFixture(t, nil)
	p := f.addProject(t, "blog")
	ctx := context.Background()
	blank, bad := "", "svelte-kit"
	tests := []struct {
		name   string
		call   func() error
		kind   Kind
		detail string
	}{
		{"unknown slug", func() error { _, err := f.svc.Project("nope"); return err }, NotFound, "Project nope not found"},
		{"unknown id", func() error { _, err := f.svc.Project("42"); return err }, NotFound, "Project 42 not found"},
		{"no name", func() error {
			_, err := f.svc.CreateProject(ctx, NewProject{Name: " ", RepoURL: "https://example.com/x.git"})
			return err
		}, Invalid, "A project needs a name"},
		{"credentials in the URL", func() error {
			_, err := f.svc.CreateProject(ctx, NewProject{Name: "x", RepoURL: "https://u:p@example.com/x.git"})
			return err
		}, Invalid, "put no credentials in the repository URL: they would be stored and shown; use an SSH key or a token in the agent's config"},
		{"unknown framework", func() error {
			_, err := f.svc.UpdateProject("blog", ProjectChange{Settings: Settings{Framework: &bad}})
			return err
		}, Invalid, `unknown framework "svelte-kit"`},
		{"empty branch", func() error { _, err := f.svc.UpdateProject("blog", ProjectChange{Branch: &blank}); return err }, Invalid, `"" is not a valid branch name`},
		{"reserved variable", func() error { _, err := f.svc.SetEnv("blog", map[string]string{"HOME": "/x"}); return err }, Invalid,
			"HOME is set by the build itself and cannot be changed"},
		{"variable not set", func() error { _, err := f.svc.UnsetEnv("blog", "TOKEN"); return err }, NotFound, "Variable TOKEN is not set in project blog"},
		{"unknown deployment", func() error { _, _, err := f.svc.Deployment("7"); return err }, NotFound, "Deployment 7 not found"},
		{"deployment that is no number", func() error { _, _, err := f.svc.Deployment("x"); return err }, NotFound, "Deployment x not found"},
		{"rollback with no history", func() error { _, _, err := f.svc.Rollback(ctx, "blog", 0); return err }, Conflict,
			"Project blog has no earlier successful deployment to roll back to"},
		{"deploy of a short SHA", func() error { _, _, err := f.svc.Deploy(ctx, "blog", "abc123", "", false); return err }, Invalid,
			`"abc123" is not a full commit SHA (40 hex characters)`},
		{"rotate of a GitHub project without hook", func() error {
			_, err := f.store.UpdateProject(p.ID, func(p *store.Project) error { p.Repo = "acme/blog"; return nil })
			if err != nil {
				return err
			}
			_, err = f.svc.RotateWebhook(ctx, "blog")
			return err
		}, Conflict, "Project blog has no GitHub webhook: create one with `miaobu webhook setup blog`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkError(t, tt.call(), tt.kind, tt.detail) })
	}
}

func TestCancelFinishedConflicts(t *testing.T) {
	f := newFixture(t, nil)
	f.addProject(t, "blog")
	ctx := context.Background()
	d, _, err := f.svc.Deploy(ctx, "blog", tipSHA, "", false)
	if err != nil || f.queue.wakes != 1 {
		t.Fatalf("deploy: %v, %d wakes", err, f.queue.wakes)
	}
	if _, _, err := f.svc.Cancel("1"); err != nil || !slices.Equal(f.queue.stopped, []int64{d.ID}) {
		t.Fatalf("cancel: %v, stopped %v", err, f.queue.stopped)
	}
	_, _, err = f.svc.Cancel("1")
	checkError(t, err, Conflict, "Deployment 1 has already finished (cancelled)")
}

func TestImport(t *testing.T) {
	f := newFixture(t, nil)
	imp, err := f.svc.Import(context.Background(), ImportRequest{Owner: "acme", Repo: "site"})
	if err != nil {
		t.Fatal(err)
	}
	p, d := imp.Project, imp.Deployment
	if p.Slug != "site" || p.Repo != "acme/site" || p.DefaultBranch != "main" || p.WebhookID == 0 || p.WebhookSecret == "" ||
		imp.Hook != HookCreated || imp.CommitSHA != tipSHA || imp.Detected.Framework != "vite" || len(imp.Warnings) != 0 {
		t.Errorf("import %+v, project %+v", imp, p)
	}
	if d == nil || d.Trigger != store.TriggerImport || d.CommitSHA != tipSHA || d.Status != store.StatusQueued || f.queue.wakes != 1 {
		t.Errorf("first deployment %+v, %d wakes", d, f.queue.wakes)
	}
	hooks := f.github.Hooks("acme/site")
	if len(hooks) != 1 || hooks[0].URL != "https://deploy.example.com/api/v1/webhooks/github/1" || hooks[0].Secret != p.WebhookSecret {
		t.Errorf("hooks %+v", hooks)
	}

	_, err = f.svc.Import(context.Background(), ImportRequest{Owner: "acme", Repo: "site", NoWebhook: true})
	checkError(t, err, Conflict, "repository acme/site is already imported as project 1")
}

func TestImportErrors(t *testing.T) {
	root := "apps/web"
	tests := []struct {
		name      string
		configure func(*config.Config)
		req       ImportRequest
		kind      Kind
		detail    string
	}{
		{"unknown repository", nil, ImportRequest{Owner: "acme", Repo: "nope"}, NotFound,
			"repository acme/nope not found or the token cannot see it"},
		{"no token", func(c *config.Config) { c.GitHub.Token = "" }, ImportRequest{Owner: "acme", Repo: "site"}, Invalid,
			"no GitHub token: set MIAOBU_GITHUB_TOKEN (or GITHUB_TOKEN or GH_TOKEN) to a token with the repo and admin:repo_hook scopes"},
		{"missing root directory", nil, ImportRequest{Owner: "acme", Repo: "site", Settings: Settings{RootDirectory: &root}}, Invalid,
			"Root directory apps/web not found in acme/site at main (6dcb09b)"},
		{"all-interfaces public URL", func(c *config.Config) { c.PublicURL = "http://0.0.0.0:8000" }, ImportRequest{Owner: "acme", Repo: "site"},
			Invalid, "Cannot create a webhook: public_url http://0.0.0.0:8000 is an all-interfaces address that GitHub cannot call: " +
				"set public_url (MIAOBU_PUBLIC_URL) to the agent's public address, or import with --no-webhook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.configure)
			_, err := f.svc.Import(context.Background(), tt.req)
			checkError(t, err, tt.kind, tt.detail)
			if projects, _ := f.store.Projects(); len(projects) != 0 {
				t.Errorf("a failed import stored %d projects", len(projects))
			}
		})
	}
}

func TestExpiredTokenIsUpstream(t *testing.T) {
	f := newFixture(t, nil)
	f.github.ExpireToken()
	_, err := f.svc.Import(context.Background(), ImportRequest{Owner: "acme", Repo: "site"})
	checkError(t, err, Upstream, "GitHub rejected the token (expired or revoked): set a new one in MIAOBU_GITHUB_TOKEN")
	if !errors.Is(err, github.ErrUnauthorized) {
		t.Errorf("the cause is lost: %v", errors.Unwrap(err))
	}
}

// deployKept queues a deployment of sha in project p, keeps an output for it and releases it.
func (f *fixture) deployKept(t *testing.T, p *store.Project, sha string) int64 {
	t.Helper()
	ctx := context.Background()
	d, _, err := f.svc.Deploy(ctx, p.Slug, sha, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.ClaimNext(func(int64) bool { return false }); err != nil {
		t.Fatal(err)
	}
	dir := f.svc.SiteDir(p.Slug, d.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(sha), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Release(ctx, p, d, "static", false, io.Discard); err != nil {
		t.Fatal(err)
	}
	return d.ID
}

func TestRollbackFailures(t *testing.T) {
	f := newFixture(t, nil)
	p := f.addProject(t, "blog")
	ctx := context.Background()
	first := f.deployKept(t, p, tipSHA)
	second := f.deployKept(t, p, otherSHA)

	_, _, err := f.svc.Rollback(ctx, "blog", second)
	checkError(t, err, Conflict, "Deployment 2 is already live")
	_, _, err = f.svc.Rollback(ctx, "blog", 99)
	checkError(t, err, NotFound, "Deployment 99 not found in project blog")

	if err := os.RemoveAll(f.svc.SiteDir(p.Slug, first)); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.Rollback(ctx, "blog", 0)
	checkError(t, err, Conflict, "Rollback failed: the files of deployment 1 are gone: deploy again")
}

func TestRollbackOfOSSFailingIsUpstream(t *testing.T) {
	bucket := ossfake.New(t, "sites")
	f := newFixture(t, func(cfg *config.Config) {
		cfg.OSS = config.OSS{Endpoint: bucket.URL, Bucket: "sites", Prefix: "{slug}/", Concurrency: 2, MaxDelete: 100,
			AccessKeyID: "AKID", AccessKeySecret: "secret"}
	})
	oss := "oss"
	f.addProject(t, "shop")
	p, err := f.svc.UpdateProject("shop", ProjectChange{Settings: Settings{Target: &oss}})
	if err != nil {
		t.Fatal(err)
	}
	first := f.deployKept(t, p, tipSHA)
	f.deployKept(t, p, otherSHA)
	if got, _ := bucket.Object("shop/index.html"); string(got.Body) != otherSHA {
		t.Fatalf("live object %q", got.Body)
	}

	bucket.SetFault(func(ossfake.Op, string) int { return http.StatusServiceUnavailable })
	_, _, err = f.svc.Rollback(context.Background(), "shop", first)
	var e *Error
	if !errors.As(err, &e) || e.Kind != Upstream || !strings.HasPrefix(e.Detail, "Rollback failed: uploading deployment 1 to OSS: ") || e.Err == nil {
		t.Fatalf("rollback: %#v", err)
	}
	bucket.SetFault(nil)
	d, p, err := f.svc.Rollback(context.Background(), "shop", 0)
	if err != nil || d.ID != first || p.ActiveDeploymentID != first {
		t.Fatalf("rollback: %v %+v %+v", err, d, p)
	}
	if got, _ := bucket.Object("shop/index.html"); string(got.Body) != tipSHA {
		t.Errorf("live object after the rollback %q", got.Body)
	}
}

func TestDeleteProjectRemovesFiles(t *testing.T) {
	f := newFixture(t, nil)
	p := f.addProject(t, "blog")
	site := f.svc.SiteDir(p.Slug, 1)
	d, _, err := f.svc.Deploy(context.Background(), "blog", tipSHA, "", false)
	if err != nil {
		t.Fatal(err)
	}
	// The deployment's build is running: it has the cache open.
	cache, err := f.svc.caches.Open(p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(site, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.DeleteProject(context.Background(), "blog"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.queue.stopped, []int64{d.ID}) {
		t.Errorf("stopped %v, want the project's build %d", f.queue.stopped, d.ID)
	}
	if _, err := os.Stat(filepath.Dir(site)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the project's sites are still there: %v", err)
	}
	if _, err := os.Stat(cache.Stores()); err != nil {
		t.Errorf("the build cache went before the build using it ended: %v", err)
	}
	if err := cache.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(cache.Stores())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the project's build cache is still there: %v", err)
	}
	_, err = f.svc.Project("blog")
	checkError(t, err, NotFound, "Project blog not found")
}

func TestClearCacheAndDeployWithoutIt(t *testing.T) {
	f := newFixture(t, nil)
	p := f.addProject(t, "blog")
	cache, err := f.svc.caches.Open(p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cache.Stores(), "blob"), []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}
	cleared, freed, err := f.svc.ClearCache("blog")
	if err != nil || cleared.ID != p.ID || freed == 0 {
		t.Errorf("ClearCache = %v, %d, %v", cleared, freed, err)
	}
	if err := cache.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cache.Stores()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the cache is still there: %v", err)
	}
	_, _, err = f.svc.ClearCache("nope")
	checkError(t, err, NotFound, "Project nope not found")

	d, _, err := f.svc.Deploy(context.Background(), "blog", tipSHA, "", true)
	if err != nil || !d.NoCache {
		t.Errorf("Deploy without the cache = %+v, %v", d, err)
	}
	if stored, _ := f.store.Deployment(d.ID); !stored.NoCache {
		t.Error("the deployment does not remember to start from nothing")
	}
}

func TestBranchTipSaysWhatGitSaid(t *testing.T) {
	for _, tc := range []struct{ name, url, want string }{
		{"deleted", filepath.Join(t.TempDir(), "deleted"), "repository not found"},
		{"unreachable", "http://127.0.0.1:1/site.git", "cannot reach the repository: "},
	} {
		_, err := branchTip(context.Background(), tc.url, "main")
		var de *Error
		if !errors.As(err, &de) || de.Kind != Upstream || !strings.Contains(de.Detail, "could not read branch main of "+tc.url+": "+tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// TestUnreadableRemoteNeedsABranch adds a project without a branch from a remote that cannot be
// read: the error says why and to name the branch, and no project is made.
func TestUnreadableRemoteNeedsABranch(t *testing.T) {
	f := newFixture(t, nil)
	missing := "file://" + filepath.Join(t.TempDir(), "gone.git")
	_, err := f.svc.CreateProject(context.Background(), NewProject{Name: "gone", RepoURL: missing})
	var e *Error
	if !errors.As(err, &e) || e.Kind != Upstream || !strings.HasPrefix(e.Detail, "could not read the default branch of "+missing+": ") ||
		!strings.HasSuffix(e.Detail, "(pass --branch to name it)") {
		t.Fatalf("error %#v", err)
	}
	if projects, err := f.svc.Projects(); err != nil || len(projects) != 0 {
		t.Errorf("projects after the refusal: %v %v", projects, err)
	}
}
