package agent_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/store"
)

func TestBackupIsAConsistentCopy(t *testing.T) {
	t.Parallel()
	ta := agenttest.StartWith(t, agenttest.Config(t), agenttest.Options{APIOnly: true})
	first := ta.AddProject(t, remoteProject("site", "main"))

	resp, err := http.Get(ta.URL + api.PathBackup)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("backup without the token: %d", resp.StatusCode)
	}

	// Projects are added while backups are taken: each backup is a sound store as of its start.
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 20 {
			p := &store.Project{Name: "busy", Slug: fmt.Sprintf("busy-%d", i), RepoURL: "https://example.com/busy.git", DefaultBranch: "main", Target: "local"}
			if err := ta.Store.CreateProject(p); err != nil {
				t.Error(err)
			}
		}
	})
	for i := range 3 {
		req, _ := http.NewRequest("GET", ta.URL+api.PathBackup, nil)
		req.Header.Set("Authorization", "Bearer "+ta.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/octet-stream" ||
			resp.ContentLength != int64(len(data)) {
			t.Fatalf("backup %d: %d %q, Content-Length %d for %d bytes, %v", i, resp.StatusCode,
				resp.Header.Get("Content-Type"), resp.ContentLength, len(data), err)
		}
		dir := filepath.Join(t.TempDir(), "restored")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, store.FileName), data, 0o600); err != nil {
			t.Fatal(err)
		}
		restored, err := store.Open(dir, time.Second)
		if err != nil {
			t.Fatalf("backup %d does not open: %v", i, err)
		}
		got, err := restored.ProjectBySlug(first.Slug)
		restored.Close()
		if err != nil || got.WebhookSecret != first.WebhookSecret {
			t.Fatalf("backup %d lacks project %s: %v", i, first.Slug, err)
		}
	}
	wg.Wait()
}
