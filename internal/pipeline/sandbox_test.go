package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/gittest"
)

// sandboxedBuilder is testBuilder, skipping the test when there is no sandbox to test.
func sandboxedBuilder(t *testing.T, data string) *Builder {
	t.Helper()
	b, _ := testBuilderIn(t, data)
	if b.Bwrap == "" {
		t.Skip("bubblewrap is not usable here")
	}
	return b
}

func TestSandboxCannotUnmountWhatHidesTheDataDir(t *testing.T) {
	data := hostTempDir(t)
	b := sandboxedBuilder(t, data)
	elsewhere := hostTempDir(t)
	r := gittest.New(t)
	job := testJob(data, r, r.Commit("escape", map[string]string{"index.html": "x"}), 1)
	job.InstallCommand = "true"
	job.OutputDirectory = "out"
	job.BuildCommand = "umount -l " + data + "; mount -o remount,rw,bind /; mkdir -p out; " +
		"{ cat " + filepath.Join(data, "admin-token") + "; touch " + filepath.Join(elsewhere, "escaped") + "; } > out/index.html 2>&1; true"
	_, log, err := build(t, context.Background(), b, data, job)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	if got := readFile(t, filepath.Join(job.PublishDir, "index.html")); strings.Contains(got, "secret-value") {
		t.Errorf("the build unmounted the data dir's cover and read the admin token:\n%s", got)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "escaped")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the build remounted the file system writable and wrote to the host: %v", err)
	}
}

