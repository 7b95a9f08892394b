package dashboard_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/github/githubtest"
	"github.com/miaobu/miaobu/internal/gittest"
)

// chromium is the browser the browser tests drive: Debian's chromium, or $CHROMIUM.
func chromium() string {
	if path := os.Getenv("CHROMIUM"); path != "" {
		return path
	}
	return "chromium"
}

// browserOnce starts one headless Chromium for the package's browser tests; each test opens its
// own browser context in it, with its own cookies.
var browserOnce = sync.OnceValues(func() (context.Context, error) {
	path, err := exec.LookPath(chromium())
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "chromium-profile-")
	if err != nil {
		return nil, err
	}
	// The defaults run headless, without a first-run page or background networking.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(dir), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true))
	allocator, cancelAllocator := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(allocator)
	stopBrowser = func() {
		cancelBrowser()
		cancelAllocator()
		os.RemoveAll(dir)
	}
	// The first action starts the browser, which then lives as long as this context, with no deadline.
	if err := chromedp.Do(browser); err != nil {
		stopBrowser()
		return nil, err
	}
	return browser, nil
})

// stopBrowser stops the browser that browserOnce started, if it did.
var stopBrowser = func() {}

func TestMain(m *testing.M) {
	code := m.Run()
	stopBrowser()
	os.Exit(code)
}

// newTab opens a tab with its own cookie jar in the package's browser. Without chromium, the test
// is skipped, unless CI is set: there .ci/run installs it and the browser tests must run.
func newTab(t *testing.T) context.Context {
	t.Helper()
	if _, err := exec.LookPath(chromium()); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set but %s is missing: install it (apt-get install chromium)", chromium())
		}
		t.Skipf("browser test skipped: %s is not installed (apt-get install chromium)", chromium())
	}
	browser, err := browserOnce()
	if err != nil {
		t.Fatalf("starting %s: %v", chromium(), err)
	}
	tab, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first action opens the tab, which then lives as long as this context: the later steps
	// run under deadlines of their own.
	if err := chromedp.Do(tab); err != nil {
		t.Fatal(err)
	}
	return tab
}

// do runs steps in the tab within timeout, failing the test on an error.
func do(t *testing.T, tab context.Context, timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// eval evaluates a JavaScript expression in the tab's page.
func eval[T any](t *testing.T, tab context.Context, expression string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expression))
	if err != nil {
		t.Fatalf("%s: %v", expression, err)
	}
	return v
}

