package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/store"
)

func TestBackupRestoresOnAnotherAgent(t *testing.T) {
	cliEnv(t)
	startAgent(t)
	if code, _, errOut := run("project", "add", "blog", "--repo-url", "https://example.com/blog.git", "--branch", "main"); code != 0 {
		t.Fatalf("project add: %d %s", code, errOut)
	}
	file := filepath.Join(t.TempDir(), "backups", "miaobu-backup.db")
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
		dataDir := cliEnv(t)
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
		startAgent(t)
		code, out, errOut = run("project", "list")
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