func TestSandboxHidesTheAgentsHome(t *testing.T) {
	for name, layout := range map[string]func(home string) string{
		"home apart from the data dir": func(string) string { return hostTempDir(t) },
		"data dir inside the home":     func(home string) string { return filepath.Join(home, ".local", "share", "miaobu") },
	} {
		t.Run(name, func(t *testing.T) {
			home := hostTempDir(t)
			t.Setenv("HOME", home)
			key := filepath.Join(home, ".ssh", "id_ed25519")
			if err := os.MkdirAll(filepath.Dir(key), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(key, []byte("home-secret-key"), 0o600); err != nil {
				t.Fatal(err)
			}
			data := layout(home)
			b := sandboxedBuilder(t, data)
			r := gittest.New(t)
			job := testJob(data, r, r.Commit("thief", nodeSite("built")), 1)
			job.BuildCommand = "cat " + key + "; npm run build"
			_, log, err := build(t, context.Background(), b, data, job)
			if err != nil {
				t.Fatalf("build: %v\n%s", err, log)
			}
			if strings.Contains(log, "home-secret-key") {
				t.Errorf("the build read a key in the agent's home:\n%s", log)
			}
			if !strings.Contains(log, "No such file") {
				t.Errorf("the home's key is not hidden:\n%s", log)
			}
			if got := readFile(t, filepath.Join(job.PublishDir, "index.html")); got != "built" {
				t.Errorf("index.html = %q", got)
			}
		})
	}
}

func TestNoSandboxWarningNamesWhatBuildsCanReadAndModify(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, mode := range []string{SandboxAuto, SandboxNone} {
		bwrap, warning, err := ResolveSandbox(mode)
		if bwrap != "" || err != nil {
			t.Fatalf("%s: ResolveSandbox = %q, %v; want no sandbox and a warning", mode, bwrap, err)
		}
		for _, want := range []string{"WITHOUT a sandbox", "read and modify", "data dir", "admin token", "live site", "environment of other running builds"} {
			if !strings.Contains(warning, want) {
				t.Errorf("%s: warning lacks %q: %s", mode, want, warning)
			}
		}
	}
}

func TestUnusableBubblewrapSaysWhy(t *testing.T) {
	bin := t.TempDir()
	fake := "#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "bwrap"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	const why = "cannot create a sandbox here: bwrap: setting up uid map: Permission denied"

	bwrap, warning, err := ResolveSandbox(SandboxAuto)
	if bwrap != "" || err != nil || !strings.Contains(warning, why) || strings.Contains(warning, "install bubblewrap") {
		t.Errorf("auto: ResolveSandbox = %q, %q, %v; want no sandbox and a warning saying why", bwrap, warning, err)
	}
	_, _, err = ResolveSandbox(SandboxBwrap)
	if err == nil || !strings.Contains(err.Error(), why) || strings.Contains(err.Error(), "install bubblewrap") {
		t.Errorf("bwrap: err = %v, want it to say why", err)
	}
}

// TestRootAgentsSandboxedBuildIsUnprivileged builds, as root, in the sandbox: the build must run as
// uid 65534 without capabilities, unable to read /etc/shadow, yet able to write its workspace, its
// temporary directories and a cache that a build before this change left to root.
func TestRootAgentsSandboxedBuildIsUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the agent does not run as root here")
	}
	data := hostTempDir(t)
	b := sandboxedBuilder(t, data)
	oldCache := filepath.Join(data, "cache", "1", "stores", "npm", "old")
	if err := os.MkdirAll(filepath.Dir(oldCache), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(oldCache, []byte("root's"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := gittest.New(t)
	job := testJob(data, r, r.Commit("root", nodeSite("built")), 1)
	job.InstallCommand = `touch /tmp/x /dev/shm/x && echo rewritten > "$npm_config_cache/old"`
	job.BuildCommand = "id -u; id -G; grep -E '^Cap(Eff|Prm)|^NoNewPrivs' /proc/self/status; cat /etc/shadow; npm run build"
	_, log, err := build(t, context.Background(), b, data, job)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	shadow := readFile(t, "/etc/shadow")
	if first, _, _ := strings.Cut(shadow, "\n"); strings.Contains(log, first) {
		t.Errorf("the build read /etc/shadow:\n%s", log)
	}
	for _, want := range []string{`\] 65534\n`, `CapEff:\s+0+\n`, `CapPrm:\s+0+\n`, `NoNewPrivs:\s+1\n`, `/etc/shadow: Permission denied`} {
		if !regexpMatch(want, log) {
			t.Errorf("the build does not run as an unprivileged uid 65534 (%s):\n%s", want, log)
		}
	}
	if got := readFile(t, filepath.Join(job.PublishDir, "index.html")); got != "built" {
		t.Errorf("index.html = %q", got)
	}
	if got := readFile(t, oldCache); got != "rewritten\n" {
		t.Errorf("the cache from before was not handed to the build: %q", got)
	}
}

func TestRootWarning(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the agent does not run as root here")
	}
	if bwrap, warning, _ := ResolveSandbox(SandboxAuto); bwrap != "" && !strings.Contains(warning, "runs as root") {
		t.Errorf("no warning about root with the sandbox: %q", warning)
	}
	t.Setenv("PATH", t.TempDir())
	_, warning, _ := ResolveSandbox(SandboxNone)
	for _, want := range []string{"runs as root", "anything on this machine", "unprivileged user"} {
		if !strings.Contains(warning, want) {
			t.Errorf("warning lacks %q: %s", want, warning)
		}
	}
}

func TestHangingBubblewrapSaysSo(t *testing.T) {
	bin := t.TempDir()
	// The sleep outlives the shell that is killed: the probe must not wait for it either.
	if err := os.WriteFile(filepath.Join(bin, "bwrap"), []byte("#!/bin/sh\nsleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	why := "bubblewrap (" + filepath.Join(bin, "bwrap") + ") did not answer within 200ms"
	start := time.Now()
	bwrap, warning, err := resolveSandbox(SandboxAuto, 200*time.Millisecond)
	if bwrap != "" || err != nil || !strings.Contains(warning, why) {
		t.Errorf("auto: resolveSandbox = %q, %q, %v; want no sandbox and a warning saying why", bwrap, warning, err)
	}
	_, _, err = resolveSandbox(SandboxBwrap, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), why) {
		t.Errorf("bwrap: err = %v, want it to say bubblewrap did not answer", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the probes took %s", took)
	}
}
