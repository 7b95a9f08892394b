package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/outbox"
	"github.com/miaobu/miaobu/internal/store"
)

// Register makes w send the reports of r, retrying them until GitHub takes them.
func (r *Reporter) Register(w *outbox.Worker) {
	r.mu.Lock()
	r.worker = w
	r.mu.Unlock()
	w.RegisterWithBackoff(KindStatus, r.sendStatus, r.opts.Backoff)
	w.RegisterWithBackoff(KindDeployment, r.sendDeployment, r.opts.Backoff)
	w.RegisterWithBackoff(KindComment, r.sendComment, r.opts.Backoff)
}

// decode reads the payload of m, refusing for good one that is not a report.
func decode(m outbox.Message) (payload, string, string, error) {
	var s payload
	if err := json.Unmarshal(m.Payload, &s); err != nil {
		return s, "", "", outbox.Permanent(fmt.Errorf("not a report: %w", err))
	}
	owner, repo, _ := strings.Cut(s.Repo, "/")
	return s, owner, repo, nil
}

// sendStatus sets a commit status, unless it is outdated when its turn comes (see statusKey).
func (r *Reporter) sendStatus(ctx context.Context, m outbox.Message) error {
	s, owner, repo, err := decode(m)
	if err != nil {
		return err
	}
	if err := r.held(s, KindStatus); err != nil {
		return err
	}
	if r.outdated(s) {
		return nil
	}
	err = r.opts.GitHub.CreateStatus(ctx, owner, repo, s.SHA, github.CommitStatus{State: s.State, Description: s.Description,
		TargetURL: s.TargetURL, Context: s.Context})
	return r.outcome(s, KindStatus, err)
}

// outdated reports whether commit status s says less than the statuses GitHub gets after it, or
// got, for the commit: s is a pending one of a deployment that has moved on or is gone, a newer
// deployment of the commit to the same environment follows its deployment, or its deployment is a
// preview of a commit that production deployed.
func (r *Reporter) outdated(s payload) bool {
	if s.DeploymentID == 0 {
		return false
	}
	d, err := r.opts.Store.Deployment(s.DeploymentID)
	if err != nil {
		return s.State == "pending" && errors.Is(err, store.ErrNotFound)
	}
	if s.State == "pending" && string(d.Status) != s.Status {
		return true
	}
	// Newest first, the walk stops at the first newer deployment of the commit and environment, or
	// at d itself.
	first, err := r.opts.Store.DeploymentsWhere(s.ProjectID, 1, func(o *store.Deployment) bool {
		return o.ID <= d.ID || o.CommitSHA == d.CommitSHA && o.Environment == d.Environment
	})
	if err == nil && len(first) == 1 && first[0].ID > d.ID {
		return true
	}
	if d.Environment != store.EnvironmentPreview {
		return false
	}
	production, err := r.opts.Store.NewestDeploymentOf(s.ProjectID, "", d.CommitSHA)
	return err == nil && production.Status == store.StatusDeployed
}

// sendDeployment adds a status to the deployment's GitHub Deployment, creating that first when
// the deployment has none yet and remembering it on the deployment. A GitHub Deployment deleted on
// GitHub gets no more statuses.
func (r *Reporter) sendDeployment(ctx context.Context, m outbox.Message) error {
	s, owner, repo, err := decode(m)
	if err != nil {
		return err
	}
	if err := r.held(s, KindDeployment); err != nil {
		return err
	}
	id := s.GitHubDeploymentID
	if id == 0 {
		d, err := r.opts.Store.Deployment(s.DeploymentID)
		if errors.Is(err, store.ErrNotFound) {
			r.opts.Log.Info("github: not reporting a deployment that no longer exists", "project", s.ProjectID, "deployment", s.DeploymentID)
			return nil
		}
		if err != nil {
			return err
		}
		if id = d.GitHubDeploymentID; id == 0 {
			if id, err = r.findOrCreate(ctx, owner, repo, s); err != nil {
				return r.outcome(s, KindDeployment, err)
			}
			if err := r.opts.Store.SetGitHubDeployment(s.DeploymentID, id); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
	}
	if r.isGone(id) {
		return nil
	}
	err = r.opts.GitHub.CreateDeploymentStatus(ctx, owner, repo, id, github.DeploymentStatus{State: s.State, Description: s.Description,
		EnvironmentURL: s.EnvironmentURL, LogURL: s.LogURL})
	if errors.Is(err, github.ErrNotFound) {
		r.markGone(s, id, err)
		return nil
	}
	return r.outcome(s, KindDeployment, err)
}

// findOrCreate returns the GitHub Deployment of s's deployment: the one an earlier attempt made
// although its answer was lost (a timeout, the agent killed), else a new one.
func (r *Reporter) findOrCreate(ctx context.Context, owner, repo string, s payload) (int64, error) {
	id, err := r.opts.GitHub.FindDeployment(ctx, owner, repo, s.SHA, s.Environment, s.DeploymentID)
	if err != nil || id != 0 {
		return id, err
	}
	return r.opts.GitHub.CreateDeployment(ctx, owner, repo, github.Deployment{Ref: s.SHA, Environment: s.Environment,
		Description: fmt.Sprintf("miaobu deployment #%d", s.DeploymentID), Production: s.Production, Transient: s.Transient,
		MiaobuID: s.DeploymentID})
}

// markGone drops, from now on, the statuses of GitHub Deployment id, which GitHub no longer has,
// logging it once.
func (r *Reporter) markGone(s payload, id int64, err error) {
	r.mu.Lock()
	already := r.gone[id]
	r.gone[id] = true
	r.mu.Unlock()
	if !already {
		r.opts.Log.Warn("github: a GitHub deployment was deleted on GitHub; its statuses are dropped", "project", s.ProjectID,
			"deployment", s.DeploymentID, "github_deployment", id, "err", err)
	}
}

// isGone reports whether GitHub Deployment id was found deleted on GitHub.
func (r *Reporter) isGone(id int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gone[id]
}

// outcome turns a failed request into what the outbox does next: a refusal (401, 403, 404) pauses
// the kind for the project and holds the report until Resume, a rate limit waits as long as GitHub
// asks, an outage is retried until it ends, and anything else is dropped.
func (r *Reporter) outcome(s payload, kind string, err error) error {
	var e *github.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, github.ErrForbidden), errors.Is(err, github.ErrNotFound), errors.Is(err, github.ErrUnauthorized):
		r.pause(s, kind, err)
		return outbox.Hold(err, pauseGroup(s.ProjectID, kind))
	case errors.Is(err, github.ErrRateLimited) && errors.As(err, &e):
		return outbox.RetryAfter(err, time.Until(e.ResetAt))
	case errors.As(err, &e) && e.Retryable():
		return err
	case errors.As(err, &e), errors.Is(err, github.ErrNoToken), errors.Is(err, github.ErrInvalidRepository):
		return outbox.Permanent(err)
	}
	return err
}

