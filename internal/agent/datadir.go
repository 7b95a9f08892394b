package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/store"
)

// refuseLostStore refuses to start a new, empty store in a data dir that was used before: the admin
// token is written at the first start, after the store file, so a token without a store file means
// the store was lost, and starting would silently drop every project. An empty token, which the
// agent replaces, shows nothing.
func refuseLostStore(cfg *config.Config) error {
	path := filepath.Join(cfg.DataDir, store.FileName)
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if token, err := os.ReadFile(cfg.AdminTokenFile()); err != nil || strings.TrimSpace(string(token)) == "" {
		return nil
	}
	return &store.DamagedError{Path: path, Reason: "is missing, but " + cfg.AdminTokenFile() + " shows that this data dir was used"}
}

// warnLoosePermissions logs each of the data dir, the admin token and the store that other users
// may open: they hold the token, webhook secrets and build variables.
func warnLoosePermissions(log *slog.Logger, cfg *config.Config) {
	for _, f := range []struct {
		path string
		want fs.FileMode
	}{
		{cfg.DataDir, 0o700},
		{cfg.AdminTokenFile(), 0o600},
		{filepath.Join(cfg.DataDir, store.FileName), 0o600},
	} {
		info, err := os.Stat(f.path)
		if err != nil || info.Mode().Perm()&^f.want == 0 {
			continue
		}
		log.Warn(fmt.Sprintf("%s is open to other users: run chmod %o %s", f.path, f.want, f.path),
			"path", f.path, "mode", fmt.Sprintf("%04o", info.Mode().Perm()))
	}
}
