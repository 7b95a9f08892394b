package domain

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/store"
)

// TestSweepLocalFilesRemovesWhatTheStoreForgot fills the data directory as other nodes of a cluster
// leave it (a deleted project's site and cache, a pruned deployment's output and log) beside what
// the store still has: the sweep removes the first and keeps the rest, and a store that cannot be
// read removes nothing.
func TestSweepLocalFilesRemovesWhatTheStoreForgot(t *testing.T) {
	var dataDir string
	f := newFixture(t, func(cfg *config.Config) { dataDir = cfg.DataDir })
	p := f.addProject(t, "blog")
	d := &store.Deployment{ProjectID: p.ID, CommitSHA: tipSHA, Branch: "main"}
	if err := f.store.CreateDeployment(d); err != nil {
		t.Fatal(err)
	}
	id := strconv.FormatInt(d.ID, 10)
	kept := []string{"sites/blog/" + id + "/index.html", "sites/blog/" + id + ".tmp/index.html", "logs/" + id + ".log",
		"cache/" + strconv.FormatInt(p.ID, 10) + "/git/HEAD", "cache/oss-hashes.json"}
	removed := []string{"sites/blog/9999/index.html", "sites/deleted/3/index.html", "logs/9999.log", "cache/777/git/HEAD"}
	for _, name := range append(append([]string{}, kept...), removed...) {
		path := filepath.Join(dataDir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.svc.SweepLocalFiles(); err != nil {
		t.Fatal(err)
	}
	for _, name := range kept {
		if _, err := os.Stat(filepath.Join(dataDir, name)); err != nil {
			t.Errorf("%s was removed: %v", name, err)
		}
	}
	for _, name := range []string{"sites/blog/9999", "sites/deleted", "logs/9999.log", "cache/777"} {
		if _, err := os.Stat(filepath.Join(dataDir, name)); !os.IsNotExist(err) {
			t.Errorf("%s is still there: %v", name, err)
		}
	}

	// An unreadable store is no empty one.
	if err := os.MkdirAll(filepath.Join(dataDir, "sites", "deleted"), 0o700); err != nil {
		t.Fatal(err)
	}
	f.store.Close()
	if err := f.svc.SweepLocalFiles(); err == nil {
		t.Error("a sweep with a closed store said nothing")
	}
	if _, err := os.Stat(filepath.Join(dataDir, "sites", "deleted")); err != nil {
		t.Errorf("a sweep with a closed store removed files: %v", err)
	}
}
