package dashboard_test

import (
	"bufio"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/github/githubtest"
	"github.com/miaobu/miaobu/internal/gittest"
	"github.com/miaobu/miaobu/internal/store"
)

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// send sends a dashboard request with the session cookie (when not empty) and header's name and
// value pairs, and returns the answer and its body.
func send(t *testing.T, ta *agenttest.Agent, method, path string, form url.Values, cookie string, header ...string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, ta.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "miaobu_session", Value: cookie})
	}
	return agenttest.Do(t, req, header...)
}

// postForm posts form as a browser does from the dashboard's own page.
func postForm(t *testing.T, ta *agenttest.Agent, path string, form url.Values, cookie string) (*http.Response, string) {
	t.Helper()
	return send(t, ta, "POST", path, form, cookie, "Origin", ta.URL, "Sec-Fetch-Site", "same-origin")
}

// loginCode asks the API for a one-time login code.
func loginCode(t *testing.T, ta *agenttest.Agent) api.LoginCode {
	t.Helper()
	var code api.LoginCode
	ta.Call(t, "POST", api.PathLoginCodes, nil, http.StatusCreated, &code)
	return code
}

// signIn signs in with a new login code and returns the session cookie's value.
func signIn(t *testing.T, ta *agenttest.Agent) string {
	t.Helper()
	resp, body := postForm(t, ta, "/login", url.Values{"code": {loginCode(t, ta).Code}}, "")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "miaobu_session" {
			return c.Value
		}
	}
	t.Fatalf("sign-in set no session cookie: %v", resp.Header)
	return ""
}

// deployedSite is an agent with a project of a local static site deployed once, with commit
// message as its message.
func deployedSite(t *testing.T, message string) (*agenttest.Agent, api.Project, api.Deployment) {
	t.Helper()
	ta := agenttest.Start(t, agenttest.Config(t))
	repo := gittest.New(t)
	p := ta.AddProject(t, api.ProjectCreate{Name: "site", RepoURL: repo.Dir, Branch: "main"})
	repo.Commit(message, map[string]string{"index.html": "hello"})
	var d api.Deployment
	ta.Call(t, "POST", api.PathProjects+"/"+p.Slug+"/deploy", nil, http.StatusCreated, &d)
	return ta, p, ta.Deployed(t, d.ID)
}

func TestLoginCodeSignsInOnce(t *testing.T) {
	t.Parallel()
	ta := agenttest.Start(t, agenttest.Config(t))
	code := loginCode(t, ta)
	if code.URL != ta.Config.PublicURL+"/login?code="+code.Code || len(code.Code) < 40 {
		t.Fatalf("login code %+v", code)
	}
	// Following the link only shows the form: a link scanner does not use the code up.
	if resp, body := send(t, ta, "GET", "/login?code="+url.QueryEscape(code.Code), nil, ""); resp.StatusCode != http.StatusOK ||
		!strings.Contains(body, `value="`+code.Code+`"`) {
		t.Fatalf("login page: %d %s", resp.StatusCode, body)
	}
	resp, _ := postForm(t, ta, "/login", url.Values{"code": {code.Code}, "next": {"/status"}}, "")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/status" {
		t.Fatalf("sign-in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookie := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"miaobu_session=", "Path=/", "Max-Age=43200", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("Set-Cookie %q lacks %s", cookie, want)
		}
	}
	if strings.Contains(cookie, "Secure") {
		t.Errorf("a cookie over plain http is Secure, so the browser would drop it: %q", cookie)
	}
	session := resp.Cookies()[0].Value
	if resp, body := send(t, ta, "GET", "/status", nil, session); resp.StatusCode != http.StatusOK || !strings.Contains(body, agenttest.Version) {
		t.Errorf("status page with the session: %d %s", resp.StatusCode, body)
	}

	reused, body := postForm(t, ta, "/login", url.Values{"code": {code.Code}}, "")
	if reused.StatusCode != http.StatusForbidden || len(reused.Cookies()) != 0 || !strings.Contains(body, "works once") {
		t.Errorf("reused code: %d %v %s", reused.StatusCode, reused.Cookies(), body)
	}
	if resp, _ := postForm(t, ta, "/login", url.Values{"code": {"made-up"}}, ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("made-up code: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", ta.URL+api.PathLoginCodes, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("login code without the admin token: %v %v", resp.StatusCode, err)
	}
}

