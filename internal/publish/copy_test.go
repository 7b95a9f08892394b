package publish

import (
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"testing"
)

func TestPublishAgainReplacesAnInterruptedPublish(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "sites", "site", "7")
	for i, body := range []string{"first attempt", "second attempt"} {
		src := filepath.Join(dir, "out", body)
		if err := os.MkdirAll(src, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, "index.html"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			// A crash can also leave the half-made copy behind.
			if err := os.MkdirAll(filepath.Join(dst+".tmp", "stale"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		files, err := Copy(src, dst)
		if err != nil {
			t.Fatalf("publish %d: %v", i+1, err)
		}
		if files != 1 {
			t.Errorf("publish %d: %d files, want 1", i+1, files)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "index.html")); string(got) != "second attempt" {
		t.Errorf("index.html = %q, want the second attempt's", got)
	}
	for _, gone := range []string{dst + ".tmp", filepath.Join(dst, "stale")} {
		if _, err := os.Stat(gone); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", filepath.Base(gone), err)
		}
	}
}

// TestPublishStripsDangerousModes checks that no published file or directory is setuid, setgid,
// sticky or writable by group or others, and that the build tree keeps its own modes: a file whose
// mode must change is copied, not hard-linked and changed.
func TestPublishStripsDangerousModes(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "out")
	for name, mode := range map[string]os.FileMode{
		"suid-tool": 0o755 | os.ModeSetuid, "sgid-tool": 0o750 | os.ModeSetgid, "everyone.js": 0o777,
		"group.css": 0o664, "index.html": 0o644, "run.sh": 0o755, "sub/sticky.txt": 0o644 | os.ModeSticky,
	} {
		path := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	for name, mode := range map[string]os.FileMode{"sub": 0o777 | os.ModeSetgid, "tmp": 0o777 | os.ModeSticky} {
		if err := os.MkdirAll(filepath.Join(src, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(src, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	// A setgid parent passes its bit on to the directories made in it.
	sites := filepath.Join(dir, "sites")
	if err := os.Mkdir(sites, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sites, 0o700|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(sites, "site", "1")
	before := modes(t, src)
	if _, err := Copy(src, dst); err != nil {
		t.Fatal(err)
	}

	want := map[string]os.FileMode{
		"suid-tool": 0o755, "sgid-tool": 0o750, "everyone.js": 0o755, "group.css": 0o644,
		"index.html": 0o644, "run.sh": 0o755, "sub/sticky.txt": 0o644,
	}
	for name, mode := range modes(t, dst) {
		if mode&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky|0o022) != 0 {
			t.Errorf("published %s has mode %v", name, mode)
		}
		if w, ok := want[name]; ok && mode != w {
			t.Errorf("published %s has mode %v, want %v", name, mode, w)
		}
	}
	if after := modes(t, src); !maps.Equal(after, before) {
		t.Errorf("the build tree's modes changed:\nbefore %v\nafter  %v", before, after)
	}
	// A file whose mode is fine is still linked, not copied.
	for name, linked := range map[string]bool{"index.html": true, "run.sh": true, "suid-tool": false, "everyone.js": false} {
		a, _ := os.Stat(filepath.Join(src, name))
		b, _ := os.Stat(filepath.Join(dst, name))
		if os.SameFile(a, b) != linked {
			t.Errorf("%s: hard-linked %v, want %v", name, !linked, linked)
		}
	}
}

// modes returns the mode of every file and directory below root, by slash path.
func modes(t *testing.T, root string) map[string]os.FileMode {
	t.Helper()
	out := map[string]os.FileMode{}
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		out[filepath.ToSlash(rel)] = info.Mode()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
