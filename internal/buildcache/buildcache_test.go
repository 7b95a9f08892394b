package buildcache

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// write creates files (slash-separated name → content) under dir.
func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// exists reports whether path exists, failing the test on any other error.
func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Lstat(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

func TestKeyCoversWhatDecidesAnInstall(t *testing.T) {
	base := func() fstest.MapFS {
		return fstest.MapFS{
			"package.json":            {Data: []byte(`{"workspaces":["packages/*"]}`)},
			"package-lock.json":       {Data: []byte(`{"lockfileVersion":3}`)},
			"packages/a/package.json": {Data: []byte(`{"name":"a"}`)},
			"packages/a/index.js":     {Data: []byte(`1`)},
			"src/main.js":             {Data: []byte(`console.log(1)`)},
			"README.md":               {Data: []byte(`# site`)},
			"node_modules/x/index.js": {Data: []byte(`x`)},
		}
	}
	in := Inputs{PackageManager: "npm 11.19.1", Node: "v20.20.2", InstallCommand: "npm ci", Root: ".", Env: map[string]string{"API": "1"}}
	want, err := Key(base(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 64 {
		t.Fatalf("key %q is not a hex SHA-256", want)
	}
	for _, tc := range []struct {
		name    string
		change  func(fsys fstest.MapFS, in *Inputs)
		changed bool
	}{
		{"nothing", func(fstest.MapFS, *Inputs) {}, false},
		{"a source file", func(f fstest.MapFS, _ *Inputs) { f["src/main.js"].Data = []byte("2") }, false},
		{"a workspace's source file", func(f fstest.MapFS, _ *Inputs) { f["packages/a/index.js"].Data = []byte("2") }, false},
		{"the README", func(f fstest.MapFS, _ *Inputs) { f["README.md"].Data = []byte("#") }, false},
		{"what is in node_modules", func(f fstest.MapFS, _ *Inputs) { f["node_modules/x/index.js"].Data = []byte("y") }, false},
		{"the lockfile", func(f fstest.MapFS, _ *Inputs) { f["package-lock.json"].Data = []byte(`{}`) }, true},
		{"package.json", func(f fstest.MapFS, _ *Inputs) { f["package.json"].Data = []byte(`{}`) }, true},
		{"a workspace's package.json", func(f fstest.MapFS, _ *Inputs) { f["packages/a/package.json"].Data = []byte(`{}`) }, true},
		{"a new workspace", func(f fstest.MapFS, _ *Inputs) { f["packages/b/package.json"] = &fstest.MapFile{Data: []byte(`{}`)} }, true},
		{".npmrc", func(f fstest.MapFS, _ *Inputs) { f[".npmrc"] = &fstest.MapFile{Data: []byte("legacy-peer-deps=true")} }, true},
		{".yarnrc.yml", func(f fstest.MapFS, _ *Inputs) { f[".yarnrc.yml"] = &fstest.MapFile{Data: []byte("nodeLinker: pnp")} }, true},
		{"pnpm-workspace.yaml", func(f fstest.MapFS, _ *Inputs) {
			f["pnpm-workspace.yaml"] = &fstest.MapFile{Data: []byte("packages: []")}
		}, true},
		{"a patch", func(f fstest.MapFS, _ *Inputs) { f["patches/x+1.0.0.patch"] = &fstest.MapFile{Data: []byte("diff")} }, true},
		{"a Yarn release", func(f fstest.MapFS, _ *Inputs) { f[".yarn/releases/yarn-4.cjs"] = &fstest.MapFile{Data: []byte("y")} }, true},
		{"the package manager's version", func(_ fstest.MapFS, in *Inputs) { in.PackageManager = "npm 11.19.2" }, true},
		{"the Node version", func(_ fstest.MapFS, in *Inputs) { in.Node = "v20.20.3" }, true},
		{"the install command", func(_ fstest.MapFS, in *Inputs) { in.InstallCommand = "npm install" }, true},
		{"the root directory", func(_ fstest.MapFS, in *Inputs) { in.Root = "packages/a" }, true},
		{"a variable's value", func(_ fstest.MapFS, in *Inputs) { in.Env = map[string]string{"API": "2"} }, true},
		{"a variable's name", func(_ fstest.MapFS, in *Inputs) { in.Env = map[string]string{"AP": "I1"} }, true},
		{"a new variable", func(_ fstest.MapFS, in *Inputs) { in.Env = map[string]string{"API": "1", "NODE_OPTIONS": "x"} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys, in := base(), in
			tc.change(fsys, &in)
			got, err := Key(fsys, in)
			if err != nil {
				t.Fatal(err)
			}
			if (got != want) != tc.changed {
				t.Errorf("key changed = %v, want %v", got != want, tc.changed)
			}
		})
	}
}

func TestKeyOfAProjectBelowItsLockfile(t *testing.T) {
	base := func() fstest.MapFS {
		return fstest.MapFS{
			"package.json":          {Data: []byte(`{"workspaces":["apps/*"]}`)},
			"yarn.lock":             {Data: []byte(`# yarn`)},
			"apps/web/package.json": {Data: []byte(`{"name":"web"}`)},
			"apps/api/package.json": {Data: []byte(`{"name":"api"}`)},
		}
	}
	in := Inputs{PackageManager: "yarn 1.22.22", Node: "v20.20.2", InstallCommand: "yarn install --frozen-lockfile", Root: "apps/web"}
	want, err := Key(base(), in)
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(fstest.MapFS){
		"the lockfile above":                 func(f fstest.MapFS) { f["yarn.lock"].Data = []byte("#") },
		"the workspace root's package.json":  func(f fstest.MapFS) { f["package.json"].Data = []byte("{}") },
		"another workspace the lockfile has": func(f fstest.MapFS) { f["apps/api/package.json"].Data = []byte("{}") },
	} {
		fsys := base()
		change(fsys)
		if got, err := Key(fsys, in); err != nil || got == want {
			t.Errorf("%s: key unchanged (%v)", name, err)
		}
	}

	// Without a lockfile the project's own directory is the install's, and what is above still counts.
	unlocked := base()
	delete(unlocked, "yarn.lock")
	in.Root = "apps/web"
	before, err := Key(unlocked, in)
	if err != nil {
		t.Fatal(err)
	}
	unlocked["apps/api/package.json"].Data = []byte("{}")
	if got, _ := Key(unlocked, in); got != before {
		t.Error("a sibling project outside the install changed the key")
	}
	unlocked[".npmrc"] = &fstest.MapFile{Data: []byte("x=1")}
	if got, _ := Key(unlocked, in); got == before {
		t.Error("an .npmrc above the project did not change the key")
	}
}

// installed makes, under the checkout src, what an install of a project with one workspace leaves.
func installed(t *testing.T, src, stamp string) {
	t.Helper()
	write(t, src, map[string]string{
		"package.json":                 "{}",
		"packages/a/package.json":      "{}",
		"node_modules/dep/index.js":    stamp,
		"packages/a/node_modules/x.js": stamp,
	})
}

// record is Installed, failing the test on an error.
func record(t *testing.T, p *Project, src string) {
	t.Helper()
	if err := p.Installed(src); err != nil {
		t.Fatal(err)
	}
}

// checkout is a new checkout of the project installed makes, without its node_modules.
func checkout(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	write(t, src, map[string]string{"package.json": "{}", "packages/a/package.json": "{}"})
	return src
}

func TestDependenciesGoBackAndForthByRename(t *testing.T) {
	caches := New(t.TempDir())
	p, err := caches.Open(1)
	if err != nil {
		t.Fatal(err)
	}
	src := checkout(t)
	installed(t, src, "first")
	stat := func(path string) os.FileInfo {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	before := stat(filepath.Join(src, "node_modules", "dep", "index.js"))
	record(t, p, src)
	if n, err := p.KeepDeps("k1", src); err != nil || n != 2 {
		t.Fatalf("KeepDeps = %d, %v; want both node_modules kept", n, err)
	}
	if exists(t, filepath.Join(src, "node_modules")) || exists(t, filepath.Join(src, "packages", "a", "node_modules")) {
		t.Error("KeepDeps left a node_modules in the checkout")
	}

	next := checkout(t)
	if hit, err := p.TakeDeps("k1", next); !hit || err != nil {
		t.Fatalf("TakeDeps = %v, %v; want a hit", hit, err)
	}
	if got, _ := os.ReadFile(filepath.Join(next, "packages", "a", "node_modules", "x.js")); string(got) != "first" {
		t.Errorf("workspace dependencies = %q", got)
	}
	if after := stat(filepath.Join(next, "node_modules", "dep", "index.js")); !os.SameFile(after, before) {
		t.Error("the dependencies were copied, not renamed")
	}
	// Taken, the entry is incomplete: a crash now must not leave an entry that looks usable.
	if hit, _ := p.TakeDeps("k1", checkout(t)); hit {
		t.Error("an entry whose dependencies are out was taken again")
	}
	record(t, p, next)
	if n, err := p.KeepDeps("k1", next); err != nil || n != 2 {
		t.Fatalf("KeepDeps after the build = %d, %v", n, err)
	}
	// Another key is a miss that removes the entry.
	if hit, err := p.TakeDeps("k2", checkout(t)); hit || err != nil {
		t.Fatalf("TakeDeps of another key = %v, %v; want a plain miss", hit, err)
	}
	if exists(t, filepath.Join(p.dir, depsDir)) {
		t.Error("the entry of the old key is still there")
	}
}

func TestDamagedEntriesAreNeverUsed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, entry, src string)
	}{
		{"no manifest (killed while writing, or the build that took it crashed)", func(t *testing.T, entry, _ string) {
			os.Remove(filepath.Join(entry, manifestName))
		}},
		{"a truncated manifest", func(t *testing.T, entry, _ string) {
			os.WriteFile(filepath.Join(entry, manifestName), []byte(`{"key":"k1","tr`), 0o600)
		}},
		{"a manifest of another key", func(t *testing.T, entry, _ string) {
			os.WriteFile(filepath.Join(entry, manifestName), []byte(`{"key":"k0","trees":["node_modules"]}`), 0o600)
		}},
		{"a tree missing", func(t *testing.T, entry, _ string) {
			os.RemoveAll(filepath.Join(entry, treeDir, "packages"))
		}},
		{"a manifest naming a path out of the checkout", func(t *testing.T, entry, _ string) {
			os.WriteFile(filepath.Join(entry, manifestName), []byte(`{"key":"k1","trees":["../node_modules"]}`), 0o600)
		}},
		{"a commit with a node_modules of its own", func(t *testing.T, _, src string) {
			write(t, src, map[string]string{"node_modules/committed.js": "x"})
		}},
		{"a workspace that is a symbolic link in the commit", func(t *testing.T, _, src string) {
			outside := t.TempDir()
			os.RemoveAll(filepath.Join(src, "packages", "a"))
			if err := os.Symlink(outside, filepath.Join(src, "packages", "a")); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if exists(t, filepath.Join(outside, "node_modules")) {
					t.Error("dependencies were renamed out of the checkout through a link")
				}
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(t.TempDir()).Open(1)
			if err != nil {
				t.Fatal(err)
			}
			src := checkout(t)
			installed(t, src, "first")
			record(t, p, src)
			if _, err := p.KeepDeps("k1", src); err != nil {
				t.Fatal(err)
			}
			next := checkout(t)
			tc.damage(t, p.entry("k1"), next)
			hit, err := p.TakeDeps("k1", next)
			if hit {
				t.Fatal("a damaged entry was used")
			}
			if err == nil {
				t.Error("no error says why the entry was not used")
			}
			if exists(t, filepath.Join(p.dir, depsDir)) {
				t.Error("the damaged entry was kept")
			}
			if exists(t, filepath.Join(next, "packages", "a", "node_modules")) {
				t.Error("part of the damaged entry was left in the checkout")
			}
		})
	}
}

func TestWhatIsNotKept(t *testing.T) {
	t.Run("a Plug'n'Play install", func(t *testing.T) {
		p, _ := New(t.TempDir()).Open(1)
		src := checkout(t)
		installed(t, src, "pnp")
		write(t, src, map[string]string{".pnp.cjs": "module.exports = {}"})
		record(t, p, src)
		if n, err := p.KeepDeps("k1", src); n != 0 || err != nil {
			t.Errorf("KeepDeps = %d, %v; want nothing kept", n, err)
		}
		if hit, _ := p.TakeDeps("k1", checkout(t)); hit {
			t.Error("a Plug'n'Play install was kept without its .pnp.cjs")
		}
	})
	t.Run("what a build takes after its cache was cleared", func(t *testing.T) {
		caches := New(t.TempDir())
		p, _ := caches.Open(1)
		src := checkout(t)
		installed(t, src, "x")
		record(t, p, src)
		write(t, p.Stores(), map[string]string{"npm/x": "in use"})
		if freed, err := caches.Clear(1); err != nil || freed == 0 {
			t.Fatalf("Clear = %d, %v; want what the cache holds", freed, err)
		}
		// The running build's directories stay until it ends.
		if !exists(t, filepath.Join(p.Stores(), "npm", "x")) {
			t.Fatal("Clear removed the stores of a build still running")
		}
		if _, err := p.KeepDeps("k1", src); !errors.Is(err, errCleared) {
			t.Errorf("KeepDeps = %v, want errCleared", err)
		}
		if _, err := p.KeepFramework(src, ".", true); !errors.Is(err, errCleared) {
			t.Errorf("KeepFramework = %v, want errCleared", err)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if exists(t, caches.projectDir(1)) {
			t.Error("the cache cleared during the build is still there once it ended")
		}
	})
}

func TestOnlyTheInstalledDependenciesUnchangedAreKept(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(t *testing.T, src string)
		want  int
	}{
		{"a build that changes nothing", func(*testing.T, string) {}, 2},
		{"a build that fills the framework caches", func(t *testing.T, src string) {
			write(t, src, map[string]string{"node_modules/.cache/x": "c", "node_modules/.vite/y": "v"})
		}, 2},
		{"a build that makes a node_modules of its own", func(t *testing.T, src string) {
			write(t, src, map[string]string{".next/standalone/node_modules/x.js": "x"})
		}, 2},
		{"a build that appends to a dependency", func(t *testing.T, src string) {
			f, err := os.OpenFile(filepath.Join(src, "node_modules", "dep", "index.js"), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString("poisoned"); err != nil {
				t.Fatal(err)
			}
		}, 0},
		{"a build that adds a file to a dependency", func(t *testing.T, src string) {
			write(t, src, map[string]string{"packages/a/node_modules/planted.js": "x"})
		}, 0},
		{"a build that removes a dependency", func(t *testing.T, src string) {
			os.RemoveAll(filepath.Join(src, "packages", "a", "node_modules"))
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := New(t.TempDir()).Open(1)
			src := checkout(t)
			installed(t, src, "first")
			record(t, p, src)
			tc.build(t, src)
			n, err := p.KeepDeps("k1", src)
			if n != tc.want || (tc.want == 0) != errors.Is(err, ErrDepsChanged) {
				t.Fatalf("KeepDeps = %d, %v; want %d kept", n, err, tc.want)
			}
			if tc.want == 0 && exists(t, filepath.Join(p.dir, depsDir)) {
				t.Error("an entry remains after the build changed its dependencies")
			}
			if exists(t, filepath.Join(p.entry("k1"), treeDir, ".next")) {
				t.Error("a node_modules the build made was kept")
			}
		})
	}
}

func TestFrameworkCachesFromOneSuccessToTheNextBuild(t *testing.T) {
	p, _ := New(t.TempDir()).Open(1)
	src := t.TempDir()
	write(t, src, map[string]string{
		"web/node_modules/.cache/babel/x": "1", "web/.next/cache/images/y": "2", "web/.svelte-kit/z": "3", "web/dist/index.html": "out",
	})
	if n, err := p.KeepFramework(src, "web", true); n != 3 || err != nil {
		t.Fatalf("KeepFramework = %d, %v; want 3 kept", n, err)
	}
	if exists(t, filepath.Join(src, "web", "node_modules", ".cache")) || !exists(t, filepath.Join(src, "web", "dist")) {
		t.Error("KeepFramework took the wrong directories")
	}

	next := t.TempDir()
	write(t, next, map[string]string{"web/package.json": "{}", "web/.svelte-kit/committed": "c"})
	put, made, err := p.TakeFramework(next, "web")
	if err != nil {
		t.Fatal(err)
	}
	// No node_modules: the install made none, and none is made for a cache. The commit's own .svelte-kit stays.
	if len(put) != 1 || !strings.HasSuffix(put[0], filepath.Join(".next", "cache")) || len(made) != 1 || filepath.Base(made[0]) != ".next" {
		t.Errorf("TakeFramework put %q and made %q; want only .next/cache, in a .next it made", put, made)
	}
	if exists(t, filepath.Join(next, "web", "node_modules")) || exists(t, filepath.Join(next, "web", ".svelte-kit", "z")) {
		t.Error("TakeFramework made a node_modules or replaced the commit's own directory")
	}

	// A failed build's caches are dropped, and so are those it took.
	if _, err := p.KeepFramework(next, "web", false); err != nil {
		t.Fatal(err)
	}
	if exists(t, filepath.Join(next, "web", ".next", "cache")) {
		t.Error("a failed build's cache was left where KeepDeps would keep it")
	}
	if put, _, _ := p.TakeFramework(t.TempDir(), "."); len(put) != 0 {
		t.Errorf("after a failed build the next one got %q", put)
	}
}

func TestFrameworkCachesThroughLinksAreLeftAlone(t *testing.T) {
	p, _ := New(t.TempDir()).Open(1)
	outside := t.TempDir()
	write(t, outside, map[string]string{"cache/secret": "host file"})
	src := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(src, ".next")); err != nil {
		t.Fatal(err)
	}
	if n, err := p.KeepFramework(src, ".", true); n != 0 || err != nil {
		t.Errorf("KeepFramework = %d, %v; want nothing kept", n, err)
	}
	if !exists(t, filepath.Join(outside, "cache", "secret")) {
		t.Error("a directory the build linked to was moved into the cache")
	}
}

func TestTrimRemovesWhatIsQuickestToFillAgainFirst(t *testing.T) {
	caches := New(t.TempDir())
	p, _ := caches.Open(1)
	kib := func(n int) string { return strings.Repeat("x", n<<10) }
	write(t, p.dir, map[string]string{"stores/npm/blob": kib(256), "framework/.next/cache/x": kib(64), "git/objects/pack/p": kib(64),
		"deps/k/tree/node_modules/dep": kib(64), "deps/k/manifest.json": "{}"})
	p.Close()
	for _, tc := range []struct {
		limit int64
		left  []string
	}{
		{1 << 30, []string{storesDir, frameworkDir, gitDir, depsDir}},
		{300 << 10, []string{frameworkDir, gitDir, depsDir}},
		{100 << 10, []string{depsDir}},
		{1, nil},
	} {
		if _, err := caches.Trim(1, tc.limit); err != nil {
			t.Fatal(err)
		}
		for _, part := range []string{storesDir, frameworkDir, gitDir, depsDir} {
			if got, want := exists(t, filepath.Join(p.dir, part)), slices.Contains(tc.left, part); got != want {
				t.Errorf("trimmed to %d bytes: %s exists = %v, want %v", tc.limit, part, got, want)
			}
		}
		if size, _ := caches.Size(1); size > tc.limit && tc.limit > 1 {
			t.Errorf("trimmed to %d bytes, the cache takes %d", tc.limit, size)
		}
	}
}

func TestSizeClearAndSweep(t *testing.T) {
	root := t.TempDir()
	caches := New(root)
	p, _ := caches.Open(1)
	big := strings.Repeat("x", 256<<10)
	write(t, p.Stores(), map[string]string{"npm/blob": big})
	if err := os.Link(filepath.Join(p.Stores(), "npm", "blob"), filepath.Join(p.Stores(), "linked")); err != nil {
		t.Fatal(err)
	}
	p.Close()
	size, err := caches.Size(1)
	if err != nil {
		t.Fatal(err)
	}
	if size < 256<<10 || size >= 512<<10 {
		t.Errorf("size %d: a hard-linked 256 KiB file must count once", size)
	}
	if other, _ := caches.Size(2); other != 0 {
		t.Errorf("a project without a cache has size %d", other)
	}

	freed, err := caches.Clear(1)
	if err != nil || freed != size {
		t.Errorf("Clear = %d, %v; want %d freed", freed, err, size)
	}
	if after, _ := caches.Size(1); after != 0 || exists(t, caches.projectDir(1)) {
		t.Errorf("after Clear the cache takes %d bytes", after)
	}

	// What an agent stopped mid-way leaves behind.
	write(t, root, map[string]string{
		".trash/1-x/stores/f":    "being cleared",
		"2/deps/.tmp-1/manifest": "half written",
		"2/deps/k/manifest.json": "complete",
		"2/npm/old-layout":       "from before",
		"2/.tmp-2/.next/cache/x": "framework caches half kept",
		"3/git/HEAD":             "a deleted project's",
		"oss-site.json":          "the OSS target's",
	})
	if err := caches.Sweep(func(id int64) bool { return id == 2 }); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{".trash": false, "2/deps/.tmp-1": false, "2/deps/k/manifest.json": true,
		"2/npm": false, "2/.tmp-2": false, "3": false, "oss-site.json": true} {
		if got := exists(t, filepath.Join(root, filepath.FromSlash(name))); got != want {
			t.Errorf("after Sweep %s exists = %v, want %v", name, got, want)
		}
	}
}
