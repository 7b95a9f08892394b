package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/store"
)

// testAgent is a real agent on a loopback listener with a store in a temporary data dir.
type testAgent struct {
	t     *testing.T
	cfg   *config.Config
	agent *Agent
	url   string
	port  string
	token string
}

// startAgent runs an agent until the test ends; change adjusts its configuration.
func startAgent(t *testing.T, change func(cfg *config.Config)) *testAgent {
	t.Helper()
	return startAgentWith(t, change, nil)
}

// startAgentWith is startAgent with prepare, when not nil, called on the agent before it serves.
func startAgentWith(t *testing.T, change func(cfg *config.Config), prepare func(a *Agent)) *testAgent {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ta, stop, done := serveAgentWith(t, ln, change, prepare)
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ta
}

// serveAgent runs an agent on ln in the background; stop asks it to shut down, and done yields
// what Serve returned.
func serveAgent(t *testing.T, ln net.Listener, change func(cfg *config.Config)) (ta *testAgent, stop context.CancelFunc, done <-chan error) {
	t.Helper()
	return serveAgentWith(t, ln, change, nil)
}

// serveAgentWith is serveAgent with prepare, when not nil, called on the agent before it serves.
func serveAgentWith(t *testing.T, ln net.Listener, change func(cfg *config.Config), prepare func(a *Agent)) (ta *testAgent, stop context.CancelFunc, done <-chan error) {
	t.Helper()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	cfg := &config.Config{DataDir: t.TempDir(), Listen: ln.Addr().String(), PublicURL: "http://" + ln.Addr().String(),
		Sites: config.Sites{Domain: "localhost"}, Build: config.Build{Concurrency: 2, Timeout: time.Minute, Sandbox: "auto"},
		Retention: config.Retention{Deployments: 10}, ShutdownTimeout: 5 * time.Second, Target: "local"}
	if change != nil {
		change(cfg)
	}
	a := newTestAgent(t, cfg)
	if prepare != nil {
		prepare(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln) }()
	return &testAgent{t: t, cfg: cfg, agent: a, url: "http://" + ln.Addr().String(), port: port, token: a.adminToken}, cancel, served
}

// call sends an admin API request and decodes the answer into out, failing the test on a status
// other than want.
func (ta *testAgent) call(method, path string, in any, want int, out any) {
	ta.t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, ta.url+path, body)
	req.Header.Set("Authorization", "Bearer "+ta.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ta.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		ta.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, data, want)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			ta.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
}

// addProject creates a project of a local repository and returns it with its webhook secret.
func (ta *testAgent) addProject(name, repoDir string) api.Project {
	ta.t.Helper()
	var p api.Project
	ta.call("POST", api.PathProjects, api.ProjectCreate{Name: name, RepoURL: repoDir, Branch: "main"}, http.StatusCreated, &p)
	return p
}

// push delivers a signed push of sha to the project's webhook and returns the deployment id.
func (ta *testAgent) push(p api.Project, sha string) int64 {
	ta.t.Helper()
	payload := fmt.Sprintf(`{"ref":"refs/heads/main","after":%q,"head_commit":{"id":%q,"message":"pushed","author":{"name":"Ada"}}}`, sha, sha)
	status, answer := ta.deliver(p, []byte(payload))
	if status != http.StatusOK || answer.Status != "success" {
		ta.t.Fatalf("push: %d %+v", status, answer)
	}
	return answer.DeploymentID
}

// deliver posts body as a signed push delivery to the project's webhook and returns the answer.
func (ta *testAgent) deliver(p api.Project, body []byte) (int, api.WebhookAnswer) {
	ta.t.Helper()
	return ta.deliverEvent(p, "push", body)
}

// deliverEvent posts body as a signed delivery of event to the project's webhook and returns the answer.
func (ta *testAgent) deliverEvent(p api.Project, event string, body []byte) (int, api.WebhookAnswer) {
	ta.t.Helper()
	req, _ := http.NewRequest("POST", ta.url+api.PathWebhookPrefix+fmt.Sprint(p.ID), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", fmt.Sprint(time.Now().UnixNano()))
	req.Header.Set("X-Hub-Signature-256", github.Sign([]byte(p.WebhookSecret), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ta.t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer api.WebhookAnswer
	_ = json.NewDecoder(resp.Body).Decode(&answer)
	return resp.StatusCode, answer
}

// wait polls a deployment until it has ended and returns it.
func (ta *testAgent) wait(id int64) api.Deployment {
	ta.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var d api.Deployment
		ta.call("GET", fmt.Sprintf("%s/%d", api.PathDeployments, id), nil, http.StatusOK, &d)
		if store.IsTerminal(store.Status(d.Status)) {
			return d
		}
		if time.Now().After(deadline) {
			ta.t.Fatalf("deployment %d still %s", id, d.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// deployed waits for a deployment and fails the test unless it succeeded.
func (ta *testAgent) deployed(id int64) api.Deployment {
	ta.t.Helper()
	d := ta.wait(id)
	if d.Status != api.StatusDeployed {
		ta.t.Fatalf("deployment %d %s: %s\n%s", id, d.Status, d.ErrorMessage, ta.log(id))
	}
	return d
}

// log returns a deployment's build log.
func (ta *testAgent) log(id int64) string {
	ta.t.Helper()
	return ta.text(fmt.Sprintf("%s/%d/logs", api.PathDeployments, id))
}

// text GETs an admin path and returns the body of the answer, whatever its status.
func (ta *testAgent) text(path string) string {
	ta.t.Helper()
	req, _ := http.NewRequest("GET", ta.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+ta.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ta.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// get requests a path of a site by its Host label and returns the response and body.
func (ta *testAgent) get(label, path string, header ...string) (*http.Response, string) {
	ta.t.Helper()
	req, _ := http.NewRequest("GET", ta.url+path, nil)
	req.Host = label + ".localhost:" + ta.port
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		ta.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// nodeSite is a project whose build script writes dist/index.html with body, plus an asset.
func nodeSite(body string) map[string]string {
	return map[string]string{
		"package.json": `{"name":"site","version":"1.0.0","private":true,"scripts":{"build":"node build.js"}}`,
		"build.js": `const fs = require("fs");
fs.mkdirSync("dist/assets", {recursive: true});
fs.writeFileSync("dist/index.html", ` + "`" + body + "`" + `);
fs.writeFileSync("dist/assets/app-3f9a1c2e.js", "console.log(1)");
if (process.env.SLEEP) { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(process.env.SLEEP)); }
`,
	}
}
