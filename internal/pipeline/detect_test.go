package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/gittest"
)

// outsideMarker is in files outside the repository that a symlink in it points at.
const outsideMarker = "outside-secret-marker"

func TestDetectionStaysInsideTheCheckout(t *testing.T) {
	outside := filepath.Join(hostTempDir(t), "package.json")
	if err := os.WriteFile(outside, []byte(`{"name":"x","packageManager":"`+outsideMarker+`@1","scripts":{"build":"true"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	nvmrc := filepath.Join(hostTempDir(t), "nvmrc")
	if err := os.WriteFile(nvmrc, []byte("99"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, files := range map[string]map[string]string{
		"package.json": {"index.html": "x", "package.json": "->" + outside},
		".nvmrc":       {"package.json": `{"name":"x","scripts":{"build":"mkdir -p dist && echo x > dist/index.html"}}`, ".nvmrc": "->" + nvmrc},
	} {
		t.Run(name, func(t *testing.T) {
			b, data := testBuilder(t)
			r := gittest.New(t)
			job := testJob(data, r, r.Commit("evil", files), 1)
			_, log, err := build(t, context.Background(), b, data, job)
			if err != nil {
				log += "\n" + err.Error()
			}
			if strings.Contains(log, outsideMarker) || strings.Contains(log, "Node 99") {
				t.Errorf("detection read a file outside the checkout:\n%s", log)
			}
		})
	}
}

func TestOutputListingStaysInsideTheCheckout(t *testing.T) {
	outside := hostTempDir(t)
	if err := os.Mkdir(filepath.Join(outside, outsideMarker), 0o755); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(src, "app")); err != nil {
		t.Fatal(err)
	}
	_, err := outputDir(src, "app", "dist")
	if err == nil || strings.Contains(err.Error(), outsideMarker) {
		t.Errorf("err = %v, want no listing of the directory outside", err)
	}
}
