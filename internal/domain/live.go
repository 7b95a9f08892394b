package domain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/miaobu/miaobu/internal/store"
)

// Target is where a deployment goes live once its output is kept in dir. Publish runs before the
// store switches the project's live pointer, for a new deployment and for a rollback alike; it
// writes its progress to log and may move the deployment to another status (purging) with step. A
// failure that is the user's to fix is an *Error; any other is the target's service failing.
type Target interface {
	Publish(ctx context.Context, p *store.Project, d *store.Deployment, dir string, log io.Writer, step func(store.Status) error) error
}

// Release publishes a built deployment to its project's target and records it deployed: live unless
// a deployment created after it is live already, when it stays available at its preview URL. It
// writes its progress to log and returns how long the target took, 0 when it did not publish.
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
		target, err := s.targets(p.Target)
		if err != nil {
			return 0, err
		}
		step := func(status store.Status) error { return s.store.SetStatus(d.ID, status) }
		start := time.Now()
		if err := target.Publish(ctx, p, d, s.SiteDir(p.Slug, d.ID), log, step); err != nil {
			return 0, err
		}
		took = time.Since(start)
		logf(log, "==> Live at %s", s.LiveURL(p))
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
	target, err := s.targets(p.Target)
	if err != nil {
		return &Error{Kind: Conflict, Detail: "Rollback failed: " + err.Error(), Err: err}
	}
	if err := target.Publish(ctx, p, d, s.SiteDir(p.Slug, d.ID), io.Discard, func(store.Status) error { return nil }); err != nil {
		var e *Error
		if errors.As(err, &e) {
			return &Error{Kind: e.Kind, Detail: "Rollback failed: " + e.Detail, Err: e.Err}
		}
		return &Error{Kind: Upstream, Detail: "Rollback failed: " + err.Error(), Err: err}
	}
	return s.store.Rollback(p.ID, d.ID)
}

// lockPublishing serialises what makes a project's deployment live (a finished build's publish and
// switch, a rollback), so a bucket never ends up holding one deployment while the store calls
// another live; it returns the unlock function.
func (s *Service) lockPublishing(projectID int64) func() {
	s.publishing.Lock()
	l, ok := s.publishLocks[projectID]
	if !ok {
		l = &sync.Mutex{}
		s.publishLocks[projectID] = l
	}
	s.publishing.Unlock()
	l.Lock()
	return l.Unlock
}

// logf writes one line to a build log.
func logf(log io.Writer, format string, args ...any) {
	fmt.Fprintf(log, format+"\n", args...)
}
