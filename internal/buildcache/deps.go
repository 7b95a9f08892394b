package buildcache

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// manifestName is the file written last into a dependency entry: an entry without it, or whose
// manifest does not match, is incomplete and never used.
const manifestName = "manifest.json"

// treeDir holds, in an entry, the kept directories at their paths relative to the checkout.
const treeDir = "tree"

// modulesDir is the directory an install fills, in the project and in each of its workspaces.
const modulesDir = "node_modules"

// pnpFiles are written by Yarn's Plug'n'Play installs, which keep their dependencies outside
// node_modules: such an install is not kept, so it is never skipped with half of it missing.
var pnpFiles = []string{".pnp.cjs", ".pnp.js"}

// manifest describes a complete dependency entry.
type manifest struct {
	Key string `json:"key"`
	// Trees are the node_modules directories kept, slash-separated, relative to the checkout.
	Trees []string `json:"trees"`
}

// entry is the directory of the dependency entry of key.
func (p *Project) entry(key string) string { return filepath.Join(p.dir, depsDir, key) }

// TakeDeps puts the dependencies kept under key into the checkout src by renaming them and reports
// whether it did, removing an entry of another key or an incomplete one, so that the build installs
// and KeepDeps files what it installed.
func (p *Project) TakeDeps(key, src string) (bool, error) {
	m, err := p.readManifest(key, src)
	if err != nil {
		return false, p.dropDeps(err)
	}
	// Without its manifest while the trees are out, the entry is incomplete until KeepDeps returns them.
	if err := os.Remove(filepath.Join(p.entry(key), manifestName)); err != nil {
		return false, p.dropDeps(err)
	}
	for i, tree := range m.Trees {
		if err := os.Rename(filepath.Join(p.entry(key), treeDir, filepath.FromSlash(tree)), filepath.Join(src, filepath.FromSlash(tree))); err != nil {
			// The install that follows must find none of them.
			for _, done := range m.Trees[:i] {
				_ = os.RemoveAll(filepath.Join(src, filepath.FromSlash(done)))
			}
			return false, p.dropDeps(err)
		}
	}
	return true, nil
}

// errNoEntry is a miss: no entry for the key.
var errNoEntry = errors.New("no entry")

// dropDeps removes every dependency entry, after a miss or a failure to use one; it returns the
// failure, or nil for a plain miss.
func (p *Project) dropDeps(cause error) error {
	err := os.RemoveAll(filepath.Join(p.dir, depsDir))
	if errors.Is(cause, errNoEntry) {
		return err
	}
	return errors.Join(cause, err)
}

// readManifest reads and checks the entry of key: complete, of that key, and with every tree in
// it and none of them in the checkout src, whose directories they go into are real ones.
func (p *Project) readManifest(key, src string) (*manifest, error) {
	data, err := os.ReadFile(filepath.Join(p.entry(key), manifestName))
	if errors.Is(err, os.ErrNotExist) {
		if _, statErr := os.Lstat(p.entry(key)); statErr == nil {
			return nil, fmt.Errorf("dependency entry %s is incomplete", short(key))
		}
		return nil, errNoEntry
	}
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil || m.Key != key || len(m.Trees) == 0 {
		return nil, fmt.Errorf("dependency entry %s is damaged", short(key))
	}
	for _, tree := range m.Trees {
		if !fs.ValidPath(tree) || path.Base(tree) != modulesDir {
			return nil, fmt.Errorf("dependency entry %s is damaged: it names %q", short(key), tree)
		}
		kept := filepath.Join(p.entry(key), treeDir, filepath.FromSlash(tree))
		if info, err := os.Lstat(kept); err != nil || !info.IsDir() {
			return nil, fmt.Errorf("dependency entry %s is incomplete: %s is missing", short(key), tree)
		}
		if _, err := os.Lstat(filepath.Join(src, filepath.FromSlash(tree))); !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("the commit has its own %s", tree)
		}
		if err := realDir(src, path.Dir(tree)); err != nil {
			return nil, err
		}
	}
	return &m, nil
}

// realDir checks that rel (slash-separated) is a directory of the checkout src reached through no
// symbolic link, so nothing renamed into it lands outside the checkout.
func realDir(src, rel string) error {
	want := filepath.Join(src, filepath.FromSlash(rel))
	got, err := filepath.EvalSymlinks(want)
	if err != nil {
		return err
	}
	realSrc, err := filepath.EvalSymlinks(src)
	if err != nil {
		return err
	}
	if got != filepath.Join(realSrc, filepath.FromSlash(rel)) {
		return fmt.Errorf("%s is a symbolic link in the commit", rel)
	}
	if info, err := os.Stat(got); err != nil || !info.IsDir() {
		return fmt.Errorf("%s is not a directory in the commit", rel)
	}
	return nil
}

// Installed records the node_modules directories of the checkout src as the install left them, or
// as TakeDeps put them, with a fingerprint of what they hold: KeepDeps keeps those directories
// only, and only unchanged, so nothing the build made or changed is reused.
func (p *Project) Installed(src string) error {
	trees, err := findTrees(src)
	if err != nil {
		return err
	}
	sum, err := fingerprint(src, trees)
	if err != nil {
		return err
	}
	p.trees, p.sum = trees, sum
	return nil
}

