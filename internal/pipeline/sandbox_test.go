package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