func TestAdminTokenSignsIn(t *testing.T) {
	t.Parallel()
	ta := agenttest.Start(t, agenttest.Config(t))
	if resp, body := postForm(t, ta, "/login", url.Values{"token": {ta.Token + "x"}}, ""); resp.StatusCode != http.StatusForbidden ||
		strings.Contains(body, ta.Token) {
		t.Errorf("wrong token: %d", resp.StatusCode)
	}
	resp, _ := postForm(t, ta, "/login", url.Values{"token": {ta.Token}, "next": {"//evil.example/"}}, "")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" || len(resp.Cookies()) != 1 {
		t.Fatalf("admin token: %d to %q, cookies %v", resp.StatusCode, resp.Header.Get("Location"), resp.Cookies())
	}
}

func TestPagesNeedASession(t *testing.T) {
	t.Parallel()
	ta, p, d := deployedSite(t, "first")
	for _, path := range []string{"/", "/status", "/projects/" + p.Slug, "/deployments/" + strconv.FormatInt(d.ID, 10),
		"/deployments/" + strconv.FormatInt(d.ID, 10) + "/log"} {
		resp, body := send(t, ta, "GET", path, nil, "")
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next="+url.QueryEscape(path) {
			t.Errorf("GET %s without a cookie: %d to %q", path, resp.StatusCode, resp.Header.Get("Location"))
		}
		if strings.Contains(body, "<h1>") {
			t.Errorf("GET %s without a cookie shows a page: %s", path, body)
		}
		if resp, _ := send(t, ta, "GET", path, nil, "forged"); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("GET %s with a forged cookie: %d", path, resp.StatusCode)
		}
	}
	if resp, _ := postForm(t, ta, "/projects/"+p.Slug+"/deploy", url.Values{}, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("deploy without a cookie: %d", resp.StatusCode)
	}
	// A link from GitHub arrives without the SameSite=Strict cookie: the page loads itself again.
	resp, body := send(t, ta, "GET", "/deployments/1", nil, "", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `http-equiv="refresh"`) || strings.Contains(body, "first") {
		t.Errorf("cross-site navigation: %d %s", resp.StatusCode, body)
	}
	var all []api.Deployment
	ta.Call(t, "GET", api.PathDeployments, nil, http.StatusOK, &all)
	if len(all) != 1 {
		t.Errorf("%d deployments after refused requests, want 1", len(all))
	}
}

func TestCrossSiteRequestsAreRefused(t *testing.T) {
	t.Parallel()
	ta, p, _ := deployedSite(t, "first")
	session := signIn(t, ta)
	deploy := "/projects/" + p.Slug + "/deploy"
	for _, tc := range []struct {
		name   string
		header []string
	}{
		{"another site's Origin", []string{"Origin", "http://evil.example"}},
		{"another site's Origin, cross-site", []string{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"}},
		{"cross-site", []string{"Sec-Fetch-Site", "cross-site"}},
		{"a sibling site (a deployed preview)", []string{"Sec-Fetch-Site", "same-site", "Origin", "http://site.localhost"}},
		{"no Origin and no Sec-Fetch-Site", nil},
		{"Origin null", []string{"Origin", "null"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := send(t, ta, "POST", deploy, url.Values{}, session, tc.header...)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "another site") {
				t.Errorf("%d %s", resp.StatusCode, body)
			}
			if resp, _ := send(t, ta, "POST", "/login", url.Values{"token": {ta.Token}}, "", tc.header...); resp.StatusCode != http.StatusForbidden {
				t.Errorf("sign-in: %d", resp.StatusCode)
			}
		})
	}
	var all []api.Deployment
	ta.Call(t, "GET", api.PathDeployments, nil, http.StatusOK, &all)
	if len(all) != 1 {
		t.Fatalf("%d deployments after refused requests, want 1", len(all))
	}
	// The same form from the dashboard itself deploys, whichever of the two headers the browser sends.
	for _, header := range [][]string{{"Origin", ta.URL}, {"Sec-Fetch-Site", "same-origin"}} {
		resp, body := send(t, ta, "POST", deploy, url.Values{}, session, header...)
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/deployments/") {
			t.Errorf("deploy with %v: %d %s", header, resp.StatusCode, body)
		}
	}
}

