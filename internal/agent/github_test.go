package agent_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/github/githubtest"
	"github.com/miaobu/miaobu/internal/store"
)

const (
	ghToken   = "ghp_fake-token-that-must-never-show"
	publicURL = "https://deploy.example.com"
	tipSHA    = "6dcb09b5b57875f334f61aebed695e2e4193db5e"
	otherSHA  = "0123456789abcdef0123456789abcdef01234567"
)

// githubAgent starts an agent whose GitHub is a fake serving repo, with cfg changed by configure.
func githubAgent(t *testing.T, repo githubtest.Repo, configure func(*config.Config)) (*agenttest.Agent, *githubtest.Server) {
	t.Helper()
	gh := githubtest.New(t, ghToken)
	gh.AddRepo(repo)
	cfg := agenttest.Config(t)
	cfg.GitHub.APIURL, cfg.GitHub.Token, cfg.PublicURL = gh.URL, ghToken, publicURL
	if configure != nil {
		configure(cfg)
	}
	return agenttest.StartWith(t, cfg, agenttest.Options{APIOnly: true}), gh
}

// siteRepo is acme/site, a Vite project with an npm lockfile on branch main.
func siteRepo() githubtest.Repo {
	return githubtest.Repo{FullName: "acme/site", DefaultBranch: "main",
		Branches: map[string]string{"main": tipSHA, "feature/x": otherSHA},
		Files: map[string]string{
			"package.json":      `{"scripts":{"build":"vite build"},"devDependencies":{"vite":"^5.2.0"}}`,
			"package-lock.json": `{}`, ".nvmrc": "20\n", "index.html": "<!doctype html>",
		}}
}

// importRepo posts an import and returns the status, the decoded answer and the raw body.
func importRepo(t *testing.T, ta *agenttest.Agent, repo string, req api.ImportRequest) (int, api.ImportResult, string) {
	t.Helper()
	owner, name, _ := strings.Cut(repo, "/")
	var raw json.RawMessage
	status := ta.Call(t, "POST", api.ImportPath(owner, name), req, 0, &raw)
	var out api.ImportResult
	if status == http.StatusCreated {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("import answer %s: %v", raw, err)
		}
	}
	if strings.Contains(string(raw), ghToken) {
		t.Errorf("import answer shows the GitHub token: %s", raw)
	}
	return status, out, string(raw)
}