// waitFor evaluates a JavaScript expression until it is true, for at most timeout. (Evaluated
// from outside the page, it does not need the page's policy to allow eval, as chromedp's Poll does.)
func waitFor(t *testing.T, tab context.Context, timeout time.Duration, expression string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !eval[bool](t, tab, expression) {
		if time.Now().After(deadline) {
			html := eval[string](t, tab, "document.body ? document.body.innerText : ''")
			t.Fatalf("still not %s after %s; the page shows:\n%s", expression, timeout, html)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// text is the text of the element with id.
func text(t *testing.T, tab context.Context, id string) string {
	t.Helper()
	return eval[string](t, tab, `(document.getElementById(`+strconv.Quote(id)+`) || {}).textContent || ""`)
}

// signInWithLink opens a one-time sign-in link and presses Sign in.
func signInWithLink(t *testing.T, ta *agenttest.Agent, tab context.Context) {
	t.Helper()
	do(t, tab, 20*time.Second, chromedp.Navigate(loginCode(t, ta).URL), chromedp.WaitVisible(chromedp.ID("sign-in")),
		chromedp.Click(chromedp.ID("sign-in")))
	waitFor(t, tab, 10*time.Second, `location.pathname === "/" && document.querySelector("main h1")?.textContent === "Projects"`)
}

// colourfulNodeSite is a Node project whose build prints coloured lines and writes dist/index.html
// with body; it sleeps $SLEEP milliseconds first, so that a page can watch it run.
func colourfulNodeSite(body string) map[string]string {
	return map[string]string{
		"package.json": `{"name":"site","version":"1.0.0","private":true,"scripts":{"build":"node build.js"}}`,
		"build.js": `const fs = require("fs");
if (process.env.SLEEP) { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(process.env.SLEEP)); }
console.log("\x1b[1;32mcompiled\x1b[0m 3 pages in \x1b[33m12 ms\x1b[0m");
console.log("\x1b]8;;javascript:window.__pwned=3\x07a link\x1b]8;;\x07 in the log");
fs.mkdirSync("dist", {recursive: true});
fs.writeFileSync("dist/index.html", ` + "`" + body + "`" + `);
`,
	}
}

func TestBrowserSignInDeployAndRollBack(t *testing.T) {
	tab := newTab(t)
	ta := agenttest.Start(t, agenttest.Config(t))
	repo := gittest.New(t)
	p := ta.AddProject(t, api.ProjectCreate{Name: "Docs site", RepoURL: repo.Dir, Branch: "main"})
	repo.Commit("First version", colourfulNodeSite("version one"))
	var first api.Deployment
	ta.Call(t, "POST", api.PathProjects+"/"+p.Slug+"/deploy", nil, http.StatusCreated, &first)
	first = ta.Deployed(t, first.ID)
	repo.Commit("Second version", colourfulNodeSite("version two"))
	// The next build takes a while, so that its page shows it running.
	ta.Call(t, "PUT", api.PathProjects+"/"+p.Slug+"/env", map[string]string{"SLEEP": "1500"}, http.StatusOK, nil)

	signInWithLink(t, ta, tab)
	row := eval[string](t, tab, `[...document.querySelectorAll("tbody tr")].map(r => r.innerText).join("\n")`)
	if !strings.Contains(row, "Docs site") || !strings.Contains(row, "✓ Enabled") || !strings.Contains(row, "main") ||
		!strings.Contains(row, "deployed") {
		t.Errorf("projects page row: %q", row)
	}
	cookies, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{URLs: []string{ta.URL}})
	if err != nil || len(cookies.Cookies) != 1 {
		t.Fatalf("cookies %v, %v", cookies, err)
	}
	if c := cookies.Cookies[0]; !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || c.Name != "miaobu_session" {
		t.Errorf("session cookie %+v", c)
	}
	if js := eval[string](t, tab, "document.cookie"); js != "" {
		t.Errorf("the page's script can read the cookie: %q", js)
	}

	do(t, tab, 20*time.Second, chromedp.Navigate(ta.URL+"/projects/"+p.Slug), chromedp.WaitVisible(chromedp.ID("deploy")),
		chromedp.Click(chromedp.ID("deploy")))
	waitFor(t, tab, 10*time.Second, `location.pathname.startsWith("/deployments/") && location.pathname !== "/deployments/`+strconv.FormatInt(first.ID, 10)+`"`)
	if stream := eval[string](t, tab, `document.getElementById("log").dataset.stream || ""`); stream == "" {
		t.Errorf("the deployment page was rendered after the build ended: its log did not stream")
	}
	waitFor(t, tab, 60*time.Second, `document.getElementById("status").textContent === "deployed"`)
	log := text(t, tab, "log")
	if !strings.Contains(log, "succeeded") || !strings.Contains(log, "compiled 3 pages in 12 ms") || !strings.Contains(log, "a link in the log") {
		t.Errorf("streamed log:\n%s", log)
	}
	if n := eval[int](t, tab, `document.querySelectorAll("#log span.fg2.bold, #log span.fg3").length`); n != 2 {
		t.Errorf("%d coloured spans in the log, want 2", n)
	}
	if n := eval[int](t, tab, `document.querySelectorAll("#log a, #log img").length`); n != 0 {
		t.Errorf("the log made %d links or images", n)
	}
	if _, body := ta.Site(t, p.Slug, "/"); body != "version two" {
		t.Fatalf("after the dashboard's deploy the site serves %q", body)
	}

	do(t, tab, 20*time.Second, chromedp.Navigate(ta.URL+"/deployments/"+strconv.FormatInt(first.ID, 10)),
		chromedp.WaitVisible(chromedp.ID("rollback")), chromedp.Click(chromedp.ID("rollback")))
	waitFor(t, tab, 10*time.Second, `!document.getElementById("rollback") && document.querySelector("h1 .badge.ok") !== null`)
	if _, body := ta.Site(t, p.Slug, "/"); body != "version one" {
		t.Errorf("after the dashboard's rollback the site serves %q", body)
	}
}

func TestBrowserRunsNoScriptFromTheRepository(t *testing.T) {
	tab := newTab(t)
	const message = `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> fix`
	ta := agenttest.Start(t, agenttest.Config(t))
	repo := gittest.New(t)
	p := ta.AddProject(t, api.ProjectCreate{Name: `<b onmouseover="window.__pwned=4">bold</b>`, RepoURL: repo.Dir, Branch: "main"})
	repo.Commit(message, colourfulNodeSite("hello"))
	var d api.Deployment
	ta.Call(t, "POST", api.PathProjects+"/"+p.Slug+"/deploy", nil, http.StatusCreated, &d)
	ta.Deployed(t, d.ID)

	var mu sync.Mutex
	var refused []string
	messages := chromedp.Console(tab)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if strings.Contains(m.Text, "Content Security Policy") {
				mu.Lock()
				refused = append(refused, m.Text)
				mu.Unlock()
			}
		}
	}()
	signInWithLink(t, ta, tab)
	for _, path := range []string{"/", "/projects/" + p.Slug + `?branch="><script>window.__pwned=6</script>`, "/status", "/deployments/" + strconv.FormatInt(d.ID, 10)} {
		do(t, tab, 20*time.Second, chromedp.Navigate(ta.URL+path), chromedp.WaitReady(chromedp.CSS("main")))
		if pwned := eval[bool](t, tab, "window.__pwned !== undefined"); pwned {
			t.Errorf("%s ran script from outside: window.__pwned = %v", path, eval[int](t, tab, "window.__pwned"))
		}
	}
	if got := text(t, tab, "commit-message"); got != message {
		t.Errorf("commit message shows as %q, want it literally", got)
	}
	// The pages need nothing the policy forbids: the browser refused no inline script or style.
	mu.Lock()
	defer mu.Unlock()
	for _, text := range refused {
		t.Errorf("the browser refused part of a page: %s", text)
	}
}