func TestSessionSurvivesRestartAndEndsAtLogout(t *testing.T) {
	t.Parallel()
	cfg := agenttest.Config(t)
	first := agenttest.Start(t, cfg)
	session := signIn(t, first)
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := first.Store.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.PublicURL, cfg.AgentURL = "", "", ""
	ta := agenttest.Start(t, cfg)
	if resp, _ := send(t, ta, "GET", "/", nil, session); resp.StatusCode != http.StatusOK {
		t.Fatalf("the session after a restart: %d", resp.StatusCode)
	}
	resp, _ := postForm(t, ta, "/logout", url.Values{}, session)
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("logout: %d %q", resp.StatusCode, resp.Header.Get("Set-Cookie"))
	}
	if resp, _ := send(t, ta, "GET", "/", nil, session); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the session after logout: %d", resp.StatusCode)
	}
}

func TestPagesEscapeAndForbidFraming(t *testing.T) {
	t.Parallel()
	const message = `<script>window.__pwned=1</script> & "quoted"`
	ta, p, d := deployedSite(t, message)
	session := signIn(t, ta)
	for _, path := range []string{"/", "/status", "/projects/" + p.Slug, "/projects/" + p.Slug + "?status=deployed&environment=production&branch=main",
		"/deployments/" + strconv.FormatInt(d.ID, 10), "/login"} {
		resp, body := send(t, ta, "GET", path, nil, session)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
			continue
		}
		h := resp.Header
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") ||
			!strings.Contains(csp, "frame-ancestors 'none'") || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: headers %v", path, h)
		}
		if strings.Contains(body, "<script>window") || strings.Contains(body, " style=") || strings.Contains(body, ta.Token) {
			t.Errorf("GET %s shows unescaped text, an inline style or the token:\n%s", path, body)
		}
	}
	_, body := send(t, ta, "GET", "/deployments/"+strconv.FormatInt(d.ID, 10), nil, session)
	if !strings.Contains(body, "&lt;script&gt;window.__pwned=1&lt;/script&gt; &amp; &#34;quoted&#34;") {
		t.Errorf("deployment page does not show the commit message escaped:\n%s", body)
	}
	if resp, _ := send(t, ta, "GET", "/projects/"+p.Slug+"?status=nonsense", nil, session); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown status filter: %d", resp.StatusCode)
	}
	for _, path := range []string{"/deployments/999", "/projects/nope", "/no/such/page"} {
		if resp, body := send(t, ta, "GET", path, nil, session); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "<h1>Not Found</h1>") {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
		}
	}
}

func TestLogStreamResumes(t *testing.T) {
	t.Parallel()
	ta, _, d := deployedSite(t, "first")
	session := signIn(t, ta)
	path := "/deployments/" + strconv.FormatInt(d.ID, 10) + "/log"
	events := readEvents(t, ta, path, session, "")
	if len(events) < 3 || events[len(events)-1].name != "end" || events[len(events)-1].data != "deployed" {
		t.Fatalf("events: %+v", events)
	}
	lines, lastID := "", ""
	for _, e := range events {
		if e.name == "line" {
			lines += e.data + "\n"
			lastID = e.id
		}
	}
	if !strings.Contains(lines, "succeeded") || lastID == "" {
		t.Fatalf("streamed log:\n%s", lines)
	}
	if n, _ := strconv.Atoi(lastID); n != len(ta.Log(t, d.ID)) {
		t.Errorf("last event id %s, log has %d bytes", lastID, len(ta.Log(t, d.ID)))
	}
	// A reconnect after the last line gets no line again, only the end.
	for _, e := range readEvents(t, ta, path, session, lastID) {
		if e.name == "line" {
			t.Errorf("resumed stream sent a line again: %+v", e)
		}
	}
}

