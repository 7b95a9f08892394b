package agent

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/store"
)

// refuseLostStore refuses to start a new, empty store in a data dir that was used before: the admin
// token is written at the first start, after the store file, so a token without a store file means
// the store was lost, and starting would silently drop every project.
func refuseLostStore(cfg *config.Config) error {
	path := filepath.Join(cfg.DataDir, store.FileName)
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if _, err := os.Stat(cfg.AdminTokenFile()); err != nil {
		return nil
	}
	return &store.DamagedError{Path: path, Reason: "is missing, but " + cfg.AdminTokenFile() + " shows that this data dir was used"}
}
