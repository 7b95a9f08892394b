package buildcache

import (
	"io/fs"
	"path/filepath"
)

// diskUsage returns the disk space the files under dir take, each file counted once however many
// hard links it has (pnpm and bun link their stores into node_modules).
func diskUsage(dir string) (int64, error) {
	seen := map[fileID]bool{}
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		id, size, linked := usage(info)
		if linked {
			if seen[id] {
				return nil
			}
			seen[id] = true
		}
		total += size
		return nil
	})
	return total, err
}