// event is one Server-Sent Event.
type event struct{ name, id, data string }

// readEvents reads a log stream to its end, resuming after lastEventID when not empty.
func readEvents(t *testing.T, ta *agenttest.Agent, path, session, lastEventID string) []event {
	t.Helper()
	req, _ := http.NewRequest("GET", ta.URL+path, nil)
	req.AddCookie(&http.Cookie{Name: "miaobu_session", Value: session})
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("log stream: %d %v", resp.StatusCode, resp.Header)
	}
	var events []event
	var cur event
	var data []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, _ := strings.Cut(sc.Text(), ": ")
		switch name {
		case "":
			if cur.name != "" {
				cur.data = strings.Join(data, "\n")
				events = append(events, cur)
			}
			cur, data = event{}, nil
		case "event":
			cur.name = value
		case "id":
			cur.id = value
		case "data":
			data = append(data, value)
		}
	}
	return events
}

func TestFormsActAsTheCommandsDo(t *testing.T) {
	t.Parallel()
	gh := githubtest.New(t, "ghp_forms")
	gh.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main",
		Branches: map[string]string{"main": "6dcb09b5b57875f334f61aebed695e2e4193db5e"}, Files: map[string]string{"index.html": "hi"}})
	cfg := agenttest.Config(t)
	cfg.GitHub.APIURL, cfg.GitHub.Token = gh.URL, "ghp_forms"
	// Without build workers, deployments stay queued.
	ta := agenttest.StartWith(t, cfg, agenttest.Options{APIOnly: true})
	var imported api.ImportResult
	ta.Call(t, "POST", api.ImportPath("acme", "site"), api.ImportRequest{NoWebhook: true, NoDeploy: true}, http.StatusCreated, &imported)
	slug := imported.Project.Slug
	session := signIn(t, ta)
	page := func(path string) string {
		t.Helper()
		resp, body := send(t, ta, "GET", path, nil, session)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		return body
	}
	act := func(path string, form url.Values) string {
		t.Helper()
		resp, body := postForm(t, ta, path, form, session)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, body)
		}
		return resp.Header.Get("Location")
	}

	if body := page("/projects/" + slug); !strings.Contains(body, "✗ Not configured") || !strings.Contains(body, `action="/projects/`+slug+`/webhook/setup"`) {
		t.Errorf("project page before setup:\n%s", body)
	}
	if to := act("/projects/"+slug+"/webhook/setup", url.Values{}); to != "/projects/"+slug+"?webhook=created" || len(gh.Hooks("acme/site")) != 1 {
		t.Errorf("setup went to %q; hooks %v", to, gh.Hooks("acme/site"))
	}
	if body := page("/projects/" + slug + "?webhook=created"); !strings.Contains(body, "✓ Enabled") || !strings.Contains(body, "Webhook created on GitHub.") {
		t.Errorf("project page after setup:\n%s", body)
	}
	secret := gh.Hooks("acme/site")[0].Secret
	act("/projects/"+slug+"/webhook/rotate", url.Values{})
	if hooks := gh.Hooks("acme/site"); len(hooks) != 1 || hooks[0].Secret == secret {
		t.Errorf("rotate left hooks %v", hooks)
	}
	if body := page("/projects/" + slug + "?webhook=rotated"); strings.Contains(body, gh.Hooks("acme/site")[0].Secret) {
		t.Error("the project page shows the webhook secret")
	}
	// A push signed with the new secret shows in the deliveries with its sender.
	deployment := ta.Push(t, api.Project{ID: imported.Project.ID, DefaultBranch: "main", WebhookSecret: gh.Hooks("acme/site")[0].Secret},
		"6dcb09b5b57875f334f61aebed695e2e4193db5e")
	if body := page("/projects/" + slug); !strings.Contains(body, "<td>push</td><td>success</td><td><code>127.0.0.1</code></td>") {
		t.Errorf("recent deliveries:\n%s", body)
	}
	act("/projects/"+slug+"/webhook/delete", url.Values{})
	if hooks := gh.Hooks("acme/site"); len(hooks) != 0 {
		t.Errorf("delete left hooks %v", hooks)
	}

	id := strconv.FormatInt(deployment, 10)
	if to := act("/deployments/"+id+"/cancel", url.Values{}); to != "/deployments/"+id {
		t.Errorf("cancel went to %q", to)
	}
	var cancelled api.Deployment
	ta.Call(t, "GET", api.PathDeployments+"/"+id, nil, http.StatusOK, &cancelled)
	if cancelled.Status != api.StatusCancelled {
		t.Errorf("after Cancel the deployment is %s", cancelled.Status)
	}
	to := act("/projects/"+slug+"/deploy", url.Values{"commit_sha": {cancelled.CommitSHA}, "branch": {"main"}, "no_cache": {"1"}})
	var redeployed api.Deployment
	ta.Call(t, "GET", api.PathDeployments+"/"+strings.TrimPrefix(to, "/deployments/"), nil, http.StatusOK, &redeployed)
	if redeployed.CommitSHA != cancelled.CommitSHA || redeployed.Trigger != api.TriggerManual || redeployed.ID == cancelled.ID {
		t.Errorf("redeploy without cache made %+v", redeployed)
	}
	if resp, body := postForm(t, ta, "/projects/"+slug+"/rollback", url.Values{"deployment_id": {id}}, session); resp.StatusCode != http.StatusConflict ||
		!strings.Contains(body, "notice bad") {
		t.Errorf("rollback to a cancelled deployment: %d %s", resp.StatusCode, body)
	}
}

