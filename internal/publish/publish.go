// Package publish owns where a built deployment goes: Copy keeps a build's output in the
// deployment's directory under <data_dir>/sites, and a Target makes a kept deployment the one
// visitors see at an alias and says at which URL: the agent's own site server (Local) or an OSS
// bucket behind a CDN (OSS), which uploads what changed and purges it.
package publish

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"

	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/store"
)

// Release is a kept deployment of a project on its way to a target.
type Release struct {
	Project    *store.Project
	Deployment *store.Deployment
	// Dir is where the deployment's output is kept (see Dir).
	Dir string
	// Log receives the progress: the build log, or io.Discard for a rollback.
	Log io.Writer
	// Step moves the deployment to another in-progress status (purging); an error from it stops the
	// activation.
	Step func(store.Status) error
}

// Target is where visitors see a project's deployments.
type Target interface {
	// Activate makes the kept deployment of r the one seen at alias, "" being the project's live
	// site; it runs before the store records the switch, for a new deployment and a rollback alike.
	Activate(ctx context.Context, r Release, alias string) error
	// URL is where the project with slug is seen at alias: "" for its live site, a deployment id
	// for that deployment.
	URL(slug, alias string) string
}

// GoneError is returned by Activate when the kept files of the deployment no longer exist.
type GoneError struct {
	DeploymentID int64
}

// Error says how to get the files back.
func (e *GoneError) Error() string {
	return fmt.Sprintf("the files of deployment %d are gone: deploy again", e.DeploymentID)
}

// Targets are the targets an agent offers, by the names projects use.
type Targets struct {
	local *Local
	oss   *OSS
}

// NewTargets returns the targets of an agent configured by cfg.
func NewTargets(cfg *config.Config) *Targets {
	local := &Local{cfg: cfg}
	return &Targets{local: local, oss: &OSS{cfg: cfg, cacheDir: filepath.Join(cfg.DataDir, "cache"), local: local}}
}

// For returns the target a project names: "local" (or empty) or "oss".
func (t *Targets) For(name string) (Target, error) {
	switch name {
	case "local", "":
		return t.local, nil
	case "oss":
		return t.oss, nil
	}
	return nil, fmt.Errorf("publish target %q is not available in this agent", name)
}

// Dir is where a deployment's output is kept in the data directory, and served from by Local.
func Dir(dataDir, slug string, deploymentID int64) string {
	return filepath.Join(dataDir, "sites", slug, strconv.FormatInt(deploymentID, 10))
}
