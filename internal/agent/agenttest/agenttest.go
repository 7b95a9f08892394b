// Package agenttest runs miaobu agents for tests: each on a loopback listener with a temporary data
// dir and the configuration its test gives, never the process's environment, so that tests can run
// in parallel; and it calls their API with the admin token and signs their webhook deliveries.
package agenttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/store"
)

// Version is the version a test agent reports.
const Version = "0.0.0-test"

// Agent is an agent that runs until its test ends, or the API of one that runs elsewhere.
type Agent struct {
	*agent.Agent
	// Config is the agent's configuration: Listen, and PublicURL and AgentURL unless the test set
	// them, name the listener.
	Config *config.Config
	// Store is the agent's store, open until the test ends.
	Store *store.Store
	// URL is the base URL of the agent's API, and Token its admin token.
	URL, Token string
	// done is closed when the agent has stopped serving, and serveErr is then what serving returned.
	done     chan struct{}
	serveErr error
	// halt stops serving, once, and returns serveErr.
	halt func() error
	// owned is set when the test called Stop and so checks serveErr itself.
	owned atomic.Bool
}

// Config returns the configuration of every key at its default on a temporary data dir, but with
// no public_url or agent_url (Start sets those to its listener's URL unless the test sets them) and
// no pacing of the requests to the fake GitHub.
func Config(t testing.TB) *config.Config {
	t.Helper()
	cfg, err := config.Defaults(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.PublicURL, cfg.AgentURL = "", ""
	cfg.GitHub.WriteInterval = 0
	return cfg
}

// Options adjust how Start runs an agent.
type Options struct {
	// APIOnly serves the HTTP handler alone, without build workers: deployments stay queued.
	APIOnly bool
	// Listener is what the agent serves on; nil means a new loopback listener.
	Listener net.Listener
	// Log is the agent's logger; nil discards its log.
	Log *slog.Logger
	// Prepare, when not nil, is called on the agent before it serves (to replace its clock, say).
	Prepare func(a *agent.Agent)
	// New builds the agent, as agent.New does when nil.
	New func(cfg *config.Config, st *store.Store, log *slog.Logger, version string) (*agent.Agent, error)
}

// Start runs an agent with cfg, serving its API, sites and build workers on a loopback listener
// until the test ends, when it must stop without an error unless the test called Stop.
func Start(t testing.TB, cfg *config.Config) *Agent {
	t.Helper()
	return StartWith(t, cfg, Options{})
}

// StartWith is Start adjusted by opts.
func StartWith(t testing.TB, cfg *config.Config, opts Options) *Agent {
	t.Helper()
	ln := opts.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	addr := ln.Addr().String()
	cfg.Listen = addr
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + addr
	}
	if cfg.AgentURL == "" {
		cfg.AgentURL = "http://" + addr
	}
	a, st := open(t, cfg, opts.Log, opts.New)
	if opts.Prepare != nil {
		opts.Prepare(a)
	}
	token, err := os.ReadFile(cfg.AdminTokenFile())
	if err != nil {
		t.Fatal(err)
	}
	ta := &Agent{Agent: a, Config: cfg, Store: st, URL: "http://" + addr, Token: strings.TrimSpace(string(token)), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	if opts.APIOnly {
		srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: a.Handler()}}
		srv.Start()
		go func() {
			<-ctx.Done()
			srv.Close()
			close(ta.done)
		}()
	} else {
		go func() {
			ta.serveErr = a.Serve(ctx, ln)
			close(ta.done)
		}()
	}
	ta.halt = sync.OnceValue(func() error {
		cancel()
		<-ta.done
		return ta.serveErr
	})
	t.Cleanup(func() {
		if err := ta.halt(); err != nil && !ta.owned.Load() {
			t.Errorf("the agent stopped with: %v", err)
		}
	})
	return ta
}

// open builds an agent with cfg on a store in cfg.DataDir, logging to log (nil discards it), by
// newAgent (nil means agent.New), and returns it with its store, which closes when the test ends.
func open(t testing.TB, cfg *config.Config, log *slog.Logger, newAgent func(*config.Config, *store.Store, *slog.Logger, string) (*agent.Agent, error)) (*agent.Agent, *store.Store) {
	t.Helper()
	st, err := store.Open(cfg.DataDir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if newAgent == nil {
		newAgent = agent.New
	}
	a, err := newAgent(cfg, st, log, Version)
	if err != nil {
		t.Fatal(err)
	}
	return a, st
}

// Stop shuts down an agent that Start ran, if it still runs, and returns what serving returned;
// the test then owns that error.
func (ta *Agent) Stop() error {
	ta.owned.Store(true)
	return ta.halt()
}

// Done is closed when an agent that Start ran has stopped serving, by Stop or on its own.
func (ta *Agent) Done() <-chan struct{} { return ta.done }

// Call sends an admin API request with in as its JSON body (when not nil), fails the test unless
// the answer's status is want (any status when want is 0), decodes the JSON answer into out (when
// not nil) and returns the status.
func (ta *Agent) Call(t testing.TB, method, path string, in any, want int, out any) int {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	status, data := ta.request(t, method, path, body)
	if want != 0 && status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, status, data, want)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, path, data, err)
		}
	}
	return status
}

