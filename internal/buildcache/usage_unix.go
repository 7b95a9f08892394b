//go:build unix

package buildcache

import (
	"io/fs"
	"syscall"
)

// fileID names a file on its file system.
type fileID struct{ dev, ino uint64 }

// usage returns a file's identity, the disk space its blocks take, and whether it has other
// names (hard links) that must not be counted again.
func usage(info fs.FileInfo) (fileID, int64, bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, info.Size(), false
	}
	return fileID{dev: uint64(st.Dev), ino: st.Ino}, st.Blocks * 512, !info.IsDir() && st.Nlink > 1
}
