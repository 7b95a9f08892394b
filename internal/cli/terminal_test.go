//go:build linux

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// serveAgent runs an agent with its build workers on a loopback port until the test ends and points
// the CLI at it.
func serveAgent(t *testing.T) {
	t.Helper()
	a, _ := newAgent(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	// Registered after newAgent's: the agent stops before its store closes.
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	t.Setenv("MIAOBU_AGENT_URL", "http://"+ln.Addr().String())
}

// runOnTerminal runs the CLI with stdout on a pseudo-terminal and returns its exit status and what
// the terminal received.
func runOnTerminal(t *testing.T, args ...string) (int, string) {
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
	code := Run(args, tty, io.Discard)
	tty.Close()
	return code, strings.ReplaceAll(<-received, "\r\n", "\n")
}

// TestOutsideTextCannotDriveTheTerminal deploys a commit whose message sets the terminal's title and
// colours its text, and reads it back through the commands that show it.
func TestOutsideTextCannotDriveTheTerminal(t *testing.T) {
	cliEnv(t)
	t.Setenv("TERM", "xterm-256color")
	serveAgent(t)
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
	code, out = runOnTerminal(t, "deployment", "logs", "1")
	if code != 0 || !strings.Contains(out, "Commit: Fix \x1b[31mred\x1b[0m header") || strings.Contains(out, "\x1b]") ||
		strings.Contains(out, "pwned") || strings.Contains(out, "\x1b[1A") {
		t.Errorf("logs on a terminal: %d %q", code, out)
	}
	for _, args := range [][]string{{"deployment", "list"}, {"status"}} {
		code, out = runOnTerminal(t, args...)
		if code != 0 || !strings.Contains(out, shown) || strings.Contains(out, "\x1b]") || strings.Contains(out, "pwned") {
			t.Errorf("%v on a terminal: %d %q", args, code, out)
		}
	}
	t.Setenv("NO_COLOR", "1")
	if code, out = runOnTerminal(t, "deployment", "logs", "1"); code != 0 || strings.Contains(out, "\x1b") {
		t.Errorf("logs on a terminal with NO_COLOR: %d %q", code, out)
	}
}

func TestBackupRefusesToWriteToATerminal(t *testing.T) {
	cliEnv(t)
	if code, out := runOnTerminal(t, "backup", "-"); code != 2 || out != "" {
		t.Fatalf("backup - on a terminal: %d %q", code, out)
	}
}
