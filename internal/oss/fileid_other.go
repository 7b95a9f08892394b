//go:build !linux && !darwin

package oss

import "io/fs"

// fileIdentity is unknown on this system, so the hash cache relies on size and modification time.
func fileIdentity(fs.FileInfo) (ino uint64, ctime int64) { return 0, 0 }
