package oss

import (
	"context"
	"crypto/md5"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
)

// localFile is one file of the build output.
type localFile struct {
	rel string // site-relative slash path
	abs string
	key cacheKey
	md5 [16]byte
}

// scan lists the regular files under dir and their MD5s, taking hashes from cache when a file is
// unchanged since it was hashed, and returns the files, the cache of exactly those files and the
// site-relative paths of symbolic links and special files it left out.
func scan(ctx context.Context, dir string, cache hashCache) (files []*localFile, fresh hashCache, skipped []string, err error) {
	// The directory itself may be a link (a "current" release); links inside it are not followed,
	// since the build that wrote them could point them at the agent's own files.
	dir, err = filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading the build output: %w", err)
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			// The bookkeeping folder is ours; a build that produced one would have it overwritten.
			if rel == bookkeepingDir || d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Name() == ".DS_Store" {
			return nil
		}
		if !d.Type().IsRegular() {
			skipped = append(skipped, rel)
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		ino, ctime := fileIdentity(info)
		files = append(files, &localFile{rel: rel, abs: p, key: cacheKey{rel, info.Size(), info.ModTime().UnixNano(), ctime, ino}})
		return nil
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading the build output: %w", err)
	}

	fresh = make(hashCache, len(files))
	var todo []*localFile
	for _, f := range files {
		if sum, ok := cache[f.key]; ok {
			f.md5 = sum
		} else {
			todo = append(todo, f)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for _, f := range todo {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			sum, err := fileMD5(f.abs)
			if err != nil {
				return err
			}
			f.md5 = sum
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, nil, fmt.Errorf("hashing the build output: %w", err)
	}
	for _, f := range files {
		fresh[f.key] = f.md5
	}
	return files, fresh, skipped, nil
}

// copyBuffers recycles the read buffers of fileMD5, which would otherwise allocate one per file.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// fileMD5 hashes a file as a stream, so memory stays flat whatever its size.
func fileMD5(path string) ([16]byte, error) {
	var sum [16]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := md5.New()
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	// Hiding the file's WriteTo makes CopyBuffer use the pooled buffer instead of allocating one.
	if _, err := io.CopyBuffer(h, struct{ io.Reader }{f}, *buf); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// isReserved reports whether a site-relative path belongs to the uploader's bookkeeping.
func isReserved(rel string) bool {
	return rel == bookkeepingDir || strings.HasPrefix(rel, bookkeepingDir+"/")
}
