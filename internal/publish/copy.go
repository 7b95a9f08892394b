package publish

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Copy copies the build output src into dst, replacing what a publish of the same deployment
// interrupted by a crash left there, hard-linking files when src and dst share a file system, and
// returns how many files it published. It skips .git and
// refuses symlinks that lead outside src, so nothing outside the build is ever published; a symlink
// inside src is published as a copy of what it points at. Nothing published is setuid, setgid,
// sticky or writable by group or others (see publishedMode).
func Copy(src, dst string) (int, error) {
	root, err := filepath.EvalSymlinks(src)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return 0, fmt.Errorf("creating the site directory: %w", err)
	}
	tmp := dst + ".tmp"
	for _, stale := range []string{tmp, dst} {
		if err := os.RemoveAll(stale); err != nil {
			return 0, fmt.Errorf("removing an interrupted publish: %w", err)
		}
	}
	p := &publisher{root: root, link: true}
	if err := p.dir(root, tmp, "", map[string]bool{root: true}); err != nil {
		os.RemoveAll(tmp)
		return 0, err
	}
	// The directory appears whole or not at all: a preview URL never serves half a copy.
	if err := os.Rename(tmp, dst); err != nil {
		os.RemoveAll(tmp)
		return 0, fmt.Errorf("publishing: %w", err)
	}
	return p.files, nil
}

// publisher is one Copy in progress.
type publisher struct {
	root  string
	link  bool // false once a hard link failed: src and dst are on different file systems
	files int
}

// dir copies the directory from (its output-relative name rel) into to; ancestors holds the real
// paths of the directories being copied, to stop a symlink loop.
func (p *publisher) dir(from, to, rel string, ancestors map[string]bool) error {
	if err := os.Mkdir(to, 0o755); err != nil {
		return fmt.Errorf("publishing: %w", err)
	}
	// A new directory inherits setgid from its parent.
	info, err := os.Stat(to)
	if err != nil {
		return fmt.Errorf("publishing: %w", err)
	}
	if mode := publishedMode(info.Mode()); info.Mode() != fs.ModeDir|mode {
		if err := os.Chmod(to, mode); err != nil {
			return fmt.Errorf("publishing: %w", err)
		}
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		return fmt.Errorf("reading the output: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if name == ".git" {
			continue
		}
		srcPath, dstPath, relPath := filepath.Join(from, name), filepath.Join(to, name), filepath.Join(rel, name)
		typ := e.Type()
		real := srcPath
		if typ&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(srcPath)
			resolved, err := filepath.EvalSymlinks(srcPath)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("output file %s: %w", relPath, err)
			}
			if err != nil || !Within(p.root, resolved) {
				return fmt.Errorf("output file %s is a symlink to %s, outside the output directory: nothing outside the build is published", relPath, target)
			}
			if InGitDir(p.root, resolved) {
				return fmt.Errorf("output file %s is a symlink to %s, into .git: the repository's own files are never published", relPath, target)
			}
			info, err := os.Stat(resolved)
			if err != nil {
				return fmt.Errorf("output file %s: %w", relPath, err)
			}
			real, typ = resolved, info.Mode().Type()
		}
		switch {
		case typ.IsDir():
			if ancestors[real] {
				return fmt.Errorf("output file %s is a symlink loop", relPath)
			}
			ancestors[real] = true
			err = p.dir(real, dstPath, relPath, ancestors)
			delete(ancestors, real)
		case typ.IsRegular():
			err = p.file(real, dstPath)
		default:
			err = fmt.Errorf("output file %s is not a regular file or directory", relPath)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// publishedMode is the mode a published file or directory gets for one of mode m: its permission
// bits without write for group and others; setuid, setgid and sticky never reach a site.
func publishedMode(m fs.FileMode) fs.FileMode {
	return m.Perm() &^ 0o022
}

// file hard-links or copies one file. A hard link shares the inode, mode included, so a file whose
// mode publishedMode changes is copied: changing the link would change the build's file too.
func (p *publisher) file(from, to string) error {
	p.files++
	info, err := os.Stat(from)
	if err != nil {
		return fmt.Errorf("publishing: %w", err)
	}
	mode := publishedMode(info.Mode())
	if p.link && info.Mode() == mode {
		if err := os.Link(from, to); err == nil {
			return nil
		}
		p.link = false
	}
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("publishing: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("publishing: %w", err)
	}
	_, err = io.Copy(out, in)
	if err == nil {
		// The umask may have taken bits off: a copy gets the mode a link would have had.
		err = out.Chmod(mode)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("publishing: %w", err)
	}
	return nil
}

// Within reports whether path is root or inside it; both are clean absolute paths.
func Within(root, path string) bool {
	return path == root || strings.HasPrefix(path, root+string(filepath.Separator))
}

// InGitDir reports whether path, inside root (both clean absolute paths), is in a .git directory.
func InGitDir(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && slices.Contains(strings.Split(rel, string(filepath.Separator)), ".git")
}
