package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestVersionFromLdflags builds the binary with release-style -X flags and checks that `miaobu version`
// shows what the linker was given; the default build flags reuse the build cache, which keeps it fast.
func TestVersionFromLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "miaobu")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	const pkg = "github.com/miaobu/miaobu/internal/cli"
	ldflags := "-X " + pkg + ".version=1.2.3 -X " + pkg + ".commit=abc -X " + pkg + ".date=2026-01-01"
	build := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, "github.com/miaobu/miaobu/cmd/miaobu")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("miaobu version: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "miaobu 1.2.3 (commit abc, built 2026-01-01)"; got != want {
		t.Errorf("miaobu version printed %q, want %q", got, want)
	}
}

// TestBashCompletionLoads sources `miaobu completion bash` in bash, as a user's shell would.
func TestBashCompletionLoads(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	code, script, errOut := run("completion", "bash")
	if code != 0 || script == "" {
		t.Fatalf("completion bash: exit %d, stderr %q", code, errOut)
	}
	file := filepath.Join(t.TempDir(), "miaobu.bash")
	if err := os.WriteFile(file, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bash, "-c", `source "$1" && complete -p miaobu`, "bash", file).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "__start_miaobu miaobu") {
		t.Fatalf("sourcing the completion: %v\n%s", err, out)
	}
}
