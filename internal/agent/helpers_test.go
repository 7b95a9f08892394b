package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/store"
)

// apiAgent is an agent on a temporary data dir behind a loopback server.
type apiAgent struct {
	*Agent
	server *httptest.Server
	token  string
}

// testConfig returns the default configuration with a temporary data dir.
func testConfig(t testing.TB) *config.Config {
	t.Helper()
	t.Setenv("MIAOBU_DATA_DIR", filepath.Join(t.TempDir(), "data"))
	t.Setenv("MIAOBU_CONFIG", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	cfg, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startTestAgent starts an agent with cfg behind an httptest server.
func startTestAgent(t testing.TB, cfg *config.Config) *apiAgent {
	t.Helper()
	a := newTestAgent(t, cfg)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return &apiAgent{Agent: a, server: srv, token: a.adminToken}
}

// testHosts is the resolver of test agents: sites under localhost are at 127.0.0.1, and
// www.example.com points there too; nothing else resolves, and nothing reaches the network.
var testHosts = hostsResolver(func(host string) []string {
	if host == "www.example.com" || strings.HasSuffix(host, ".localhost") {
		return []string{"127.0.0.1"}
	}
	return nil
})

// hostsResolver is a resolver of the answers of a function.
type hostsResolver func(host string) []string

func (h hostsResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	if addrs := h(host); addrs != nil {
		return addrs, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// newTestAgent opens a store in cfg.DataDir and builds an agent on it with a silent log; the store
// closes when the test ends.
func newTestAgent(t testing.TB, cfg *config.Config) *Agent {
	t.Helper()
	st, err := store.Open(cfg.DataDir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a, err := newAgent(cfg, st, slog.New(slog.NewTextHandler(io.Discard, nil)), testHosts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// call sends an admin API request and decodes the JSON answer into out, returning the status code.
func (ta *apiAgent) call(t testing.TB, method, path string, in, out any) int {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, ta.server.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+ta.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decoding answer: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

// addProject creates a project through the API and returns it with its webhook secret.
func (ta *apiAgent) addProject(t testing.TB, name, branch string) api.Project {
	t.Helper()
	var p api.Project
	code := ta.call(t, "POST", api.PathProjects, api.ProjectCreate{Name: name, RepoURL: "https://example.com/" + name + ".git", Branch: branch}, &p)
	if code != http.StatusCreated || p.WebhookSecret == "" {
		t.Fatalf("creating project: %d %+v", code, p)
	}
	return p
}

// fixture reads a payload from testdata/github-payloads.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "github-payloads", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pushPayload returns the new-branch push fixture changed to push sha to branch.
func pushPayload(t testing.TB, branch, sha string) []byte {
	t.Helper()
	return movePayload(t, branch, strings.Repeat("0", 40), sha)
}

// movePayload returns the new-branch push fixture changed to move branch from commit before to sha.
func movePayload(t testing.TB, branch, before, sha string) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(fixture(t, "push.with-new-branch.payload.json"), &p); err != nil {
		t.Fatal(err)
	}
	p["ref"] = "refs/heads/" + branch
	p["before"], p["after"] = before, sha
	p["head_commit"].(map[string]any)["id"] = sha
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// delivery is one webhook request.
type delivery struct {
	event       string
	body        []byte
	secret      string
	signature   string // overrides the computed signature when set
	contentType string
	guid        string
}

// send posts a webhook delivery to a project and returns the status and decoded body.
func (ta *apiAgent) send(t testing.TB, projectID string, d delivery) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", ta.server.URL+api.PathWebhookPrefix+projectID, bytes.NewReader(d.body))
	if err != nil {
		t.Fatal(err)
	}
	if d.event != "" {
		req.Header.Set("X-GitHub-Event", d.event)
	}
	if d.guid == "" {
		d.guid = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
	}
	req.Header.Set("X-GitHub-Delivery", d.guid)
	ct := d.contentType
	if ct == "" {
		ct = "application/json"
	}
	req.Header.Set("Content-Type", ct)
	sig := d.signature
	if sig == "" && d.secret != "" {
		sig = github.Sign([]byte(d.secret), d.body)
	}
	if sig != "" {
		req.Header.Set("X-Hub-Signature-256", sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("answer is not JSON: %q", raw)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("answer Content-Type %q", resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, out
}
