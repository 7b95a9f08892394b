package agent

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/miaobu/miaobu/internal/store"
)

// publishTarget is where a deployment goes live once its output is kept in
// <data_dir>/sites/<slug>/<deployment_id>/ (dir). Publish runs before the store switches the
// project's live pointer, for a new deployment and for a rollback alike; it writes its progress to
// log (the build log, or io.Discard for a rollback) and may move the deployment to another status
// (purging) with step.
type publishTarget interface {
	Publish(ctx context.Context, p *store.Project, d *store.Deployment, dir string, log io.Writer, step func(status store.Status) error) error
}

// localTarget is the default target: the agent serves the kept directory itself, so going live is
// the store's pointer switch alone.
type localTarget struct{}

// Publish checks that the kept directory is there.
func (localTarget) Publish(_ context.Context, _ *store.Project, d *store.Deployment, dir string, _ io.Writer, _ func(store.Status) error) error {
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("the files of deployment %d are gone: deploy again", d.ID)
	}
	return nil
}

// target returns the publish target a project uses.
func (a *Agent) target(name string) (publishTarget, error) {
	switch name {
	case "local", "":
		return localTarget{}, nil
	case "oss":
		return ossTarget{cfg: a.cfg, cacheDir: filepath.Join(a.cfg.DataDir, "cache")}, nil
	}
	return nil, fmt.Errorf("publish target %q is not available in this agent", name)
}

// goLive makes a successful deployment the live one at once (a rollback): the target publishes its
// kept files, then the project's live pointer switches.
func (a *Agent) goLive(ctx context.Context, p *store.Project, d *store.Deployment) error {
	unlock := a.lockPublishing(p.ID)
	defer unlock()
	target, err := a.target(p.Target)
	if err != nil {
		return err
	}
	if err := target.Publish(ctx, p, d, a.siteDir(p.Slug, d.ID), io.Discard, func(store.Status) error { return nil }); err != nil {
		return err
	}
	return a.store.Rollback(p.ID, d.ID)
}

// lockPublishing serialises what makes a project's deployment live (a finished build's publish and
// switch, a rollback), so a bucket never ends up holding one deployment while the store calls
// another live; it returns the unlock function.
func (a *Agent) lockPublishing(projectID int64) func() {
	a.publishing.Lock()
	l, ok := a.publishLocks[projectID]
	if !ok {
		l = &sync.Mutex{}
		a.publishLocks[projectID] = l
	}
	a.publishing.Unlock()
	l.Lock()
	return l.Unlock
}