// storedProject reads a project from the store, secret included.
func storedProject(t *testing.T, ta *agenttest.Agent, id int64) *store.Project {
	t.Helper()
	p, err := ta.Store.Project(id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// apiRequests are the requests GitHub received, without the contents reads of detection.
func apiRequests(gh *githubtest.Server) []string {
	return slices.DeleteFunc(gh.Requests(), func(r string) bool { return strings.Contains(r, "/contents/") })
}

// checkRequests fails the test unless GitHub received exactly want, contents reads aside.
func checkRequests(t *testing.T, gh *githubtest.Server, want ...string) {
	t.Helper()
	if got := apiRequests(gh); !slices.Equal(got, want) {
		t.Errorf("GitHub received\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestImport(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		repo     githubtest.Repo
		req      api.ImportRequest
		slug     string
		root     string
		detected api.Detected
	}{
		{
			name: "vite",
			repo: siteRepo(),
			slug: "site",
			detected: api.Detected{Framework: "vite", PackageManager: "npm", InstallCommand: "npm ci",
				BuildCommand: "npm run build", OutputDirectory: "dist", NodeVersion: "20"},
		},
		{
			name: "create-react-app",
			repo: githubtest.Repo{FullName: "acme/site", DefaultBranch: "trunk", Private: true, Branches: map[string]string{"trunk": tipSHA},
				Files: map[string]string{"package.json": `{"scripts":{"build":"react-scripts build"},"dependencies":{"react":"^18","react-scripts":"5.0.1"}}`, "yarn.lock": "# yarn lockfile v1\n"}},
			slug: "site",
			detected: api.Detected{Framework: "create-react-app", PackageManager: "yarn", InstallCommand: "yarn install --frozen-lockfile",
				BuildCommand: "yarn run build", OutputDirectory: "build"},
		},
		{
			name:     "plain static",
			repo:     githubtest.Repo{FullName: "acme/site", DefaultBranch: "main", Branches: map[string]string{"main": tipSHA}, Files: map[string]string{"index.html": "<h1>hi</h1>", "css/site.css": "h1{}"}},
			slug:     "site",
			detected: api.Detected{Framework: "static", OutputDirectory: "."},
		},
		{
			name: "pnpm monorepo package",
			repo: githubtest.Repo{FullName: "acme/site", DefaultBranch: "main", Branches: map[string]string{"main": tipSHA}, Files: map[string]string{
				"package.json": `{"private":true}`, "pnpm-lock.yaml": "lockfileVersion: '9.0'\n", "pnpm-workspace.yaml": "packages:\n  - packages/*\n",
				"packages/web/package.json": `{"scripts":{"build":"vite build"},"devDependencies":{"vite":"^5"}}`,
				"packages/api/package.json": `{"scripts":{"build":"tsc"}}`,
			}},
			req:  api.ImportRequest{RootDirectory: "packages/web"},
			slug: "site-web",
			root: "packages/web",
			detected: api.Detected{Framework: "vite", PackageManager: "pnpm", InstallCommand: "pnpm install --frozen-lockfile",
				BuildCommand: "pnpm run build", OutputDirectory: "dist"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ta, gh := githubAgent(t, tt.repo, nil)
			code, res, raw := importRepo(t, ta, "acme/site", tt.req)
			if code != http.StatusCreated {
				t.Fatalf("import = %d %s", code, raw)
			}
			tt.detected.CommitSHA, tt.detected.Notes = tipSHA, res.Detected.Notes
			if !reflect.DeepEqual(res.Detected, tt.detected) {
				t.Errorf("detected = %+v\nwant       %+v", res.Detected, tt.detected)
			}
			p := res.Project
			stored := storedProject(t, ta, p.ID)
			hookURL := fmt.Sprintf("%s/api/v1/webhooks/github/%d", publicURL, p.ID)
			wantHooks := []githubtest.Hook{{ID: 101, URL: hookURL, Secret: stored.WebhookSecret, Events: github.HookEvents}}
			if hooks := gh.Hooks("acme/site"); !reflect.DeepEqual(hooks, wantHooks) {
				t.Errorf("hooks on GitHub = %+v, want %+v", hooks, wantHooks)
			}
			if p.Slug != tt.slug || p.Repo == nil || *p.Repo != "acme/site" || p.RepoURL != "http://127.0.0.1:9/acme/site.git" ||
				p.DefaultBranch != tt.repo.DefaultBranch || p.RootDirectory != tt.root || !p.WebhookConfigured ||
				p.WebhookID == nil || *p.WebhookID != 101 || p.WebhookURL != hookURL || stored.Private != tt.repo.Private {
				t.Errorf("project = %+v", p)
			}
			// Detected settings are not stored: the build detects them again from each commit.
			if p.Framework != "" || p.BuildCommand != "" || p.InstallCommand != "" || p.OutputDirectory != "" {
				t.Errorf("import stored detected settings: %+v", p)
			}
			if res.Webhook != (api.ImportWebhook{Status: api.HookCreated}) || len(res.Warnings) != 0 {
				t.Errorf("webhook = %+v, warnings = %q", res.Webhook, res.Warnings)
			}
			d := res.Deployment
			if d == nil || d.Trigger != api.TriggerImport || d.CommitSHA != tipSHA || d.Status != api.StatusQueued ||
				d.Branch != tt.repo.DefaultBranch || d.CommitMessage != "Tip of "+tt.repo.DefaultBranch || d.CommitAuthor != "Mona Lisa" {
				t.Errorf("deployment = %+v", d)
			}
			if strings.Contains(raw, stored.WebhookSecret) {
				t.Errorf("import answer shows the webhook secret: %s", raw)
			}
			checkRequests(t, gh, "GET /repos/acme/site", "GET /repos/acme/site/branches/"+tt.repo.DefaultBranch,
				"GET /repos/acme/site/hooks", "POST /repos/acme/site/hooks")
		})
	}
}

func TestImportFlagsWin(t *testing.T) {
	t.Parallel()
	ta, gh := githubAgent(t, siteRepo(), nil)
	code, res, raw := importRepo(t, ta, "acme/site", api.ImportRequest{Branch: "feature/x", Name: "Marketing Site",
		BuildCommand: "npm run build:prod", OutputDirectory: "public", Target: "local", NoWebhook: true, NoDeploy: true})
	if code != http.StatusCreated {
		t.Fatalf("import = %d %s", code, raw)
	}
	p := res.Project
	if p.Slug != "marketing-site" || p.DefaultBranch != "feature/x" || p.BuildCommand != "npm run build:prod" ||
		p.OutputDirectory != "public" || p.InstallCommand != "" || p.WebhookConfigured || p.WebhookID != nil {
		t.Errorf("project = %+v", p)
	}
	if res.Detected.CommitSHA != otherSHA || res.Webhook.Status != api.HookSkipped || res.Deployment != nil {
		t.Errorf("answer = %+v", res)
	}
	if storedProject(t, ta, p.ID).WebhookSecret != "" {
		t.Error("--no-webhook stored a secret")
	}
	checkRequests(t, gh, "GET /repos/acme/site", "GET /repos/acme/site/branches/feature%2Fx")
}

func TestImportHookRefused(t *testing.T) {
	t.Parallel()
	ta, gh := githubAgent(t, siteRepo(), nil)
	gh.Fail("POST /repos/acme/site/hooks", http.StatusForbidden, "Resource not accessible by personal access token")
	code, res, raw := importRepo(t, ta, "acme/site", api.ImportRequest{})
	if code != http.StatusCreated {
		t.Fatalf("import = %d %s", code, raw)
	}
	const refused = "GitHub refused to create the webhook: the token lacks admin:repo_hook or repo scope"
	if res.Webhook != (api.ImportWebhook{Status: api.HookFailed, Error: refused}) {
		t.Errorf("webhook = %+v", res.Webhook)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], refused) || !strings.Contains(res.Warnings[0], "`miaobu webhook setup site`") {
		t.Errorf("warnings = %q", res.Warnings)
	}
	if res.Project.WebhookConfigured || res.Project.WebhookID != nil || res.Deployment == nil {
		t.Errorf("answer = %+v", res)
	}
	kept := storedProject(t, ta, res.Project.ID).WebhookSecret
	if len(kept) != 43 {
		t.Fatalf("secret not kept after the failed hook: %q", kept)
	}

	// The retry uses the kept secret.
	var answer api.WebhookAnswer
	if code := ta.Call(t, "POST", api.WebhookSetupPath("site"), nil, 0, &answer); code != http.StatusOK || answer.Status != "success" {
		t.Fatalf("setup = %d %+v", code, answer)
	}
	if hooks := gh.Hooks("acme/site"); len(hooks) != 1 || hooks[0].Secret != kept || answer.WebhookID != hooks[0].ID {
		t.Errorf("hooks = %+v, answer %+v", hooks, answer)
	}
}

func TestWebhookSetup(t *testing.T) {
	t.Parallel()
	ta, gh := githubAgent(t, siteRepo(), nil)
	if code, _, raw := importRepo(t, ta, "acme/site", api.ImportRequest{NoWebhook: true, NoDeploy: true}); code != http.StatusCreated {
		t.Fatalf("import = %d %s", code, raw)
	}
	hookURL := publicURL + "/api/v1/webhooks/github/1"
	setup := func(wantStatus string) api.WebhookAnswer {
		t.Helper()
		var answer api.WebhookAnswer
		if code := ta.Call(t, "POST", api.WebhookSetupPath("1"), nil, 0, &answer); code != http.StatusOK || answer.Status != wantStatus || answer.WebhookURL != hookURL {
			t.Fatalf("setup = %d %+v, want status %s", code, answer, wantStatus)
		}
		return answer
	}
	first := setup("success")
	if first.Message != "Webhook created successfully" || first.WebhookID != 101 {
		t.Errorf("first setup = %+v", first)
	}
	if again := setup("already_configured"); again.Message != "Webhook is already configured for this project" || again.WebhookID != 101 {
		t.Errorf("second setup = %+v", again)
	}
	secret := storedProject(t, ta, 1).WebhookSecret
	if hooks := gh.Hooks("acme/site"); !reflect.DeepEqual(hooks, []githubtest.Hook{{ID: 101, URL: hookURL, Secret: secret, Events: github.HookEvents}}) {
		t.Errorf("hooks after two setups = %+v", hooks)
	}

	// A stored hook deleted on GitHub is created again, with the same secret.
	gh.RemoveHook("acme/site", 101)
	if recreated := setup("success"); recreated.WebhookID != 102 {
		t.Errorf("setup after the hook was deleted = %+v", recreated)
	}
	if hooks := gh.Hooks("acme/site"); len(hooks) != 1 || hooks[0].Secret != secret || storedProject(t, ta, 1).WebhookID != 102 {
		t.Errorf("hooks = %+v", hooks)
	}
	checkRequests(t, gh, "GET /repos/acme/site", "GET /repos/acme/site/branches/main",
		"GET /repos/acme/site/hooks", "POST /repos/acme/site/hooks", // first setup
		"GET /repos/acme/site/hooks",                                                              // already configured
		"GET /repos/acme/site/hooks", "GET /repos/acme/site/hooks", "POST /repos/acme/site/hooks") // gone, created again
}

func TestWebhookSetupAfterPublicURLChange(t *testing.T) {
	t.Parallel()
	ta, gh := githubAgent(t, siteRepo(), nil)
	if code, _, raw := importRepo(t, ta, "acme/site", api.ImportRequest{NoDeploy: true}); code != http.StatusCreated {
		t.Fatalf("import = %d %s", code, raw)
	}
	ta.Config.PublicURL = "https://new.example.com"
	var answer api.WebhookAnswer
	if code := ta.Call(t, "POST", api.WebhookSetupPath("site"), nil, 0, &answer); code != http.StatusOK || answer.Status != "success" ||
		answer.WebhookID != 101 || answer.WebhookURL != "https://new.example.com/api/v1/webhooks/github/1" {
		t.Fatalf("setup = %d %+v", code, answer)
	}
	want := []githubtest.Hook{{ID: 101, URL: answer.WebhookURL, Secret: storedProject(t, ta, 1).WebhookSecret, Events: github.HookEvents}}
	if hooks := gh.Hooks("acme/site"); !reflect.DeepEqual(hooks, want) {
		t.Errorf("hooks = %+v, want %+v", hooks, want)
	}
}

func TestWebhookSetupAdoptsHookWithOurURL(t *testing.T) {
	t.Parallel()
	ta, gh := githubAgent(t, siteRepo(), nil)
	if code, _, raw := importRepo(t, ta, "acme/site", api.ImportRequest{NoWebhook: true, NoDeploy: true}); code != http.StatusCreated {
		t.Fatalf("import = %d %s", code, raw)
	}
	hookURL := publicURL + "/api/v1/webhooks/github/1"
	gh.AddHook("acme/site", "https://ci.example.com/hook", "other")
	left := gh.AddHook("acme/site", hookURL, "left-by-an-earlier-install")
	var answer api.WebhookAnswer
	if code := ta.Call(t, "POST", api.WebhookSetupPath("site"), nil, 0, &answer); code != http.StatusOK || answer.Status != "success" || answer.WebhookID != left {
		t.Fatalf("setup = %d %+v", code, answer)
	}
	p := storedProject(t, ta, 1)
	hooks := gh.Hooks("acme/site")
	if len(hooks) != 2 || hooks[1].ID != left || hooks[1].Secret != p.WebhookSecret || p.WebhookID != left {
		t.Errorf("hooks = %+v, project hook %d", hooks, p.WebhookID)
	}
	checkRequests(t, gh, "GET /repos/acme/site", "GET /repos/acme/site/branches/main",
		"GET /repos/acme/site/hooks", fmt.Sprintf("PATCH /repos/acme/site/hooks/%d", left))
}

func TestWebhookDelete(t *testing.T) {
	t.Parallel()
	ta, gh := githubAgent(t, siteRepo(), nil)
	if code, _, raw := importRepo(t, ta, "acme/site", api.ImportRequest{NoDeploy: true}); code != http.StatusCreated {
		t.Fatalf("import = %d %s", code, raw)
	}
	gh.RemoveHook("acme/site", 101) // deleted by hand on GitHub: the DELETE answers 404
	var answer api.WebhookAnswer
	if code := ta.Call(t, "DELETE", api.WebhookDeletePath("site"), nil, 0, &answer); code != http.StatusOK ||
		answer != (api.WebhookAnswer{Status: "success", Message: "Webhook deleted successfully"}) {
		t.Fatalf("delete = %d %+v", code, answer)
	}
	if p := storedProject(t, ta, 1); p.WebhookID != 0 || p.WebhookSecret != "" {
		t.Errorf("project keeps its hook: %+v", p)
	}
	answer = api.WebhookAnswer{}
	if code := ta.Call(t, "DELETE", api.WebhookDeletePath("site"), nil, 0, &answer); code != http.StatusOK ||
		answer != (api.WebhookAnswer{Status: "not_configured", Message: "No webhook configured for this project"}) {
		t.Fatalf("second delete = %d %+v", code, answer)
	}
	checkRequests(t, gh, "GET /repos/acme/site", "GET /repos/acme/site/branches/main",
		"GET /repos/acme/site/hooks", "POST /repos/acme/site/hooks", "DELETE /repos/acme/site/hooks/101")
}

func TestWebhookRotate(t *testing.T) {
	t.Parallel()
	ta, gh := githubAgent(t, siteRepo(), nil)
	if code, _, raw := importRepo(t, ta, "acme/site", api.ImportRequest{NoDeploy: true}); code != http.StatusCreated {
		t.Fatalf("import = %d %s", code, raw)
	}
	before := storedProject(t, ta, 1).WebhookSecret
	var answer api.WebhookAnswer
	if code := ta.Call(t, "POST", api.WebhookRotatePath("site"), nil, 0, &answer); code != http.StatusOK ||
		answer.Status != "success" || answer.WebhookSecret != "" || answer.WebhookID != 101 {
		t.Fatalf("rotate = %d %+v", code, answer)
	}
	after := storedProject(t, ta, 1).WebhookSecret
	if after == before || len(after) != 43 || gh.Hooks("acme/site")[0].Secret != after {
		t.Errorf("secret not rotated on GitHub and in the store together: GitHub %+v, store %q", gh.Hooks("acme/site"), after)
	}

	// A hand-made hook gets the new secret once, to paste into the forge.
	manual := ta.AddProject(t, remoteProject("manual", "main"))
	answer = api.WebhookAnswer{}
	if code := ta.Call(t, "POST", api.WebhookRotatePath("manual"), nil, 0, &answer); code != http.StatusOK ||
		answer.WebhookSecret == "" || answer.WebhookSecret == manual.WebhookSecret || answer.WebhookSecret != storedProject(t, ta, manual.ID).WebhookSecret {
		t.Errorf("rotate of a hand-made hook = %d %+v", code, answer)
	}
	checkRequests(t, gh, "GET /repos/acme/site", "GET /repos/acme/site/branches/main",
		"GET /repos/acme/site/hooks", "POST /repos/acme/site/hooks", "PATCH /repos/acme/site/hooks/101")
}

func TestProjectDeleteRemovesHook(t *testing.T) {
	t.Parallel()
	ta, gh := githubAgent(t, siteRepo(), nil)
	if code, _, raw := importRepo(t, ta, "acme/site", api.ImportRequest{}); code != http.StatusCreated {
		t.Fatalf("import = %d %s", code, raw)
	}
	if code := ta.Call(t, "DELETE", projectsPath("site"), nil, 0, nil); code != http.StatusOK {
		t.Fatalf("delete = %d", code)
	}
	if hooks := gh.Hooks("acme/site"); len(hooks) != 0 {
		t.Errorf("hooks left after the project was deleted: %+v", hooks)
	}
	checkRequests(t, gh, "GET /repos/acme/site", "GET /repos/acme/site/branches/main",
		"GET /repos/acme/site/hooks", "POST /repos/acme/site/hooks", "DELETE /repos/acme/site/hooks/101")
}

// projectsPath is the API path of a project.
func projectsPath(ref string) string { return api.PathProjects + "/" + ref }

func TestDeployResolvesTipThroughAPI(t *testing.T) {
	t.Parallel()
	ta, gh := githubAgent(t, siteRepo(), nil)
	if code, _, raw := importRepo(t, ta, "acme/site", api.ImportRequest{NoWebhook: true, NoDeploy: true}); code != http.StatusCreated {
		t.Fatalf("import = %d %s", code, raw)
	}
	var d api.Deployment
	if code := ta.Call(t, "POST", projectsPath("site")+"/deploy", nil, 0, &d); code != http.StatusCreated ||
		d.CommitSHA != tipSHA || d.Trigger != api.TriggerManual || d.CommitAuthor != "Mona Lisa" {
		t.Fatalf("deploy = %d %+v", code, d)
	}
	checkRequests(t, gh, "GET /repos/acme/site", "GET /repos/acme/site/branches/main", "GET /repos/acme/site/branches/main")
}

func TestImportErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		configure func(*config.Config)
		prepare   func(*githubtest.Server)
		repo      string
		req       api.ImportRequest
		code      int
		detail    string
		requests  []string
	}{
		{
			name:     "expired token",
			prepare:  (*githubtest.Server).ExpireToken,
			repo:     "acme/site",
			code:     http.StatusBadGateway,
			detail:   "GitHub rejected the token (expired or revoked): set a new one in MIAOBU_GITHUB_TOKEN",
			requests: []string{"GET /repos/acme/site"},
		},
		{
			name:      "no token",
			configure: func(c *config.Config) { c.GitHub.Token = "" },
			repo:      "acme/site",
			code:      http.StatusBadRequest,
			detail:    "no GitHub token: set MIAOBU_GITHUB_TOKEN (or GITHUB_TOKEN or GH_TOKEN) to a token with the repo and admin:repo_hook scopes",
		},
		{
			name:     "unknown repository",
			repo:     "acme/nope",
			code:     http.StatusNotFound,
			detail:   "repository acme/nope not found or the token cannot see it",
			requests: []string{"GET /repos/acme/nope"},
		},
		{
			name:      "all-interfaces public URL",
			configure: func(c *config.Config) { c.PublicURL = "http://0.0.0.0:8000" },
			repo:      "acme/site",
			code:      http.StatusBadRequest,
			detail:    "Cannot create a webhook: public_url http://0.0.0.0:8000 is an all-interfaces address that GitHub cannot call: set public_url (MIAOBU_PUBLIC_URL) to the agent's public address, or import with --no-webhook",
		},
		{
			name:     "root directory not in the repository",
			repo:     "acme/site",
			req:      api.ImportRequest{RootDirectory: "apps/web"},
			code:     http.StatusBadRequest,
			detail:   "Root directory apps/web not found in acme/site at main (6dcb09b)",
			requests: []string{"GET /repos/acme/site", "GET /repos/acme/site/branches/main"},
		},
		{
			name: "invalid package.json",
			prepare: func(gh *githubtest.Server) {
				repo := siteRepo()
				repo.Files["package.json"] = "{\n  \"scripts\": {,\n}"
				gh.AddRepo(repo)
			},
			repo:     "acme/site",
			code:     http.StatusBadRequest,
			detail:   "Cannot detect the build settings of acme/site at main (6dcb09b): invalid package.json: package.json: line 2: invalid character ',' looking for beginning of object key string",
			requests: []string{"GET /repos/acme/site", "GET /repos/acme/site/branches/main"},
		},
		{
			name:   "root directory outside the repository",
			repo:   "acme/site",
			req:    api.ImportRequest{RootDirectory: "../x"},
			code:   http.StatusBadRequest,
			detail: `root directory: "../x" must be a path inside the repository`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ta, gh := githubAgent(t, siteRepo(), tt.configure)
			if tt.prepare != nil {
				tt.prepare(gh)
			}
			code, _, raw := importRepo(t, ta, tt.repo, tt.req)
			var e api.Error
			_ = json.Unmarshal([]byte(raw), &e)
			if code != tt.code || e.Detail != tt.detail {
				t.Errorf("import = %d %q\nwant     %d %q", code, e.Detail, tt.code, tt.detail)
			}
			checkRequests(t, gh, tt.requests...)
			if projects, _ := ta.Store.Projects(); len(projects) != 0 {
				t.Errorf("a failed import stored %d projects", len(projects))
			}
		})
	}
}

func TestImportTwiceConflicts(t *testing.T) {
	t.Parallel()
	ta, _ := githubAgent(t, siteRepo(), nil)
	if code, _, raw := importRepo(t, ta, "acme/site", api.ImportRequest{NoWebhook: true, NoDeploy: true}); code != http.StatusCreated {
		t.Fatalf("import = %d %s", code, raw)
	}
	code, _, raw := importRepo(t, ta, "acme/site", api.ImportRequest{NoWebhook: true, NoDeploy: true})
	if code != http.StatusConflict || !strings.Contains(raw, "repository acme/site is already imported as project 1") {
		t.Errorf("second import = %d %s", code, raw)
	}
}

func TestImportLoopbackWarning(t *testing.T) {
	t.Parallel()
	ta, _ := githubAgent(t, siteRepo(), func(c *config.Config) { c.PublicURL = "http://127.0.0.1:8000" })
	code, res, raw := importRepo(t, ta, "acme/site", api.ImportRequest{NoDeploy: true})
	if code != http.StatusCreated || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "ngrok http 8000") ||
		!strings.Contains(res.Warnings[0], "cloudflared tunnel --url http://127.0.0.1:8000") {
		t.Errorf("import = %d %s", code, raw)
	}
}
