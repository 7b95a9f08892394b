package agent

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/miaobu/miaobu/internal/domain"
	"github.com/miaobu/miaobu/internal/store"
)

// localTarget is the default target: the agent serves the kept directory itself, so going live is
// the store's pointer switch alone.
type localTarget struct{}

// Publish checks that the kept directory is there.
func (localTarget) Publish(_ context.Context, _ *store.Project, d *store.Deployment, dir string, _ io.Writer, _ func(store.Status) error) error {
	if _, err := os.Stat(dir); err != nil {
		return domain.Errorf(domain.Conflict, "the files of deployment %d are gone: deploy again", d.ID)
	}
	return nil
}

// target returns the publish target a project uses.
func (a *Agent) target(name string) (domain.Target, error) {
	switch name {
	case "local", "":
		return localTarget{}, nil
	case "oss":
		return ossTarget{cfg: a.cfg, cacheDir: filepath.Join(a.cfg.DataDir, "cache")}, nil
	}
	return nil, fmt.Errorf("publish target %q is not available in this agent", name)
}