func TestHandMadeHooksAreLeftToTheCLI(t *testing.T) {
	t.Parallel()
	ta, p, _ := deployedSite(t, "first")
	session := signIn(t, ta)
	if _, body := send(t, ta, "GET", "/projects/"+p.Slug, nil, session); strings.Contains(body, "/webhook/rotate") || !strings.Contains(body, "miaobu webhook rotate") {
		t.Errorf("project page of a hand-made hook:\n%s", body)
	}
	if resp, body := postForm(t, ta, "/projects/"+p.Slug+"/webhook/rotate", url.Values{}, session); resp.StatusCode != http.StatusBadRequest ||
		!strings.Contains(body, "set up by hand") {
		t.Errorf("rotate of a hand-made hook: %d %s", resp.StatusCode, body)
	}
}

// TestStatusShowsFailedReconciliation starts the agent while a project's remote is unreachable:
// the status page names the project and the error.
func TestStatusShowsFailedReconciliation(t *testing.T) {
	t.Parallel()
	cfg := agenttest.Config(t)
	st, err := store.Open(cfg.DataDir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p := &store.Project{Name: "notes", Slug: "notes", RepoURL: filepath.Join(t.TempDir(), "missing"), DefaultBranch: "main", Target: "local"}
	if err := st.CreateProject(p); err != nil {
		t.Fatal(err)
	}
	st.Close()
	ta := agenttest.Start(t, cfg)
	session := signIn(t, ta)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, body := send(t, ta, "GET", "/status", nil, session)
		if strings.Contains(body, "Failed reconciliations") && strings.Contains(body, `<a href="/projects/notes">notes</a>`) &&
			strings.Contains(body, "repository not found") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the status page does not show the failed reconciliation:\n%s", body)
		}
	}
}
