//go:build linux

package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/miaobu/miaobu/internal/cli"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/github/githubtest"
)

// TestMain lets scripts run the test binary as the miaobu command.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"miaobu": func() { os.Exit(cli.Main()) }})
}

const scriptToken = "ghp_script-token-never-shown"

// fakeKey is the key of a script's fake GitHub in its testscript values.
type fakeKey struct{}

// TestScripts runs the whole-CLI scripts in testdata/script, each with its own agent port, data
// directory and fake GitHub serving acme/site (a Vite project) and acme/docs (plain files).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(env *testscript.Env) error {
			gh := githubtest.New(t, scriptToken)
			gh.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main",
				Branches: map[string]string{"main": "6dcb09b5b57875f334f61aebed695e2e4193db5e", "feature/x": "0123456789abcdef0123456789abcdef01234567"},
				Files: map[string]string{
					"package.json":      `{"scripts":{"build":"vite build"},"devDependencies":{"vite":"^5.2.0"}}`,
					"package-lock.json": `{}`, "index.html": "<!doctype html>",
				}})
			gh.AddRepo(githubtest.Repo{FullName: "acme/docs", DefaultBranch: "main",
				Branches: map[string]string{"main": "fedcba9876543210fedcba9876543210fedcba98"},
				Files:    map[string]string{"index.html": "<h1>docs</h1>"}})
			env.Values[fakeKey{}] = gh
			port, err := freePort()
			if err != nil {
				return err
			}
			env.Setenv("MIAOBU_LISTEN", "127.0.0.1:"+port)
			env.Setenv("MIAOBU_DATA_DIR", filepath.Join(env.WorkDir, "data"))
			env.Setenv("MIAOBU_GITHUB_API_URL", gh.URL)
			env.Setenv("MIAOBU_GITHUB_TOKEN", scriptToken)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitagent":      waitAgent,
			"hooksecret":     hookSecret,
			"nohooks":        noHooks,
			"waitdeployment": waitDeployment,
			"push":           push,
			"pr":             pullRequest,
			"headsha":        headSHA,
			"jsonenv":        jsonEnv,
			"fetch":          fetch,
			"sigterm":        sigterm,
		},
	})
}

// freePort returns a loopback port that nothing listens on.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

// waitAgent waits until the agent started in the background answers its health check.
func waitAgent(ts *testscript.TestScript, neg bool, args []string) {
	url := "http://" + ts.Getenv("MIAOBU_LISTEN") + "/healthz"
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
	ts.Fatalf("the agent did not answer %s within 10s", url)
}

// hookSecret reads the one hook that the fake GitHub holds for the repository args[0], and sets
// HOOK_URL and SECRET to its URL and the secret GitHub received.
func hookSecret(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: hooksecret OWNER/REPO")
	}
	hooks := ts.Value(fakeKey{}).(*githubtest.Server).Hooks(args[0])
	if len(hooks) != 1 {
		ts.Fatalf("%s has %d hooks on GitHub, want 1", args[0], len(hooks))
	}
	ts.Setenv("HOOK_URL", hooks[0].URL)
	ts.Setenv("SECRET", hooks[0].Secret)
}

// noHooks fails unless the fake GitHub holds no hook for the repository args[0].
func noHooks(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: nohooks OWNER/REPO")
	}
	if hooks := ts.Value(fakeKey{}).(*githubtest.Server).Hooks(args[0]); len(hooks) != 0 {
		ts.Fatalf("%s has %d hooks on GitHub, want none", args[0], len(hooks))
	}
}

// waitDeployment waits until the agent has deployment args[0], made by the agent itself (a poll).
func waitDeployment(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: waitdeployment ID")
	}
	token, err := os.ReadFile(filepath.Join(ts.Getenv("MIAOBU_DATA_DIR"), "admin-token"))
	ts.Check(err)
	url := "http://" + ts.Getenv("MIAOBU_LISTEN") + "/api/v1/deployments/" + args[0]
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		req, err := http.NewRequest("GET", url, nil)
		ts.Check(err)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
	ts.Fatalf("no deployment %s within 30s", args[0])
}

// push delivers a push of commit args[1] to branch args[0] to $HOOK_URL, signed with $SECRET the
// way GitHub signs, and writes the agent's status code and answer to stdout.
func push(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: push BRANCH SHA")
	}
	deliver(ts, neg, "push", map[string]any{
		"ref": "refs/heads/" + args[0], "before": "0000000000000000000000000000000000000000", "after": args[1],
		"created": false, "deleted": false, "forced": false,
		"head_commit": map[string]any{"id": args[1], "message": "Update index.html", "author": map[string]any{"name": "Mona Lisa"}},
		"repository":  map[string]any{"full_name": "acme/site", "default_branch": "main"},
	})
}

