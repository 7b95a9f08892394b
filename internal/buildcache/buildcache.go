// Package buildcache owns what a project keeps between its builds in <data_dir>/cache/<project id>:
// the git repository it fetches into, its installed dependencies under their key, the package
// managers' stores and the frameworks' caches. Everything appears by rename, complete or not at
// all, so a crash or a full disk leaves nothing a later build would trust.
package buildcache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Directories of a project's cache.
const (
	gitDir       = "git"       // the kept bare repository
	storesDir    = "stores"    // the package managers' own caches and stores
	depsDir      = "deps"      // one dependency entry, named by its key
	frameworkDir = "framework" // the framework caches of the last successful build
)

// trashDir holds caches being removed, in the cache root; removed whole at start.
const trashDir = ".trash"

// Caches is the directory of every project's cache, <data_dir>/cache, with the sizes measured so far.
type Caches struct {
	dir string
	mu  sync.Mutex
	// sizes holds measured sizes; generation counts the changes of each project's cache, so a
	// measurement that overlapped a change is not remembered.
	sizes      map[int64]int64
	generation map[int64]int
	// open counts the builds using each project's cache; clearing holds the projects whose cache
	// Clear removes when the last of them ends.
	open     map[int64]int
	clearing map[int64]bool
}

// New returns the caches kept in dir.
func New(dir string) *Caches {
	return &Caches{dir: dir, sizes: map[int64]int64{}, generation: map[int64]int{}, open: map[int64]int{}, clearing: map[int64]bool{}}
}

// projectDir is project id's cache directory.
func (c *Caches) projectDir(id int64) string {
	return filepath.Join(c.dir, strconv.FormatInt(id, 10))
}

// Open returns project id's cache for one build, creating its directories with mode 0700.
func (c *Caches) Open(id int64) (*Project, error) {
	p := &Project{caches: c, id: id, dir: c.projectDir(id)}
	for _, d := range []string{p.dir, p.Stores()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("creating the build cache: %w", err)
		}
	}
	info, err := os.Stat(p.dir)
	if err != nil {
		return nil, fmt.Errorf("creating the build cache: %w", err)
	}
	p.info = info
	c.changed(id)
	c.mu.Lock()
	c.open[id]++
	c.mu.Unlock()
	return p, nil
}

// Clear removes project id's cache and returns the bytes it held; while a build uses the cache it
// only measures it and marks it, and the cache is removed when the build ends, which keeps nothing
// of what it took: the build's directories do not vanish under its feet.
func (c *Caches) Clear(id int64) (int64, error) {
	c.mu.Lock()
	inUse := c.open[id] > 0
	if inUse {
		c.clearing[id] = true
	}
	c.mu.Unlock()
	if inUse {
		size, err := c.Size(id)
		if err != nil {
			return 0, fmt.Errorf("clearing the build cache: %w", err)
		}
		return size, nil
	}
	return c.remove(id)
}

// remove removes project id's cache and returns the bytes it held.
func (c *Caches) remove(id int64) (int64, error) {
	defer c.changed(id)
	trash := filepath.Join(c.dir, trashDir)
	if err := os.MkdirAll(trash, 0o700); err != nil {
		return 0, fmt.Errorf("clearing the build cache: %w", err)
	}
	gone := filepath.Join(trash, strconv.FormatInt(id, 10)+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	// A rename first: the next build finds no cache at once, whatever the removal takes.
	if err := os.Rename(c.projectDir(id), gone); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("clearing the build cache: %w", err)
	}
	size, _ := diskUsage(gone)
	if err := os.RemoveAll(gone); err != nil {
		return size, fmt.Errorf("clearing the build cache: %w", err)
	}
	_ = os.Remove(trash) // unless another clear is under way
	return size, nil
}

// Size returns the disk space project id's cache takes, hard links counted once; it is measured
// once per change of the cache.
func (c *Caches) Size(id int64) (int64, error) {
	c.mu.Lock()
	size, ok := c.sizes[id]
	gen := c.generation[id]
	c.mu.Unlock()
	if ok {
		return size, nil
	}
	size, err := diskUsage(c.projectDir(id))
	if errors.Is(err, os.ErrNotExist) {
		size, err = 0, nil
	}
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	if c.generation[id] == gen {
		c.sizes[id] = size
	}
	c.mu.Unlock()
	return size, nil
}

