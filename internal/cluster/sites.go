package cluster

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// siteObject is the object store name of a deployment's output.
func siteObject(deploymentID int64) string { return strconv.FormatInt(deploymentID, 10) + ".tar" }

// PutSite stores the output of deployment id, the files under dir, in the cluster's object store,
// so that every node can serve it.
func (s *Store) PutSite(ctx context.Context, id int64, dir string) error {
	r, w := io.Pipe()
	go func() { w.CloseWithError(writeTar(w, dir)) }()
	_, err := s.sites.Put(ctx, jetstream.ObjectMeta{Name: siteObject(id)}, r)
	r.CloseWithError(err)
	return unavailable(err)
}

// FetchSite writes the output of deployment id from the cluster's object store to dir, unless dir
// exists already; fs.ErrNotExist when the cluster has no output of it.
func (s *Store) FetchSite(ctx context.Context, id int64, dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	obj, err := s.sites.Get(ctx, siteObject(id))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return fs.ErrNotExist
	}
	if err != nil {
		return unavailable(err)
	}
	defer obj.Close()
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".fetch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := readTar(obj, tmp); err != nil {
		return fmt.Errorf("unpacking the output of deployment %d: %w", id, err)
	}
	// A concurrent fetch of the same output may have won: its copy is as good.
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, fs.ErrExist) {
		if _, statErr := os.Stat(dir); statErr != nil {
			return err
		}
	}
	return nil
}

// writeTar writes the regular files and directories under dir to w as a tar stream.
func writeTar(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(path string, entry fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		info, err := entry.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() && !info.IsDir() {
			return nil // a symlink in a build output is not served either
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// readTar unpacks the regular files and directories of a tar stream under dir, refusing names that
// would leave it.
func readTar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.FromSlash(hdr.Name)
		if !filepath.IsLocal(name) {
			return fmt.Errorf("unsafe path %q", hdr.Name)
		}
		target := filepath.Join(dir, name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := writeFile(target, tr); err != nil {
				return err
			}
		}
	}
}

// writeFile writes r to a new file at path.
func writeFile(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// logObject is the object store name of a deployment's build log.
func logObject(deploymentID int64) string { return strconv.FormatInt(deploymentID, 10) + ".log" }

// PutLog shares the build log of deployment id, the file at path as it is now, with every node.
func (s *Store) PutLog(ctx context.Context, id int64, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = s.sites.Put(ctx, jetstream.ObjectMeta{Name: logObject(id)}, f)
	return unavailable(err)
}

// Log returns the build log of deployment id as its building node last shared it; fs.ErrNotExist
// when it shared none.
func (s *Store) Log(ctx context.Context, id int64) ([]byte, error) {
	data, err := s.sites.GetBytes(ctx, logObject(id))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fs.ErrNotExist
	}
	return data, unavailable(err)
}