// kindNames are what the log and project show call each kind.
var kindNames = map[string]string{KindStatus: "commit statuses", KindDeployment: "deployments", KindComment: "pull request comments"}

// pause stops reports of kind for s's project until Resume, logging why once.
func (r *Reporter) pause(s payload, kind string, err error) {
	r.mu.Lock()
	already := r.paused[s.ProjectID][kind]
	if r.paused[s.ProjectID] == nil {
		r.paused[s.ProjectID] = map[string]bool{}
	}
	r.paused[s.ProjectID][kind] = true
	r.mu.Unlock()
	if !already {
		r.opts.Log.Warn(fmt.Sprintf("github: reporting %s is paused for this project until `miaobu webhook setup %s` or a restart; they wait in the outbox until then", kindNames[kind], s.Slug),
			"project", s.ProjectID, "repo", s.Repo, "err", err)
	}
}

// isPaused reports whether reports of kind are paused for project.
func (r *Reporter) isPaused(project int64, kind string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.paused[project][kind]
}

// errPaused is why a report of a paused kind waits.
var errPaused = errors.New("reports of this kind are paused for the project: GitHub refused one")

// held returns the error that holds s, a report of kind, in the outbox while kind is paused for its
// project; nil when it is not.
func (r *Reporter) held(s payload, kind string) error {
	if !r.isPaused(s.ProjectID, kind) {
		return nil
	}
	return outbox.Hold(errPaused, pauseGroup(s.ProjectID, kind))
}

// pauseGroup names the reports of kind of project held while kind is paused for it.
func pauseGroup(project int64, kind string) string {
	return fmt.Sprintf("%s:%d", kind, project)
}

// Resume reports to GitHub again for project, after its token or permissions may have changed
// (`miaobu webhook setup`): the reports held while a kind was paused are sent, in order.
func (r *Reporter) Resume(project int64) {
	r.mu.Lock()
	delete(r.paused, project)
	w := r.worker
	r.mu.Unlock()
	if w == nil {
		return
	}
	for _, kind := range []string{KindStatus, KindDeployment, KindComment} {
		w.Release(pauseGroup(project, kind))
	}
}

// Summary says which reports of p's deployments reach GitHub, why the others do not, and whether
// pull request comments are paused.
func (r *Reporter) Summary(p *store.Project) api.GitHubReports {
	switch {
	case p.Repo == "":
		return api.GitHubReports{Note: "added by hand, not imported from GitHub"}
	case !r.opts.HasToken:
		return api.GitHubReports{Note: "no GitHub token: set MIAOBU_GITHUB_TOKEN"}
	}
	out := api.GitHubReports{Statuses: r.opts.Statuses, Deployments: r.opts.Deployments}
	var notes []string
	for _, k := range []struct {
		kind, key string
		on        *bool
	}{{KindStatus, "github.statuses", &out.Statuses}, {KindDeployment, "github.deployments", &out.Deployments}} {
		switch {
		case !*k.on:
			notes = append(notes, k.key+" is off")
		case r.isPaused(p.ID, k.kind):
			*k.on = false
			notes = append(notes, pausedNote(k.kind, p.Slug))
		}
	}
	if r.isPaused(p.ID, KindComment) {
		notes = append(notes, pausedNote(KindComment, p.Slug))
	}
	out.Note = strings.Join(notes, "; ")
	return out
}

// pausedNote says that reports of kind are paused for the project slug, and how to resume them.
func pausedNote(kind, slug string) string {
	return fmt.Sprintf("%s paused: GitHub refused them (see the agent's log); run `miaobu webhook setup %s` once the token may", kindNames[kind], slug)
}