// TestScreenshots writes docs/dashboard-projects.png and docs/dashboard-deployment.png when
// MIAOBU_SCREENSHOTS=1: `MIAOBU_SCREENSHOTS=1 go test ./internal/dashboard -run Screenshots`.
func TestScreenshots(t *testing.T) {
	if os.Getenv("MIAOBU_SCREENSHOTS") == "" {
		t.Skip("set MIAOBU_SCREENSHOTS=1 to write the README's screenshots into docs/")
	}
	tab := newTab(t)
	// acme/blog and acme/docs are on a fake GitHub whose clone URLs are a git server on loopback.
	const token = "ghp_screenshots"
	gh := githubtest.New(t, token)
	root := t.TempDir()
	git := httptest.NewServer(&cgi.Handler{Path: "/usr/bin/git", Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}})
	t.Cleanup(git.Close)
	for name, files := range map[string]map[string]string{"blog": colourfulNodeSite("blog"), "docs": {"index.html": "docs"}} {
		repo := gittest.New(t)
		sha := repo.Commit("Add the archive page", files)
		repo.Git("clone", "-q", "--bare", repo.Dir, filepath.Join(root, name+".git"))
		gh.AddRepo(githubtest.Repo{FullName: "acme/" + name, DefaultBranch: "main", Branches: map[string]string{"main": sha},
			Files: files, CloneURL: git.URL + "/" + name + ".git"})
	}
	cfg := agenttest.Config(t)
	cfg.GitHub.APIURL, cfg.GitHub.Token = gh.URL, token
	ta := agenttest.Start(t, cfg)
	var blog, docs api.ImportResult
	ta.Call(t, "POST", api.ImportPath("acme", "blog"), map[string]any{}, http.StatusCreated, &blog)
	ta.Call(t, "POST", api.ImportPath("acme", "docs"), map[string]any{}, http.StatusCreated, &docs)
	ta.Deployed(t, blog.Deployment.ID)
	ta.Deployed(t, docs.Deployment.ID)

	signInWithLink(t, ta, tab)
	shoot(t, tab, ta.URL+"/", "dashboard-projects.png")
	shoot(t, tab, ta.URL+"/deployments/"+strconv.FormatInt(blog.Deployment.ID, 10), "dashboard-deployment.png")
}

// shoot writes a PNG of the page at url into the repository's docs directory.
func shoot(t *testing.T, tab context.Context, url, name string) {
	t.Helper()
	do(t, tab, 20*time.Second, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("main")))
	ctx, cancel := context.WithTimeout(tab, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "..", "docs", name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBrowserArrivesSignedInFromAnotherSite(t *testing.T) {
	tab := newTab(t)
	ta, _, d := deployedSite(t, "linked from chat")
	signInWithLink(t, ta, tab)
	page := ta.URL + "/deployments/" + strconv.FormatInt(d.ID, 10)
	// Another site (localhost is not the dashboard's 127.0.0.1) links to the page, directly and
	// through a redirect as mail and chat services' link trackers do.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, page, http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<a id="direct" href="%s">direct</a> <a id="tracked" href="/redirect">tracked</a>`, page)
	}))
	t.Cleanup(other.Close)
	_, port, _ := net.SplitHostPort(other.Listener.Addr().String())
	for _, link := range []string{"direct", "tracked"} {
		do(t, tab, 20*time.Second, chromedp.Navigate("http://localhost:"+port+"/"), chromedp.WaitVisible(chromedp.ID(link)),
			chromedp.Click(chromedp.ID(link)))
		waitFor(t, tab, 10*time.Second, `location.href === `+strconv.Quote(page)+` && !!document.querySelector("main h1")?.textContent.startsWith("Deployment #")`)
	}
}
