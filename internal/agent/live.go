package agent

import (
	"context"

	"github.com/miaobu/miaobu/internal/store"
)

// goLive makes a successful deployment the live one at once (a rollback): on the local target this
// switches the project's live pointer.
func (a *Agent) goLive(_ context.Context, p *store.Project, d *store.Deployment) error {
	return a.store.Rollback(p.ID, d.ID)
}

// stopBuild stops the build of a deployment if a worker is running it.
func (a *Agent) stopBuild(deploymentID int64) {}
