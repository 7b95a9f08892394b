package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/store"
)

// cliEnv points the CLI at a fresh data dir and no config file.
func cliEnv(t *testing.T) string {
	t.Helper()
	dataDir := filepath.Join(t.TempDir(), "data")
	t.Setenv("MIAOBU_DATA_DIR", dataDir)
	t.Setenv("MIAOBU_CONFIG", "")
	t.Setenv("MIAOBU_TOKEN", "")
	t.Setenv("MIAOBU_AGENT_URL", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("NO_COLOR", "")
	return dataDir
}

// agentCLI is the command line of a machine whose agent runs for the test: it reads the agent's
// configuration, never the process's environment, so that tests using it can run in parallel.
type agentCLI struct{ *agenttest.Agent }

// startAgentCLI runs an agent with cfg (agenttest's default when nil) as opts say and returns the
// command line pointed at it.
func startAgentCLI(t *testing.T, cfg *config.Config, opts agenttest.Options) *agentCLI {
	t.Helper()
	if cfg == nil {
		cfg = agenttest.Config(t)
	}
	return &agentCLI{agenttest.StartWith(t, cfg, opts)}
}

// factory returns a factory that writes to stdout and stderr and reads the agent's configuration.
func (c *agentCLI) factory(stdout, stderr io.Writer) *factory {
	f := newFactory(stdout, stderr)
	f.Config = func() (*config.Config, error) { return c.Config, nil }
	return f
}

// run runs the command line and returns its exit status, stdout and stderr.
func (c *agentCLI) run(args ...string) (int, string, string) { return runWith(c.factory, args) }

// run runs the command line configured by the process's environment and returns its exit status,
// stdout and stderr.
func run(args ...string) (int, string, string) { return runWith(newFactory, args) }

// runWith runs the command line with the factory that newF makes and returns its exit status,
// stdout and stderr.
func runWith(newF func(stdout, stderr io.Writer) *factory, args []string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := execute(context.Background(), newF(&out, &errOut), args)
	return code, out.String(), errOut.String()
}

// noAgentEnv is cliEnv with an admin token but no agent at the CLI's agent URL.
func noAgentEnv(t *testing.T) {
	t.Helper()
	dataDir := cliEnv(t)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "admin-token"), []byte("t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MIAOBU_AGENT_URL", "http://127.0.0.1:1")
}

