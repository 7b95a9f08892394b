package pipeline

import (
	"os"
	"path/filepath"
	"testing"
)

func TestToolVersions(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	// A package manager that is a script of an npm package: its version is read, it is never run.
	script := filepath.Join(dir, "lib", "node_modules", "fakepm", "bin", "cli.js")
	// A binary of no package answers --version; corepack provides another package manager.
	files := map[string]string{
		script: "#!/bin/sh\nexit 1\n",
		filepath.Join(dir, "lib", "node_modules", "fakepm", "package.json"):          `{"name":"fakepm","version":"9.8.7"}`,
		filepath.Join(bin, "native"):                                                 "#!/bin/sh\necho v1.2.3\n",
		filepath.Join(dir, "lib", "node_modules", "corepack", "dist", "fakeyarn.js"): "#!/bin/sh\nexit 1\n",
		filepath.Join(dir, "lib", "node_modules", "corepack", "dist", "corepack.js"): "#!/bin/sh\nexit 1\n",
		filepath.Join(dir, "lib", "node_modules", "corepack", "package.json"):        `{"name":"corepack","version":"0.34.6"}`,
	}
	for path, content := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{"fakepm": script, "fakeyarn": "../lib/node_modules/corepack/dist/fakeyarn.js",
		"corepack": "../lib/node_modules/corepack/dist/corepack.js"} {
		if err := os.Symlink(target, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin)
	for _, tc := range []struct{ got, want string }{
		{packageManagerVersion("fakepm"), "fakepm 9.8.7"},
		{packageManagerVersion("fakeyarn"), "fakeyarn through corepack 0.34.6"},
		{packageManagerVersion("missing"), "missing through corepack 0.34.6"},
		{toolVersion("native"), "v1.2.3"},
		{toolVersion("missing"), ""},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
