package buildcache

import (
	"errors"
	"os"
	"path"
	"path/filepath"
)

// frameworkPaths are the caches frameworks keep in a project directory, slash-separated; each is
// kept from one successful build to the next build of the project.
var frameworkPaths = []string{
	"node_modules/.cache", // webpack, Babel, Nuxt, Gatsby's plugins and most tools that cache
	"node_modules/.vite",
	"node_modules/.astro",
	".next/cache",
	".astro",
	".svelte-kit",
}

// TakeFramework puts the framework caches of the project's last successful build into the project
// directory root (slash-separated, relative to the checkout src) where the commit and the install
// made none of their own, and returns the paths it put them at, with the directories it made for
// them.
func (p *Project) TakeFramework(src, root string) (put, made []string, err error) {
	kept := filepath.Join(p.dir, frameworkDir)
	if realDir(src, root) != nil {
		return nil, nil, nil // a root directory that leads out of the checkout gets nothing
	}
	for _, fp := range frameworkPaths {
		from := filepath.Join(kept, filepath.FromSlash(fp))
		to := filepath.Join(src, filepath.FromSlash(path.Join(root, fp)))
		if _, err := os.Lstat(from); err != nil {
			continue
		}
		if _, err := os.Lstat(to); !errors.Is(err, os.ErrNotExist) {
			continue
		}
		// Never a node_modules the install did not make: it would pass for installed dependencies.
		if _, err := os.Lstat(filepath.Dir(to)); errors.Is(err, os.ErrNotExist) && path.Dir(fp) != modulesDir {
			if os.Mkdir(filepath.Dir(to), 0o700) == nil {
				made = append(made, filepath.Dir(to))
			}
		}
		if realDir(src, path.Join(root, path.Dir(fp))) != nil {
			continue
		}
		if err := os.Rename(from, to); err != nil {
			return put, made, err
		}
		put = append(put, to)
	}
	return put, made, nil
}

// KeepFramework moves the framework caches out of the project directory root (slash-separated,
// relative to the checkout src) and returns how many it kept: into the cache, replacing the last
// ones, after a successful build, and away after a failed one, whose caches may be what made it fail.
func (p *Project) KeepFramework(src, root string, built bool) (int, error) {
	kept := filepath.Join(p.dir, frameworkDir)
	var found []string
	if realDir(src, root) == nil {
		for _, fp := range frameworkPaths {
			from := filepath.Join(src, filepath.FromSlash(path.Join(root, fp)))
			// Through no symbolic link: the build must not get the agent to file a host directory here.
			if info, err := os.Lstat(from); err == nil && info.IsDir() && realDir(src, path.Join(root, path.Dir(fp))) == nil {
				found = append(found, fp)
			}
		}
	}
	if p.cleared() {
		return 0, errCleared
	}
	if !built {
		// Out of node_modules too, so KeepDeps does not keep them there.
		for _, fp := range found {
			_ = os.RemoveAll(filepath.Join(src, filepath.FromSlash(path.Join(root, fp))))
		}
		return 0, os.RemoveAll(kept)
	}
	tmp, err := tempDir(p.dir)
	if err != nil {
		return 0, err
	}
	if err := p.fillFramework(tmp, src, root, found); err != nil {
		_ = os.RemoveAll(tmp)
		return 0, err
	}
	return len(found), syncDir(p.dir)
}

// fillFramework moves the framework caches found in the project directory into tmp, which then
// replaces the kept ones.
func (p *Project) fillFramework(tmp, src, root string, found []string) error {
	for _, fp := range found {
		to := filepath.Join(tmp, filepath.FromSlash(fp))
		if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(src, filepath.FromSlash(path.Join(root, fp))), to); err != nil {
			return err
		}
	}
	kept := filepath.Join(p.dir, frameworkDir)
	if err := os.RemoveAll(kept); err != nil {
		return err
	}
	return os.Rename(tmp, kept)
}
