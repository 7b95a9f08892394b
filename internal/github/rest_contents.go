package github

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	gogithub "github.com/google/go-github/v60/github"
)

// ContentsFS returns a read-only fs.FS of owner/repo at ref (a branch, tag or commit SHA; pass
// a SHA so that every read sees the same commit), rooted at the repository root and read
// through GET /repos/{owner}/{repo}/contents/{path}: one request per file or directory opened,
// each answer kept for the life of the FS. A path GitHub does not have is fs.ErrNotExist; files
// over 1 MB, which the contents API does not return inline, cannot be read. ctx bounds every
// request made through the FS.
func (c *Client) ContentsFS(ctx context.Context, owner, repo, ref string) fs.FS {
	return &contentsFS{c: c, ctx: ctx, owner: owner, repo: repo, ref: ref, cache: map[string]*contentsEntry{}}
}

// contentsFS is the fs.FS that ContentsFS returns.
type contentsFS struct {
	c                *Client
	ctx              context.Context
	owner, repo, ref string

	mu    sync.Mutex
	cache map[string]*contentsEntry
}

// contentsEntry is what GitHub answered for one path: a file's bytes or a directory's entries.
type contentsEntry struct {
	info    contentsInfo
	data    []byte
	entries []fs.DirEntry
}

// get fetches the file or directory name, or returns it from the cache.
func (f *contentsFS) get(op, name string) (*contentsEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	f.mu.Lock()
	e, ok := f.cache[name]
	f.mu.Unlock()
	if ok {
		if e == nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		return e, nil
	}
	e, err := f.fetch(name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	f.mu.Lock()
	f.cache[name] = e
	f.mu.Unlock()
	if e == nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return e, nil
}

// fetch asks GitHub for name; a nil entry with fs.ErrNotExist means GitHub has no such path.
func (f *contentsFS) fetch(name string) (*contentsEntry, error) {
	if err := f.c.check(f.owner, f.repo); err != nil {
		return nil, err
	}
	apiPath := name
	if name == "." {
		apiPath = ""
	}
	file, dir, resp, err := f.c.gh.Repositories.GetContents(f.ctx, f.owner, f.repo, apiPath, &gogithub.RepositoryContentGetOptions{Ref: f.ref})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return nil, fs.ErrNotExist
		}
		return nil, f.c.apiError(err, resp, "", "")
	}
	if file == nil {
		e := &contentsEntry{info: contentsInfo{name: path.Base(name), mode: fs.ModeDir | 0o555}}
		for _, item := range dir {
			e.entries = append(e.entries, fs.FileInfoToDirEntry(itemInfo(item)))
		}
		slices.SortFunc(e.entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
		return e, nil
	}
	if file.GetType() != "file" {
		return nil, fmt.Errorf("%s is a %s, not a file", name, file.GetType())
	}
	content, err := file.GetContent()
	if err != nil {
		if file.GetEncoding() == "none" {
			return nil, fmt.Errorf("%s is too large to read through the GitHub contents API (over 1 MB)", name)
		}
		return nil, fmt.Errorf("decode %s: %w", name, err)
	}
	return &contentsEntry{info: contentsInfo{name: path.Base(name), size: int64(len(content)), mode: 0o444}, data: []byte(content)}, nil
}

// itemInfo describes one entry of a directory listing.
func itemInfo(item *gogithub.RepositoryContent) contentsInfo {
	if item.GetType() == "dir" {
		return contentsInfo{name: item.GetName(), mode: fs.ModeDir | 0o555}
	}
	return contentsInfo{name: item.GetName(), size: int64(item.GetSize()), mode: 0o444}
}

// Open opens the file or directory name.
func (f *contentsFS) Open(name string) (fs.File, error) {
	e, err := f.get("open", name)
	if err != nil {
		return nil, err
	}
	if e.info.IsDir() {
		return &contentsDir{entry: e}, nil
	}
	return &contentsFile{info: e.info, Reader: bytes.NewReader(e.data)}, nil
}

// ReadFile returns the contents of the file name.
func (f *contentsFS) ReadFile(name string) ([]byte, error) {
	e, err := f.get("read", name)
	if err != nil {
		return nil, err
	}
	if e.info.IsDir() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
	}
	return bytes.Clone(e.data), nil
}

// ReadDir returns the entries of the directory name, sorted by name.
func (f *contentsFS) ReadDir(name string) ([]fs.DirEntry, error) {
	e, err := f.get("readdir", name)
	if err != nil {
		return nil, err
	}
	if !e.info.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	return slices.Clone(e.entries), nil
}

// Stat describes the file or directory name.
func (f *contentsFS) Stat(name string) (fs.FileInfo, error) {
	e, err := f.get("stat", name)
	if err != nil {
		return nil, err
	}
	return e.info, nil
}

// contentsInfo is the fs.FileInfo of a path of the repository; GitHub gives no modification times.
type contentsInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (i contentsInfo) Name() string       { return i.name }
func (i contentsInfo) Size() int64        { return i.size }
func (i contentsInfo) Mode() fs.FileMode  { return i.mode }
func (i contentsInfo) ModTime() time.Time { return time.Time{} }
func (i contentsInfo) IsDir() bool        { return i.mode.IsDir() }
func (i contentsInfo) Sys() any           { return nil }

// contentsFile is an open file of a contentsFS.
type contentsFile struct {
	info contentsInfo
	*bytes.Reader
}

func (f *contentsFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *contentsFile) Close() error               { return nil }

// contentsDir is an open directory of a contentsFS.
type contentsDir struct {
	entry  *contentsEntry
	offset int
}

func (d *contentsDir) Stat() (fs.FileInfo, error) { return d.entry.info, nil }
func (d *contentsDir) Close() error               { return nil }
func (d *contentsDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.entry.info.name, Err: errors.New("is a directory")}
}

// ReadDir returns the next n entries, or all remaining ones when n <= 0, as fs.ReadDirFile says.
func (d *contentsDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entry.entries[d.offset:]
	if n <= 0 {
		d.offset += len(rest)
		return slices.Clone(rest), nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	d.offset += n
	return slices.Clone(rest[:n]), nil
}
