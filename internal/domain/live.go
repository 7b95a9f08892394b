package domain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/miaobu/miaobu/internal/publish"
	"github.com/miaobu/miaobu/internal/store"
)

// Release publishes a built deployment to its target and records it deployed: live on its alias
// (production, or a preview on the agent's own site server) unless a deployment of that alias
// created after it is live already, when it stays available at its preview URL. It writes its
// progress to log and returns how long the target took, 0 when it did not publish.
func (s *Service) Release(ctx context.Context, p *store.Project, d *store.Deployment, framework string, spa bool, log io.Writer) (time.Duration, error) {
	err := s.store.UpdateRunning(d.ID, func(d *store.Deployment) { d.Framework, d.SPA = framework, spa })
	if err != nil {
		return 0, err
	}
	unlock := s.lockPublishing(p.ID)
	defer unlock()
	mayGoLive, err := s.store.MayGoLive(d.ID)
	if err != nil {
		return 0, err
	}
	var took time.Duration
	if mayGoLive {
		target, err := s.targetOf(p, d)
		if err != nil {
			return 0, err
		}
		step := func(status store.Status) error { return s.store.SetStatus(d.ID, status) }
		start := time.Now()
		if err := target.Activate(ctx, s.release(p, d, log, step), d.Alias); err != nil {
			return 0, err
		}
		took = time.Since(start)
		logf(log, "==> Live at %s", s.aliasURL(p, d))
	} else {
		logf(log, "A newer deployment is live already: this one stays available at its preview URL")
	}
	if p.Target == "local" {
		logf(log, "Preview: %s", s.DeploymentURL(p, d))
	}
	logf(log, "Deployment #%d succeeded", d.ID)
	live, err := s.store.Complete(d.ID)
	if err != nil {
		return 0, err
	}
	s.log.Info("deployed", "project", p.ID, "deployment", d.ID, "live", live)
	return took, nil
}

// goLive makes a kept successful deployment the live one at once (a rollback): the target
// publishes its kept files, then the project's live pointer switches.
func (s *Service) goLive(ctx context.Context, p *store.Project, d *store.Deployment) error {
	unlock := s.lockPublishing(p.ID)
	defer unlock()
	target, err := s.targetOf(p, d)
	if err != nil {
		return &Error{Kind: Conflict, Detail: "Rollback failed: " + err.Error()}
	}
	if err := target.Activate(ctx, s.release(p, d, io.Discard, func(store.Status) error { return nil }), d.Alias); err != nil {
		if gone := (*publish.GoneError)(nil); errors.As(err, &gone) {
			return &Error{Kind: Conflict, Detail: "Rollback failed: " + err.Error()}
		}
		return &Error{Kind: Upstream, Detail: "Rollback failed: " + err.Error(), Err: err}
	}
	return s.store.Rollback(p.ID, d.ID)
}

// targetOf is where deployment d of p goes live: the project's target for production, the agent's
// own site server for a preview, whatever the project's target.
func (s *Service) targetOf(p *store.Project, d *store.Deployment) (publish.Target, error) {
	if d.Alias != "" {
		return s.targets.For("local")
	}
	return s.targets.For(p.Target)
}

// release is the kept deployment d of p on its way to its target.
func (s *Service) release(p *store.Project, d *store.Deployment, log io.Writer, step func(store.Status) error) publish.Release {
	return publish.Release{Project: p, Deployment: d, Dir: s.siteFiles(p.Slug, d.ID), Log: log, Step: step}
}

// lockPublishing serialises what makes a project's deployment live (a finished build's publish and
// switch, a rollback), so a bucket never ends up holding one deployment while the store calls
// another live; it returns the unlock function.
func (s *Service) lockPublishing(projectID int64) func() {
	return s.publishing.Lock(projectID)
}

// logf writes one line to a build log.
func logf(log io.Writer, format string, args ...any) {
	fmt.Fprintf(log, format+"\n", args...)
}