// pullRequest delivers a pull_request event of action args[0] for pull request args[1] whose head
// is commit args[2] of branch args[3] in the project's own repository, like push, or with args[4]
// "fork" in a fork of it.
func pullRequest(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 4 && (len(args) != 5 || args[4] != "fork") {
		ts.Fatalf("usage: pr ACTION NUMBER SHA BRANCH [fork]")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	repo := map[string]any{"full_name": "acme/site", "default_branch": "main"}
	head := repo
	if len(args) == 5 {
		head = map[string]any{"full_name": "mona/site", "default_branch": "main"}
	}
	deliver(ts, neg, "pull_request", map[string]any{
		"action": args[0], "number": n,
		"pull_request": map[string]any{"number": n, "title": "Change the greeting", "user": map[string]any{"login": "mona"},
			"state": "open", "merged": args[0] == "closed",
			"head": map[string]any{"ref": args[3], "sha": args[2], "repo": head},
			"base": map[string]any{"ref": "main", "sha": "0000000000000000000000000000000000000000", "repo": repo}},
		"repository": repo,
	})
}

// deliver posts a webhook delivery of event with payload to $HOOK_URL, signed with $SECRET, and
// writes the agent's status code and answer to stdout.
func deliver(ts *testscript.TestScript, neg bool, event string, payload map[string]any) {
	body, err := json.Marshal(payload)
	ts.Check(err)
	req, err := http.NewRequest("POST", ts.Getenv("HOOK_URL"), bytes.NewReader(body))
	ts.Check(err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("delivery-%d", time.Now().UnixNano()))
	req.Header.Set("X-Hub-Signature-256", github.Sign([]byte(ts.Getenv("SECRET")), body))
	resp, err := http.DefaultClient.Do(req)
	ts.Check(err)
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "%d %s", resp.StatusCode, answer)
	if failed := resp.StatusCode != http.StatusOK; failed != neg {
		ts.Fatalf("%s answered %d", event, resp.StatusCode)
	}
}

// headSHA sets HEAD_SHA to the commit checked out in the git repository args[0].
func headSHA(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: headsha DIR")
	}
	out, err := exec.Command("git", "-C", ts.MkAbs(args[0]), "rev-parse", "HEAD").Output()
	ts.Check(err)
	ts.Setenv("HEAD_SHA", strings.TrimSpace(string(out)))
}

// jsonEnv sets the variable args[2] to the string field args[1] of the JSON object in file args[0].
func jsonEnv(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: jsonenv FILE FIELD VAR")
	}
	var fields map[string]any
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &fields))
	value, ok := fields[args[1]].(string)
	if !ok {
		ts.Fatalf("%s has no string field %q", args[0], args[1])
	}
	ts.Setenv(args[2], value)
}

// fetch gets path args[1] from the agent with the Host of site args[0] (<site>.localhost) and writes
// the page to stdout, failing unless it answers 200.
func fetch(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: fetch SITE PATH")
	}
	req, err := http.NewRequest("GET", "http://"+ts.Getenv("MIAOBU_LISTEN")+args[1], nil)
	ts.Check(err)
	req.Host = args[0] + ".localhost"
	resp, err := http.DefaultClient.Do(req)
	ts.Check(err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "%s", body)
	if failed := resp.StatusCode != http.StatusOK; failed != neg {
		ts.Fatalf("GET %s on %s answered %d", args[1], req.Host, resp.StatusCode)
	}
}

// sigterm sends SIGTERM to the script's agent, found by its MIAOBU_LISTEN among this machine's
// processes, as systemd stops a service; `wait` then reports how it exited.
func sigterm(ts *testscript.TestScript, neg bool, args []string) {
	want := []byte("\x00MIAOBU_LISTEN=" + ts.Getenv("MIAOBU_LISTEN") + "\x00")
	procs, err := filepath.Glob("/proc/[0-9]*/environ")
	ts.Check(err)
	for _, environ := range procs {
		env, err := os.ReadFile(environ)
		cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(environ), "cmdline"))
		if err != nil || !bytes.Contains(append([]byte{0}, env...), want) || !bytes.Contains(cmdline, []byte("agent")) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(environ)))
		ts.Check(err)
		ts.Check(syscall.Kill(pid, syscall.SIGTERM))
		return
	}
	ts.Fatalf("no agent process listens on %s", ts.Getenv("MIAOBU_LISTEN"))
}