// Text GETs an admin path and returns the answer's body, whatever its status.
func (ta *Agent) Text(t testing.TB, path string) string {
	t.Helper()
	_, data := ta.request(t, "GET", path, nil)
	return string(data)
}

// request sends an admin API request and returns the answer's status and body.
func (ta *Agent) request(t testing.TB, method, path string, body io.Reader) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, ta.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+ta.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

// AddProject creates a project through the API and returns it with its webhook secret.
func (ta *Agent) AddProject(t testing.TB, create api.ProjectCreate) api.Project {
	t.Helper()
	var p api.Project
	ta.Call(t, "POST", api.PathProjects, create, http.StatusCreated, &p)
	if p.WebhookSecret == "" {
		t.Fatalf("project %q was created without a webhook secret", create.Name)
	}
	return p
}

// Delivery is one webhook request.
type Delivery struct {
	// Event is the X-GitHub-Event header, none when empty.
	Event string
	Body  []byte
	// Secret signs the body as GitHub does, unless Signature is set; neither sends no signature.
	Secret    string
	Signature string
	// ContentType defaults to application/json.
	ContentType string
	// GUID is the X-GitHub-Delivery header; empty means a fixed one.
	GUID string
}

// Deliver posts d to the webhook of project (an id, or anything else the route may be given) and
// returns the answer's status and its JSON body, failing the test when the body is not JSON.
func (ta *Agent) Deliver(t testing.TB, project string, d Delivery) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", ta.URL+api.PathWebhookPrefix+project, bytes.NewReader(d.Body))
	if err != nil {
		t.Fatal(err)
	}
	if d.Event != "" {
		req.Header.Set("X-GitHub-Event", d.Event)
	}
	if d.GUID == "" {
		d.GUID = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
	}
	req.Header.Set("X-GitHub-Delivery", d.GUID)
	if d.ContentType == "" {
		d.ContentType = "application/json"
	}
	req.Header.Set("Content-Type", d.ContentType)
	if d.Signature == "" && d.Secret != "" {
		d.Signature = github.Sign([]byte(d.Secret), d.Body)
	}
	if d.Signature != "" {
		req.Header.Set("X-Hub-Signature-256", d.Signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("webhook answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("webhook answer Content-Type %q", ct)
	}
	return resp.StatusCode, out
}

// Push delivers a signed push of sha to p's default branch and returns the deployment it queued,
// failing the test unless the agent answered success.
func (ta *Agent) Push(t testing.TB, p api.Project, sha string) int64 {
	t.Helper()
	body := fmt.Sprintf(`{"ref":"refs/heads/%s","after":%q,"head_commit":{"id":%q,"message":"pushed","author":{"name":"Ada"}}}`,
		p.DefaultBranch, sha, sha)
	status, answer := ta.Deliver(t, strconv.FormatInt(p.ID, 10), Delivery{Event: "push", Body: []byte(body),
		Secret: p.WebhookSecret, GUID: strconv.FormatInt(time.Now().UnixNano(), 10)})
	id, _ := answer["deployment_id"].(float64)
	if status != http.StatusOK || answer["status"] != "success" || id == 0 {
		t.Fatalf("push: %d %v", status, answer)
	}
	return int64(id)
}

// Wait polls a deployment until it has ended, for at most 90 seconds, and returns it.
func (ta *Agent) Wait(t testing.TB, id int64) api.Deployment {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var d api.Deployment
		ta.Call(t, "GET", fmt.Sprintf("%s/%d", api.PathDeployments, id), nil, http.StatusOK, &d)
		if store.IsTerminal(store.Status(d.Status)) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("deployment %d still %s after 90s", id, d.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Deployed waits for a deployment and fails the test, showing its build log, unless it succeeded.
func (ta *Agent) Deployed(t testing.TB, id int64) api.Deployment {
	t.Helper()
	d := ta.Wait(t, id)
	if d.Status != api.StatusDeployed {
		t.Fatalf("deployment %d %s: %s\n%s", id, d.Status, d.ErrorMessage, ta.Log(t, id))
	}
	return d
}

// Log returns a deployment's build log.
func (ta *Agent) Log(t testing.TB, id int64) string {
	t.Helper()
	return ta.Text(t, fmt.Sprintf("%s/%d/logs", api.PathDeployments, id))
}

// Site GETs path from the site whose Host label is label (<label>.<sites.domain>), with header's
// name and value pairs, not following redirects, and returns the response and its body.
func (ta *Agent) Site(t testing.TB, label, path string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", ta.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ta.Config.Listen)
	req.Host = label + "." + ta.Config.Sites.Domain + ":" + port
	return Do(t, req, header...)
}

// Do sends req with header's name and value pairs, not following redirects, and returns the
// response and its body.
func Do(t testing.TB, req *http.Request, header ...string) (*http.Response, string) {
	t.Helper()
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}
