package agent_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/gittest"
)

// rawGet sends target exactly as written, which an http.Client would clean or escape first, to the
// site label and returns the answer.
func rawGet(t *testing.T, ta *agenttest.Agent, label, target string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", "127.0.0.1:"+port(ta))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s.localhost:%s\r\nConnection: close\r\n\r\n", target, label, port(ta)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestDirectoryRedirectStaysOnTheSite(t *testing.T) {
	t.Parallel()
	ta := agenttest.Start(t, agenttest.Config(t))
	repo := gittest.New(t)
	p := ta.AddProject(t, localProject("redirects", repo.Dir))
	ta.Deployed(t, ta.Push(t, p, repo.Commit("site", map[string]string{
		"index.html": "home", "docs/index.html": "docs",
		// Directories named like hosts: a redirect to them must stay a path of this site.
		"evil.com/index.html": "evil", `\evil.com/index.html`: "backslash",
	})))
	for _, tc := range []struct{ target, location string }{
		{"/docs", "/docs/"},
		{"/docs?x=1", "/docs/?x=1"},
		{"/%2Fevil.com%2F..", "/"},
		{"//evil.com/..", "/"},
		{"//evil.com/%2e%2e", "/"},
		{"//evil.com", "/evil.com/"},
		{"/%2F%2Fevil.com", "/evil.com/"},
		{"///evil.com", "/evil.com/"},
		{`/\evil.com`, "/%5Cevil.com/"},
		{"/%5Cevil.com", "/%5Cevil.com/"},
		{`/\evil.com/x/..`, "/%5Cevil.com/"},
		{"/%5C%5Cevil.com%2F..", "/"},
		{"/.", "/"},
		{"/./docs", "/docs/"},
		{"/docs/.", "/docs/"},
		{"/docs/../evil.com", "/evil.com/"},
		{"/docs/..%2F%2Fevil.com", "/evil.com/"},
		{"//evil.com/..?next=//evil.com", "/?next=//evil.com"},
	} {
		resp := rawGet(t, ta, p.Slug, tc.target)
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusMovedPermanently || loc != tc.location {
			t.Errorf("GET %s: %d Location %q, want 301 to %q", tc.target, resp.StatusCode, loc, tc.location)
		}
		if len(loc) == 0 || loc[0] != '/' || (len(loc) > 1 && (loc[1] == '/' || loc[1] == '\\')) {
			t.Errorf("GET %s: Location %q leaves the site", tc.target, loc)
		}
	}
	// Where a redirect points, the directory is served.
	for location, body := range map[string]string{"/evil.com/": "evil", "/%5Cevil.com/": "backslash"} {
		if resp, got := ta.Site(t, p.Slug, location); resp.StatusCode != http.StatusOK || got != body {
			t.Errorf("GET %s: %d %q, want %q", location, resp.StatusCode, got, body)
		}
	}
}
