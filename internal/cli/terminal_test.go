//go:build linux

package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
)

// runOnTerminal runs the CLI with stdout on a pseudo-terminal and returns its exit status and what
// the terminal received.
func runOnTerminal(t *testing.T, newF func(stdout, stderr io.Writer) *factory, args ...string) (int, string) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	received := make(chan string)
	go func() {
		var out bytes.Buffer
		_, err := io.Copy(&out, master)
		if err != nil && !errors.Is(err, syscall.EIO) { // EIO: the terminal's last writer closed it
			t.Errorf("reading the terminal: %v", err)
		}
		received <- out.String()
	}()
	code := execute(t.Context(), newF(tty, io.Discard), args)
	tty.Close()
	return code, strings.ReplaceAll(<-received, "\r\n", "\n")
}

// TestOutsideTextCannotDriveTheTerminal deploys a commit whose message sets the terminal's title and
// colours its text, and reads it back through the commands that show it.
func TestOutsideTextCannotDriveTheTerminal(t *testing.T) {
	cliEnv(t)
	t.Setenv("TERM", "xterm-256color")
	t.Setenv("CI", "") // the terminal library takes any CI for a terminal without colours
	cli := startAgentCLI(t, nil, agenttest.Options{})
	run := cli.run
	const message = "Fix \x1b[31mred\x1b[0m header\x1b]0;pwned\x07\n\nBody \x1b[2J\u202eline"
	repo := t.TempDir()
	if err := os.WriteFile(filepath.Join(repo, "index.html"), []byte("<h1>hi</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	msgFile := filepath.Join(t.TempDir(), "message")
	if err := os.WriteFile(msgFile, []byte(message), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "."},
		{"-c", "user.name=Mallory\x1b[1A", "-c", "user.email=m@example.com", "commit", "-q", "-F", msgFile}} {
		if out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	if code, _, errOut := run("project", "add", "site", "--repo-url", repo); code != 0 {
		t.Fatalf("project add: %d %s", code, errOut)
	}
	code, _, errOut := run("deploy", "site", "--wait")
	if code != 0 {
		t.Fatalf("deploy: %d %s", code, errOut)
	}

	// The data is kept as it came: --json shows it, escaped by JSON.
	_, out, _ := run("deployment", "list", "--json")
	var list []struct {
		CommitMessage string `json:"commit_message"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || !strings.HasPrefix(list[0].CommitMessage, "Fix \x1b[31mred") {
		t.Fatalf("deployment list --json: %q %v", out, err)
	}

	const shown = "Fix red header"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"deployment", "list"}, shown},
		{[]string{"deployment", "show", "1"}, shown},
		{[]string{"deployment", "logs", "1"}, "Commit: " + shown},
		{[]string{"status"}, shown},
	} {
		code, out, errOut := run(tc.args...)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%v: %d, no %q in %q %s", tc.args, code, tc.want, out, errOut)
		}
		if strings.ContainsAny(out, "\x1b\x07\u202e") || strings.Contains(out, "pwned") {
			t.Errorf("%v on a pipe lets control sequences through: %q", tc.args, out)
		}
	}
	if strings.ContainsAny(errOut, "\x1b\x07") || !strings.Contains(errOut, "Commit: "+shown) {
		t.Errorf("deploy --wait shows the log with control sequences: %q", errOut)
	}

	// On a terminal, the build log keeps its colours but nothing else; tables keep none of the
	// commit's.
	code, out = runOnTerminal(t, cli.factory, "deployment", "logs", "1")
	if code != 0 || !strings.Contains(out, "Commit: Fix \x1b[31mred\x1b[0m header") || strings.Contains(out, "\x1b]") ||
		strings.Contains(out, "pwned") || strings.Contains(out, "\x1b[1A") {
		t.Errorf("logs on a terminal: %d %q", code, out)
	}
	for _, args := range [][]string{{"deployment", "list"}, {"status"}} {
		code, out = runOnTerminal(t, cli.factory, args...)
		if code != 0 || !strings.Contains(out, shown) || strings.Contains(out, "\x1b]") || strings.Contains(out, "pwned") {
			t.Errorf("%v on a terminal: %d %q", args, code, out)
		}
	}
	t.Setenv("NO_COLOR", "1")
	if code, out = runOnTerminal(t, cli.factory, "deployment", "logs", "1"); code != 0 || strings.Contains(out, "\x1b") {
		t.Errorf("logs on a terminal with NO_COLOR: %d %q", code, out)
	}
}

func TestBackupRefusesToWriteToATerminal(t *testing.T) {
	cliEnv(t)
	if code, out := runOnTerminal(t, newFactory, "backup", "-"); code != 2 || out != "" {
		t.Fatalf("backup - on a terminal: %d %q", code, out)
	}
}

// TestBuildCannotUnmaskTheTokenWithControls runs a build without a sandbox that prints the admin
// token cut in two by a carriage return, a colour reset, a backspace and a title set, which the CLI
// removes: neither the log nor `deploy --wait` may then show the token whole.
func TestBuildCannotUnmaskTheTokenWithControls(t *testing.T) {
	cfg := agenttest.Config(t)
	cfg.Build.Sandbox = "none"
	run, dataDir := startAgentCLI(t, cfg, agenttest.Options{}).run, cfg.DataDir
	repo := gitRepo(t, "main")
	token, err := os.ReadFile(filepath.Join(dataDir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	build := fmt.Sprintf(`t=$(cat %s); h=$(printf %%s "$t" | cut -c1-20); r=$(printf %%s "$t" | cut -c21-); `+
		`printf 'cr %%s\r%%s\nsgr %%s\033[0m%%s\nbs %%s\b%%s\nosc %%s\033]0;x\007%%s\n' "$h" "$r" "$h" "$r" "$h" "$r" "$h" "$r"; mkdir -p dist; echo x > dist/index.html`,
		filepath.Join(dataDir, "admin-token"))
	if code, _, errOut := run("project", "add", "site", "--repo-url", repo, "--build-command", build, "--output-dir", "dist"); code != 0 {
		t.Fatalf("project add: %d %s", code, errOut)
	}
	code, _, waited := run("deploy", "site", "--wait")
	_, logs, _ := run("deployment", "logs", "1")
	secret := strings.TrimSpace(string(token))
	if code != 0 || !strings.Contains(logs, "osc ********") {
		t.Fatalf("deploy: %d %s\nlogs: %s", code, waited, logs)
	}
	if strings.Contains(waited, secret) || strings.Contains(logs, secret) {
		t.Errorf("the admin token is shown:\n%s\n%s", waited, logs)
	}
}
