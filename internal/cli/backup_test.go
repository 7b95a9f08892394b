package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/store"
)

func TestBackupRestoresOnAnotherAgent(t *testing.T) {
	t.Parallel()
	run := startAgentCLI(t, nil, agenttest.Options{APIOnly: true}).run
	if code, _, errOut := run("project", "add", "blog", "--repo-url", "https://example.com/blog.git", "--branch", "main"); code != 0 {
		t.Fatalf("project add: %d %s", code, errOut)
	}
	file := filepath.Join(t.TempDir(), "miaobu-backup.db")
	code, out, errOut := run("backup", file)
	if code != 0 || out != "" || !strings.Contains(errOut, "Backed up the store to "+file) || !strings.Contains(errOut, "<data_dir>/miaobu.db") {
		t.Fatalf("backup: %d %q %q", code, out, errOut)
	}
	info, err := os.Stat(file)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", info, err)
	}
	code, stdout, errOut := run("backup", "-")
	if code != 0 || stdout == "" {
		t.Fatalf("backup -: %d %d bytes %s", code, len(stdout), errOut)
	}

	// Restore: a new data dir whose store is the backup, and an agent on it.
	for _, copyOf := range []string{"file", "stdout"} {
		cfg := agenttest.Config(t)
		dataDir := cfg.DataDir
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		data := []byte(stdout)
		if copyOf == "file" {
			data, _ = os.ReadFile(file)
		}
		if err := os.WriteFile(filepath.Join(dataDir, store.FileName), data, 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errOut = startAgentCLI(t, cfg, agenttest.Options{APIOnly: true}).run("project", "list")
		if code != 0 || !strings.HasPrefix(out, "1\tblog\tmain\t") {
			t.Fatalf("projects of the agent restored from %s: %d %q %s", copyOf, code, out, errOut)
		}
	}
}

func TestBackupCutShortLeavesNoFile(t *testing.T) {
	cliEnv(t)
	t.Setenv("MIAOBU_TOKEN", "token")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != api.PathBackup {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", "1048576")
		w.Write(bytes.Repeat([]byte{0xed}, 4096))
		// The handler ends short of its Content-Length: the connection is closed, as when the
		// agent stops halfway.
	}))
	defer srv.Close()
	t.Setenv("MIAOBU_AGENT_URL", srv.URL)

	dir := t.TempDir()
	file := filepath.Join(dir, "backup.db")
	if err := os.WriteFile(file, []byte("yesterday's backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run("backup", file)
	if code != 1 || !strings.Contains(errOut, "nothing written") {
		t.Fatalf("backup cut short: %d %q", code, errOut)
	}
	if data, _ := os.ReadFile(file); string(data) != "yesterday's backup" {
		t.Fatalf("the earlier backup was replaced by %d bytes", len(data))
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
}

func TestBackupRefusesTheStoreOfARunningAgent(t *testing.T) {
	t.Parallel()
	cli := startAgentCLI(t, nil, agenttest.Options{APIOnly: true})
	run, dataDir := cli.run, cli.Config.DataDir
	linked := filepath.Join(t.TempDir(), "linked.db")
	if err := os.Link(filepath.Join(dataDir, store.FileName), linked); err != nil {
		t.Fatal(err)
	}
	// The store of another agent, running on another data dir.
	otherDir := t.TempDir()
	other, err := store.Open(otherDir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, file := range []string{filepath.Join(dataDir, store.FileName), linked, filepath.Join(otherDir, store.FileName)} {
		before, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		code, _, errOut := run("backup", file)
		if code != 1 || !strings.Contains(errOut, file+" is the store of a running agent: choose another file") {
			t.Errorf("backup %s: %d %q", file, code, errOut)
		}
		if after, err := os.Stat(file); err != nil || !os.SameFile(before, after) || after.ModTime() != before.ModTime() {
			t.Errorf("backup %s replaced the store: %v", file, err)
		}
	}
	if code, _, errOut := run("project", "list"); code != 0 {
		t.Fatalf("the agent no longer answers: %d %s", code, errOut)
	}
}

func TestBackupNeedsAnExistingDirectory(t *testing.T) {
	t.Parallel()
	run := startAgentCLI(t, nil, agenttest.Options{APIOnly: true}).run
	dir := filepath.Join(t.TempDir(), "nonexistent", "dir")
	code, _, errOut := run("backup", filepath.Join(dir, "x.db"))
	if code != 1 || !strings.Contains(errOut, dir+" is not a directory") {
		t.Fatalf("backup: %d %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Dir(dir)); !os.IsNotExist(err) {
		t.Fatalf("backup created a directory: %v", err)
	}
}