// trimOrder is the order in which Trim removes the parts of a cache: what is quickest to fill
// again, or least needed for the next build to be fast, first.
var trimOrder = []string{storesDir, frameworkDir, gitDir, depsDir}

// Trim removes parts of project id's cache, in trimOrder, until it takes at most limit bytes, and
// returns the bytes it freed; no build of the project may run meanwhile.
func (c *Caches) Trim(id, limit int64) (int64, error) {
	size, err := c.Size(id)
	if err != nil || size <= limit {
		return 0, err
	}
	defer c.changed(id)
	var freed int64
	for _, part := range trimOrder {
		if size-freed <= limit {
			break
		}
		dir := filepath.Join(c.projectDir(id), part)
		n, err := diskUsage(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return freed, err
		}
		if err := os.RemoveAll(dir); err != nil {
			return freed, err
		}
		freed += n
	}
	return freed, nil
}

// changed forgets project id's measured size.
func (c *Caches) changed(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.sizes, id)
	c.generation[id]++
}

// Sweep removes what an agent stopped mid-way left behind: caches being cleared, half-written
// entries, and the caches of projects that no longer exist (exists tells which do). It runs while
// no build does.
func (c *Caches) Sweep(exists func(id int64) bool) error {
	if err := os.RemoveAll(filepath.Join(c.dir, trashDir)); err != nil {
		return err
	}
	ids, err := c.ClearGone(exists)
	errs := []error{err}
	for _, id := range ids {
		errs = append(errs, sweepProject(c.projectDir(id)))
	}
	return errors.Join(errs...)
}

// ClearGone clears the caches of the projects that no longer exist (exists tells which do), such
// as those deleted through another node of a cluster, and returns the projects whose caches stay.
func (c *Caches) ClearGone(exists func(id int64) bool) (kept []int64, err error) {
	entries, err := os.ReadDir(c.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, e := range entries {
		id, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil || !e.IsDir() {
			continue // not a project's cache (the OSS target keeps its hash caches here)
		}
		if exists(id) {
			kept = append(kept, id)
			continue
		}
		_, err = c.Clear(id)
		errs = append(errs, err)
	}
	return kept, errors.Join(errs...)
}

// sweepProject removes from a project's cache directory everything but its four parts, and the
// temporary entries of its dependencies.
func sweepProject(dir string) error {
	err := removeEntries(dir, func(name string) bool {
		return !slices.Contains([]string{gitDir, storesDir, depsDir, frameworkDir}, name)
	})
	if err != nil {
		return err
	}
	err = removeEntries(filepath.Join(dir, depsDir), isTemporary)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// Project is one project's cache, as one build opened it.
type Project struct {
	caches *Caches
	id     int64
	dir    string
	// info is the directory when the build opened it: a cache cleared since is another directory.
	info os.FileInfo
	// trees and sum are the node_modules directories Installed recorded and their fingerprint.
	trees []string
	sum   string
}

// Git is the path of the project's kept git repository.
func (p *Project) Git() string { return filepath.Join(p.dir, gitDir) }

// Stores is the directory of the package managers' caches and stores, the only part of the cache a
// build writes to itself.
func (p *Project) Stores() string { return filepath.Join(p.dir, storesDir) }

// Close records that the build has changed the cache, so its size is measured again, and removes the
// cache if it was cleared while it was in use and the build was the last to use it.
func (p *Project) Close() error {
	c := p.caches
	c.changed(p.id)
	c.mu.Lock()
	c.open[p.id]--
	cleared := c.open[p.id] == 0 && c.clearing[p.id]
	if c.open[p.id] == 0 {
		delete(c.open, p.id)
		delete(c.clearing, p.id)
	}
	c.mu.Unlock()
	if !cleared {
		return nil
	}
	_, err := c.remove(p.id)
	return err
}

// errCleared says the cache was cleared while the build ran: what the build would keep was taken
// from the cache before, or would be filed in a cache nobody asked for.
var errCleared = errors.New("the build cache was cleared during the build: nothing is kept")

// cleared reports whether the project's cache was cleared since the build opened it.
func (p *Project) cleared() bool {
	p.caches.mu.Lock()
	clearing := p.caches.clearing[p.id]
	p.caches.mu.Unlock()
	if clearing {
		return true
	}
	info, err := os.Stat(p.dir)
	return err != nil || !os.SameFile(info, p.info)
}
