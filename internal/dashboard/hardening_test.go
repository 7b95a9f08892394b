package dashboard_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
)

func TestATossedCookieDoesNotLockOut(t *testing.T) {
	t.Parallel()
	ta := agenttest.Start(t, agenttest.Config(t))
	session := signIn(t, ta)
	// A site under sites.domain may set a cookie of the same name for the parent domain, which the
	// browser sends first.
	req, _ := http.NewRequest("GET", ta.URL+"/status", nil)
	req.Header.Set("Cookie", "miaobu_session=tossed; miaobu_session="+session)
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a tossed cookie before the session's: %d", resp.StatusCode)
	}
}

func TestSessionCookieOverHTTPSIsHostOnly(t *testing.T) {
	t.Parallel()
	cfg := agenttest.Config(t)
	cfg.PublicURL = "https://dash.example"
	ta := agenttest.Start(t, cfg)
	resp, body := send(t, ta, "POST", "/login", url.Values{"token": {ta.Token}}, "", "Origin", "https://dash.example")
	cookie := resp.Header.Get("Set-Cookie")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(cookie, "__Host-miaobu_session=") || !strings.Contains(cookie, "Secure") ||
		strings.Contains(cookie, "Domain") {
		t.Fatalf("sign-in over https: %d %q %s", resp.StatusCode, cookie, body)
	}
	req, _ := http.NewRequest("GET", ta.URL+"/status", nil)
	req.AddCookie(&http.Cookie{Name: "miaobu_session", Value: resp.Cookies()[0].Value})
	if resp, err := noRedirects.Do(req); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the session under the plain name over https: %v %v", resp.StatusCode, err)
	}
	req.Header.Del("Cookie")
	req.AddCookie(resp.Cookies()[0])
	if resp, err := noRedirects.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("the __Host- session: %v %v", resp.StatusCode, err)
	}
}

func TestOversizedFormIsRefused(t *testing.T) {
	t.Parallel()
	ta, p, _ := deployedSite(t, "first")
	session := signIn(t, ta)
	form := url.Values{"branch": {"nope"}, "filler": {strings.Repeat("x", 1<<20)}}
	resp, body := postForm(t, ta, "/projects/"+p.Slug+"/deploy", form, session)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("deploy with a 1 MiB form: %d %s", resp.StatusCode, body)
	}
	var all []api.Deployment
	ta.Call(t, "GET", api.PathDeployments, nil, http.StatusOK, &all)
	if len(all) != 1 {
		t.Errorf("%d deployments after an oversized form, want 1", len(all))
	}
}

func TestSignInGoesOnlyToALocalPath(t *testing.T) {
	t.Parallel()
	ta := agenttest.Start(t, agenttest.Config(t))
	for next, want := range map[string]string{
		"/status":               "/status",
		"/projects/site?x=1":    "/projects/site?x=1",
		"//evil.example/":       "/",
		"/\\evil.example":       "/",
		"/./\\evil.example":     "/",
		"/\t/evil.example":      "/",
		"/%09/evil.example":     "/%09/evil.example",
		"/.//evil.example":      "/evil.example",
		"https://evil.example/": "/",
		"evil.example":          "/",
		"/a/../status":          "/status",
		"/%2F/evil.example":     "/evil.example",
		"/%5Cevil.example":      "/%5Cevil.example",
	} {
		resp, _ := postForm(t, ta, "/login", url.Values{"token": {ta.Token}, "next": {next}}, "")
		if got := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || got != want {
			t.Errorf("next %q: %d to %q, want %q", next, resp.StatusCode, got, want)
		}
	}
}

func TestOriginMustBeThePublicURLs(t *testing.T) {
	t.Parallel()
	cfg := agenttest.Config(t)
	ta := agenttest.Start(t, cfg)
	u, _ := url.Parse(ta.URL)
	for _, origin := range []string{"https://" + u.Host, "http://" + u.Hostname() + ":1"} {
		if resp, _ := send(t, ta, "POST", "/login", url.Values{"token": {ta.Token}}, "", "Origin", origin); resp.StatusCode != http.StatusForbidden {
			t.Errorf("sign-in from %s: %d", origin, resp.StatusCode)
		}
	}
	if resp, _ := send(t, ta, "POST", "/login", url.Values{"token": {ta.Token}}, "", "Origin", ta.URL); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("sign-in from the public URL: %d", resp.StatusCode)
	}
}

func TestStaticDirectoriesAreNotListed(t *testing.T) {
	t.Parallel()
	ta := agenttest.Start(t, agenttest.Config(t))
	if resp, body := send(t, ta, "GET", "/static/", nil, ""); resp.StatusCode != http.StatusNotFound || strings.Contains(body, `href="app.js"`) {
		t.Errorf("GET /static/: %d %s", resp.StatusCode, body)
	}
	if resp, _ := send(t, ta, "GET", "/static/app.js", nil, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /static/app.js: %d", resp.StatusCode)
	}
}
