//go:build linux

package cli_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/miaobu/miaobu/internal/store"
)

// agentCommand is `miaobu agent` on dataDir, listening on listen, as a user starts it.
func agentCommand(ctx context.Context, t *testing.T, dataDir, listen string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "miaobu", "agent")
	cmd.Env = append(os.Environ(), "MIAOBU_DATA_DIR="+dataDir, "MIAOBU_LISTEN="+listen, "MIAOBU_CONFIG=",
		"XDG_CONFIG_HOME="+t.TempDir(), "MIAOBU_BUILD_SANDBOX=none")
	return cmd
}

// storeFile returns the bytes of a store with projects, cut to the pages it uses.
func storeFile(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for range 40 {
		if err := st.CreateProject(&store.Project{Name: "site", Slug: "site", RepoURL: "https://example.com/site.git",
			DefaultBranch: "main", Target: "local", Env: map[string]string{"KEY": strings.Repeat("v", 3000)}}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	path := filepath.Join(dir, store.FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	_ = db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
	db.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data[:size]
}

func TestAgentRefusesDamagedStore(t *testing.T) {
	sound := storeFile(t)
	random := make([]byte, 256<<10)
	_, _ = rand.Read(random)
	for _, tc := range []struct {
		name   string
		data   []byte
		reason string
	}{
		{"empty file of a used data dir", []byte{}, "is empty"},
		{"truncated", sound[:len(sound)/2], "is truncated"},
		{"random bytes", random, "is damaged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				t.Fatal(err)
			}
			db := filepath.Join(dataDir, store.FileName)
			if err := os.WriteFile(db, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dataDir, "admin-token"), []byte("token\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := agentCommand(ctx, t, dataDir, "127.0.0.1:0")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("agent over a damaged store: %v, stderr:\n%s", err, stderr.String())
			}
			msg := stderr.String()
			if strings.Count(msg, "\n") != 1 || !strings.HasPrefix(msg, "error: store "+db+" "+tc.reason) ||
				!strings.Contains(msg, "`miaobu backup FILE`") || !strings.Contains(msg, "in place of "+db) || strings.Contains(msg, "goroutine") {
				t.Fatalf("the agent said:\n%s", msg)
			}
			if after, _ := os.ReadFile(db); len(after) != len(tc.data) {
				t.Fatalf("the damaged store was rewritten: %d bytes, was %d", len(after), len(tc.data))
			}
		})
	}

	t.Run("brand-new data dir", func(t *testing.T) {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := agentCommand(ctx, t, filepath.Join(t.TempDir(), "data"), "127.0.0.1:"+port)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		up := false
		for deadline := time.Now().Add(10 * time.Second); !up && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if resp, err := http.Get("http://127.0.0.1:" + port + "/healthz"); err == nil {
				resp.Body.Close()
				up = resp.StatusCode == http.StatusOK
			}
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil || !up {
			t.Fatalf("agent on a new data dir: up %v, %v, stderr:\n%s", up, err, stderr.String())
		}
	})
}