// gitRepo creates a repository on branch with one empty commit and returns its directory.
func gitRepo(t *testing.T, branch string) string {
	t.Helper()
	repo := t.TempDir()
	for _, args := range [][]string{{"init", "-q", "-b", branch}, {"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "first"}} {
		if out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	return repo
}

func TestUnreachableAgent(t *testing.T) {
	noAgentEnv(t)
	code, out, errOut := run("project", "list")
	if code != 1 || out != "" || !strings.Contains(errOut, "agent not reachable at http://127.0.0.1:1") || !strings.Contains(errOut, "miaobu agent") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestMissingToken(t *testing.T) {
	cliEnv(t)
	code, _, errOut := run("project", "list")
	if code != 1 || !strings.Contains(errOut, "no admin token") || !strings.Contains(errOut, "miaobu agent") || !strings.Contains(errOut, "miaobu login") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	cliEnv(t)
	for _, args := range [][]string{
		{"project", "show"},
		{"project", "add", "x"},
		{"deployment", "show", "abc"},
		{"deploy", "x", "--commit", "a", "--branch", "b"},
		{"project", "list", "--nope"},
		{"project", "set", "x"},
		{"bogus"},
		{"project"},
		{"project", "bogus"},
		{"webhook", "nope", "x"},
	} {
		if code, _, errOut := run(args...); code != 2 || !strings.Contains(errOut, "error:") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}

func TestProjectCommands(t *testing.T) {
	t.Parallel()
	cli := startAgentCLI(t, nil, agenttest.Options{APIOnly: true})
	run := cli.run
	repo := gitRepo(t, "trunk")
	code, out, errOut := run("project", "add", "Docs Site", "--repo-url", repo, "--json")
	if code != 0 {
		t.Fatalf("add: %d %s", code, errOut)
	}
	var created map[string]any
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("add --json is not one JSON value: %q", out)
	}
	if created["slug"] != "docs-site" || created["default_branch"] != "trunk" || len(created["webhook_secret"].(string)) != 43 {
		t.Fatalf("created %v", created)
	}

	code, out, errOut = run("project", "add", "Second", "--repo-url", repo)
	if code != 0 || !strings.Contains(out, "Secret:") || strings.Contains(out, "Created project") || !strings.Contains(errOut, "Created project second") {
		t.Fatalf("add: the URL and secret go to stdout, messages to stderr: %d %q %q", code, out, errOut)
	}

	code, out, _ = run("project", "show", "docs-site")
	if code != 0 || !strings.Contains(out, "✓ Enabled") || !strings.Contains(out, "pushes to branch trunk") || strings.Contains(out, "\x1b[") {
		t.Fatalf("show: %d %q", code, out)
	}
	if strings.Contains(out, created["webhook_secret"].(string)) {
		t.Fatal("show prints the webhook secret")
	}
	code, out, _ = run("project", "list")
	if code != 0 || !strings.HasPrefix(out, "1\tdocs-site\ttrunk\tlocal\t") {
		t.Fatalf("list on a pipe is not tab-separated: %q", out)
	}
	code, out, _ = run("project", "list", "--json")
	var list []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 || list[0]["webhook_secret"] != nil {
		t.Fatalf("list --json: %d %q", code, out)
	}
	code, out, errOut = run("deploy", "docs-site", "--json")
	var d map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil || d["status"] != "queued" || d["trigger"] != "manual" || len(d["commit_sha"].(string)) != 40 {
		t.Fatalf("deploy: %d %q %q", code, out, errOut)
	}
	code, out, _ = run("deployment", "list", "docs-site", "--json")
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 {
		t.Fatalf("deployment list: %d %q", code, out)
	}
	if code, _, errOut = run("project", "show", "nope"); code != 1 || !strings.Contains(errOut, "Project nope not found") {
		t.Fatalf("show of a missing project: %d %q", code, errOut)
	}
	if code, _, errOut = run("project", "delete", "docs-site"); code != 0 {
		t.Fatalf("delete: %d %q", code, errOut)
	}
}

// TestWhatReachesGitHub shows, for a project whose hook predates the deployment events and one
// added by hand, what is reported to GitHub and which hook lacks events.
func TestWhatReachesGitHub(t *testing.T) {
	t.Parallel()
	cli := startAgentCLI(t, nil, agenttest.Options{APIOnly: true})
	run, st := cli.run, cli.Store
	old := &store.Project{Name: "site", Slug: "site", Repo: "acme/site", RepoURL: "https://github.com/acme/site.git", DefaultBranch: "main",
		Target: "local", WebhookID: 7, WebhookSecret: "s"}
	if err := st.CreateProject(old); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := run("project", "add", "by-hand", "--repo-url", gitRepo(t, "main")); code != 0 {
		t.Fatalf("add: %d %s", code, errOut)
	}
	const lacks = "the hook lacks pull_request and deployment events: run `miaobu webhook setup site`"
	code, out, _ := run("project", "show", "site")
	if code != 0 || !strings.Contains(out, lacks) || !strings.Contains(out, "GitHub:      no reports (no GitHub token: set MIAOBU_GITHUB_TOKEN)") {
		t.Errorf("show of the GitHub project: %d\n%s", code, out)
	}
	code, out, _ = run("project", "show", "by-hand")
	if code != 0 || strings.Contains(out, "lacks") || !strings.Contains(out, "GitHub:      no reports (added by hand, not imported from GitHub)") {
		t.Errorf("show of the project added by hand: %d\n%s", code, out)
	}
	code, _, errOut := run("status")
	if code != 0 || strings.Count(errOut, "lacks") != 1 || !strings.Contains(errOut, "site: "+lacks) {
		t.Errorf("status: %d, stderr\n%s", code, errOut)
	}
	code, out, _ = run("status", "--json")
	if code != 0 || !strings.Contains(out, `"webhook_events_missing": [
        "pull_request",
        "deployment"
      ]`) || !strings.Contains(out, `"webhook_events_missing": []`) {
		t.Errorf("status --json: %d\n%s", code, out)
	}
}

func TestVersionJSON(t *testing.T) {
	code, out, _ := run("version", "--json")
	var v map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v["version"] == "" {
		t.Fatalf("version --json: %d %q", code, out)
	}
}
