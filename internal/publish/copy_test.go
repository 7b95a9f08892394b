package publish

import (
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
