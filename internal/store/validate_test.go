package store

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// usedStore returns the bytes of a store file that holds projects and deployments, cut to its pages.
func usedStore(t testing.TB) []byte {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		p := &Project{Name: "site", Slug: "site", RepoURL: "https://example.com/r.git", DefaultBranch: "main",
			Target: "local", WebhookSecret: "s", Env: map[string]string{"KEY": strings.Repeat("v", i*200)}}
		if err := s.CreateProject(p); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateDeployment(&Deployment{ProjectID: p.ID, CommitSHA: sha("a"), Branch: "main",
			CommitMessage: strings.Repeat("message ", 100)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var size int64
	if err := db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// bbolt allocates ahead of its pages; the file cut to them is as sound and much smaller.
	return data[:size]
}

// pageSize is the page size of the store files the tests write.
const pageSize = 4096

// withFile writes a data dir whose store file holds data.
func withFile(t testing.TB, data []byte) (dir, path string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, FileName)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

func TestOpenRefusesDamagedStore(t *testing.T) {
	used := usedStore(t)
	size := len(used)
	random := func(seed uint64, n int) []byte {
		b := make([]byte, n)
		r := rand.NewChaCha8([32]byte{byte(seed)})
		_, _ = r.Read(b)
		return b
	}
	// Garbage over the pages after the two meta pages: the metas still check out.
	garbled := bytes.Clone(used)
	copy(garbled[2*pageSize:size], random(1, size-2*pageSize))
	foreign := func() []byte {
		path := filepath.Join(t.TempDir(), "other.db")
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("other")); return err }); err != nil {
			t.Fatal(err)
		}
		db.Close()
		data, _ := os.ReadFile(path)
		return data
	}()

	for _, tc := range []struct {
		name, reason string
		data         []byte
	}{
		{"empty", "is empty (0 bytes)", nil},
		{"shorter than its meta pages", "is damaged", used[:5000]},
		{"truncated", "is truncated", used[:size/2]},
		{"random bytes", "is damaged", random(2, 64<<10)},
		{"garbage pages", "is damaged", garbled},
		{"another program's bbolt file", "is not a miaobu store", foreign},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, path := withFile(t, tc.data)
			s, err := Open(dir, time.Second)
			if err == nil {
				s.Close()
				t.Fatal("opened a damaged store")
			}
			var damaged *DamagedError
			if !errors.As(err, &damaged) || damaged.Path != path {
				t.Fatalf("error %v (%T), want a DamagedError naming %s", err, err, path)
			}
			msg := err.Error()
			for _, want := range []string{path + " " + tc.reason, "miaobu backup", "in place of " + path} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not say %q", msg, want)
				}
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, tc.data) {
				t.Error("the refused file was changed")
			}
		})
	}
}

func TestOpenKeepsSoundStores(t *testing.T) {
	dir, _ := withFile(t, usedStore(t))
	s, err := Open(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	projects, err := s.Projects()
	if err != nil || len(projects) != 60 {
		t.Fatalf("%d projects, %v", len(projects), err)
	}

	// A brand-new data dir, and an empty bbolt file (its creation was interrupted before miaobu
	// wrote anything), start as a new store.
	fresh := filepath.Join(t.TempDir(), "new")
	for range 2 {
		s, err := Open(fresh, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	bare := filepath.Join(t.TempDir(), "bare.db")
	db, err := bolt.Open(bare, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	data, _ := os.ReadFile(bare)
	dir, _ = withFile(t, data)
	if s, err = Open(dir, time.Second); err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// FuzzOpenDamagedStore overwrites bytes of a real store file: Open either opens it or refuses it
// with a DamagedError, and never crashes.
func FuzzOpenDamagedStore(f *testing.F) {
	used := usedStore(f)
	f.Add(uint32(2*pageSize), []byte{0xff, 0xff, 0xff, 0xff})
	f.Add(uint32(3*pageSize+16), []byte("garbage in a leaf page"))
	f.Add(uint32(0), []byte{0})
	f.Add(uint32(pageSize+20), []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, at uint32, garbage []byte) {
		data := bytes.Clone(used)
		copy(data[int(at)%len(data):], garbage)
		dir, _ := withFile(t, data)
		s, err := Open(dir, time.Second)
		if err == nil {
			s.Close()
			return
		}
		var damaged *DamagedError
		if !errors.As(err, &damaged) && !strings.Contains(err.Error(), "schema") {
			t.Fatalf("a damaged store gave %v (%T)", err, err)
		}
	})
}