// ErrDepsChanged is KeepDeps's error when the build changed the installed dependencies.
var ErrDepsChanged = errors.New("dependencies changed during the build; not kept")

// KeepDeps moves the node_modules directories Installed recorded out of the checkout src into the
// entry of key, which replaces every other entry, and returns how many it kept: none, and no entry
// remains, when the install made none, was a Plug'n'Play one, or the build changed them.
func (p *Project) KeepDeps(key, src string) (int, error) {
	if p.cleared() {
		return 0, errCleared
	}
	if len(p.trees) == 0 {
		return 0, p.dropDeps(errNoEntry)
	}
	if sum, err := fingerprint(src, p.trees); err != nil || sum != p.sum {
		return 0, p.dropDeps(errors.Join(ErrDepsChanged, err))
	}
	deps := filepath.Join(p.dir, depsDir)
	tmp, err := tempDir(deps)
	if err != nil {
		return 0, err
	}
	if err := fill(tmp, src, p.trees, key); err != nil {
		_ = os.RemoveAll(tmp)
		return 0, err
	}
	if err := removeEntries(deps, func(name string) bool { return name != filepath.Base(tmp) }); err != nil {
		_ = os.RemoveAll(tmp)
		return 0, err
	}
	if err := os.Rename(tmp, p.entry(key)); err != nil {
		_ = os.RemoveAll(tmp)
		return 0, err
	}
	return len(p.trees), syncDir(deps)
}

// DropDeps removes the project's dependency entries, after a build that failed: what it took from
// the cache or installed may be what made it fail.
func (p *Project) DropDeps() error {
	if p.cleared() {
		return nil
	}
	return p.dropDeps(errNoEntry)
}

// fingerprint hashes the path and mode of everything in the trees of the checkout src, and the
// size and modification time of what is not a directory, but for the framework caches in them,
// which the build may change.
func fingerprint(src string, trees []string) (string, error) {
	h := sha256.New()
	for _, tree := range trees {
		dir := filepath.Join(src, filepath.FromSlash(tree))
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(src, p)
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			if d.IsDir() && slices.Contains(frameworkPaths, path.Join(modulesDir, strings.TrimPrefix(rel, tree+"/"))) {
				return fs.SkipDir
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			if d.IsDir() {
				// Its time and size change with its entries, a framework cache's among them.
				fmt.Fprintf(h, "%q %v\n", rel, info.Mode())
				return nil
			}
			fmt.Fprintf(h, "%q %v %d %d\n", rel, info.Mode(), info.Size(), info.ModTime().UnixNano())
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fill moves trees from src into the temporary entry tmp and writes its manifest, last and synced.
func fill(tmp, src string, trees []string, key string) error {
	for _, tree := range trees {
		to := filepath.Join(tmp, treeDir, filepath.FromSlash(tree))
		if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(src, filepath.FromSlash(tree)), to); err != nil {
			return err
		}
	}
	data, err := json.Marshal(manifest{Key: key, Trees: trees})
	if err != nil {
		return err
	}
	return writeSynced(filepath.Join(tmp, manifestName), data)
}

// findTrees returns the node_modules directories of the checkout src, slash-separated and relative
// to it, outside .git and other node_modules; an install that left Plug'n'Play files finds none.
func findTrees(src string) ([]string, error) {
	var trees []string
	pnp := false
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if slices.Contains(pnpFiles, d.Name()) {
			pnp = true
			return fs.SkipAll
		}
		if !d.IsDir() {
			return nil
		}
		switch d.Name() {
		case ".git":
			return fs.SkipDir
		case modulesDir:
			rel, err := filepath.Rel(src, p)
			if err != nil {
				return err
			}
			trees = append(trees, filepath.ToSlash(rel))
			return fs.SkipDir
		}
		return nil
	})
	if err != nil || pnp {
		return nil, err
	}
	return trees, nil
}

// tempDir creates a directory for an entry being written in dir, named so it is never taken for a
// complete one.
func tempDir(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tmp := filepath.Join(dir, tempPrefix+hex.EncodeToString(b))
	return tmp, os.Mkdir(tmp, 0o700)
}

// tempPrefix starts the names of entries being written.
const tempPrefix = ".tmp-"

// removeEntries removes the entries of dir whose names remove picks.
func removeEntries(dir string, remove func(name string) bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if remove(e.Name()) {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
		}
	}
	return errors.Join(errs...)
}

// isTemporary reports whether an entry's name is that of one being written.
func isTemporary(name string) bool { return strings.HasPrefix(name, tempPrefix) }

// writeSynced writes a file with mode 0600 and syncs it to disk.
func writeSynced(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir syncs a directory, so the renames in it survive a crash.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// short is the first 7 hex digits of a key, as logs show it.
func short(key string) string { return key[:min(7, len(key))] }
