package agent

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/miaobu/miaobu/internal/cluster"
	"github.com/miaobu/miaobu/internal/detect"
	"github.com/miaobu/miaobu/internal/notify"
	"github.com/miaobu/miaobu/internal/pipeline"
	"github.com/miaobu/miaobu/internal/store"
)

// Causes with which a build's context ends.
var (
	errCancelled = errors.New("cancelled by user")
	errShutdown  = errors.New("the agent is shutting down")
)

// builds tracks the builds running in this agent: which projects are busy and how to stop each build.
type builds struct {
	// wake tells idle workers that a deployment was queued.
	wake     chan struct{}
	mu       sync.Mutex
	projects map[int64]bool
	cancel   map[int64]context.CancelCauseFunc
	wg       sync.WaitGroup
}

// Wake tells idle workers that a deployment was queued.
func (b *builds) Wake() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Stop stops the build of a deployment if a worker is running it.
func (b *builds) Stop(deploymentID int64) { b.stop(deploymentID, errCancelled) }

// stop stops the build of a deployment with cause if a worker is running it.
func (b *builds) stop(deploymentID int64, cause error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cancel := b.cancel[deploymentID]; cancel != nil {
		cancel(cause)
	}
}

// running returns how many builds are running.
func (b *builds) running() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.cancel)
}

// pollInterval is how often an idle worker looks at the queue without being woken, a safety net
// for a wake-up lost while every worker was busy.
const pollInterval = 5 * time.Second

// startWorkers prepares building (sandbox, stale workspaces, interrupted deployments) and starts
// build.concurrency workers that run until ctx ends.
func (a *Agent) startWorkers(ctx context.Context) error {
	bwrap, warning, err := pipeline.ResolveSandbox(a.cfg.Build.Sandbox)
	if err != nil {
		return err
	}
	if warning != "" {
		a.log.Warn(warning)
	}
	if err := pipeline.AdoptOrphans(); err != nil {
		a.log.Warn("processes a build leaves behind may outlive it: adopting orphaned processes failed", "err", err)
	}
	hide := []string{a.cfg.DataDir}
	if a.cfg.File != "" {
		hide = append(hide, a.cfg.File)
		if dir := filepath.Dir(a.cfg.File); filepath.Base(dir) == "miaobu" {
			hide = append(hide, dir)
		}
	}
	a.builder = &pipeline.Builder{WorkRoot: filepath.Join(a.cfg.DataDir, "builds"), Caches: a.caches,
		Bwrap: bwrap, Hide: hide, GitHubToken: a.cfg.GitHub.Token}
	// Workspaces left by a crash belong to builds that RecoverInterrupted queues again or fails.
	if err := os.RemoveAll(a.builder.WorkRoot); err != nil {
		return fmt.Errorf("clearing old build workspaces: %w", err)
	}
	if err := a.caches.Sweep(func(id int64) bool { _, err := a.store.Project(id); return !errors.Is(err, store.ErrNotFound) }); err != nil {
		a.log.Warn("sweeping the build caches", "err", err)
	}
	touched, err := a.store.RecoverInterrupted()
	if err != nil {
		return fmt.Errorf("recovering interrupted deployments: %w", err)
	}
	for _, d := range touched {
		a.log.Warn("deployment interrupted by the agent's stop", "project", d.ProjectID, "deployment", d.ID, "status", d.Status,
			"error", d.ErrorMessage)
	}
	n := a.cfg.Build.Concurrency
	if n == 0 {
		a.log.Warn("building is paused (build.concurrency is 0): deployments stay queued")
		return nil
	}
	a.log.Info("build workers started", "concurrency", n, "sandbox", bwrap != "")
	for range n {
		a.builds.wg.Add(1)
		go a.worker(ctx)
	}
	return nil
}

// stopWorkers waits until ctx ends for the workers, whose context has been cancelled, to stop.
func (a *Agent) stopWorkers(ctx context.Context) {
	done := make(chan struct{})
	go func() { a.builds.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		a.log.Warn("build workers did not stop in time")
	}
}

// worker claims deployments and builds them until ctx ends.
func (a *Agent) worker(ctx context.Context) {
	defer a.builds.wg.Done()
	for ctx.Err() == nil {
		d, err := a.claim()
		if err != nil {
			a.log.Error("claiming a deployment", "err", err)
		}
		if d == nil {
			select {
			case <-ctx.Done():
			case <-a.builds.wake:
			case <-time.After(pollInterval):
			}
			continue
		}
		a.builds.Wake() // another idle worker may find more to do
		a.build(ctx, d)
	}
}

// claim takes the next deployment of a project that has no build running here and marks the project busy.
func (a *Agent) claim() (*store.Deployment, error) {
	a.builds.mu.Lock()
	defer a.builds.mu.Unlock()
	d, err := a.store.ClaimNext(func(projectID int64) bool { return a.builds.projects[projectID] })
	if d != nil {
		a.builds.projects[d.ProjectID] = true
	}
	return d, err
}

// build runs one claimed deployment to its end: deployed, failed, cancelled, or queued again at shutdown.
func (a *Agent) build(ctx context.Context, d *store.Deployment) {
	log := a.log.With("project", d.ProjectID, "deployment", d.ID)
	ctx, cancel := context.WithCancelCause(ctx)
	a.builds.mu.Lock()
	a.builds.cancel[d.ID] = cancel
	a.builds.mu.Unlock()
	defer func() {
		a.builds.mu.Lock()
		delete(a.builds.cancel, d.ID)
		delete(a.builds.projects, d.ProjectID)
		a.builds.mu.Unlock()
		cancel(nil)
		a.builds.Wake() // the project may have a newer deployment waiting
	}()

	p, err := a.store.Project(d.ProjectID)
	if err != nil {
		log.Error("build: reading the project", "err", err)
		if !a.requeueUnavailable(log, d.ID, err) {
			a.failBeforeLog(log, d.ID, "could not read the project: "+err.Error())
		}
		return
	}
	blog, err := a.openBuildLog(p, d.ID)
	if err != nil {
		log.Error("build: opening the log", "err", err)
		if !a.requeueUnavailable(log, d.ID, err) {
			a.failBeforeLog(log, d.ID, err.Error())
		}
		return
	}
	defer a.keepLog(log, p.Slug, d.ID) // after the log is closed: deferred calls run last first
	defer blog.Close()

	log.Info("build started", "commit", d.CommitSHA[:7])
	timeout := a.cfg.Build.Timeout
	bctx, cancelTimeout := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("build timed out after %s (build.timeout)", timeout))
	defer cancelTimeout()
	job := pipeline.Job{
		DeploymentID: d.ID, ProjectID: p.ID, RepoURL: p.RepoURL, GitHub: p.Repo != "", CommitSHA: d.CommitSHA,
		Branch: d.Branch, Trigger: d.Trigger, CommitMessage: d.CommitMessage, CommitAuthor: d.CommitAuthor,
		Framework: p.Framework, InstallCommand: p.InstallCommand, BuildCommand: p.BuildCommand,
		OutputDirectory: p.OutputDirectory, RootDirectory: p.RootDirectory, Env: p.Env, ClearCache: d.NoCache,
		PullRequest: d.PullRequest, Fork: d.Fork, SkipMarkers: d.SkipMarkers, PublishDir: a.domain.SiteDir(p.Slug, d.ID),
		Step: func(status store.Status) error {
			log.Info("build step", "status", status)
			a.shareLog(log, d.ID)
			return a.store.SetStatus(d.ID, status)
		},
		Commit: func(message, author string) {
			err := a.store.UpdateRunning(d.ID, func(d *store.Deployment) { d.CommitMessage, d.CommitAuthor = message, author })
			if err != nil && !errors.Is(err, store.ErrFinished) {
				log.Warn("build: recording the commit", "err", err)
			}
		},
		Detected: func(s detect.Settings) {
			err := a.store.RecordDetected(d.ID, store.DetectedSettings{Framework: s.Framework, InstallCommand: s.InstallCommand,
				BuildCommand: s.BuildCommand, OutputDirectory: s.OutputDirectory})
			if err != nil && !errors.Is(err, store.ErrFinished) {
				log.Warn("build: recording the detected settings", "err", err)
			}
		},
	}
	buildStart := time.Now()
	res, err := a.builder.Build(bctx, job, blog)
	a.metrics.buildDuration.Observe(time.Since(buildStart).Seconds())
	if err == nil {
		err = a.publish(bctx, p, d, res, blog)
	}
	if err != nil {
		_ = os.RemoveAll(job.PublishDir)
		a.buildFailed(log, blog, d, err, context.Cause(bctx))
		a.trimCache(log, p) // a failed build fills the package managers' stores too
		return
	}
	a.prune(log, p)
}

// publish hands a built deployment to the domain, which records it deployed and live unless a
// newer deployment is live already.
func (a *Agent) publish(ctx context.Context, p *store.Project, d *store.Deployment, res *pipeline.Result, blog *pipeline.Log) error {
	if a.cluster != nil && (p.Target == "local" || d.Alias != "") {
		// Every node serves every site: the output goes to the cluster before it can go live.
		if err := a.cluster.PutSite(ctx, d.ID, a.domain.SiteDir(p.Slug, d.ID)); err != nil {
			return fmt.Errorf("storing the output in the cluster: %w", err)
		}
	}
	took, err := a.domain.Release(ctx, p, d, res.Settings.Framework, res.Settings.SPA, blog)
	if err != nil {
		return err
	}
	if took > 0 {
		a.metrics.publishDuration.WithLabelValues(p.Target).Observe(took.Seconds())
	}
	return nil
}

// buildFailed records how a build ended without success: queued again at shutdown, cancelled
// (also for a skip marker in its commit's message), or failed.
func (a *Agent) buildFailed(log *slog.Logger, blog *pipeline.Log, d *store.Deployment, err, cause error) {
	var skipped *pipeline.SkippedError
	switch {
	case errors.Is(cause, errShutdown):
		blog.Printf("The agent is shutting down: this deployment is queued again for its next start")
		if err := a.store.Requeue(d.ID); err != nil {
			log.Error("build: queueing again", "err", err)
		}
		log.Info("build interrupted by shutdown, queued again")
	case errors.Is(cause, errLeaseLost):
		blog.Printf("This node no longer holds the build of deployment #%d: it was cancelled, or its lease was lost and it is built again", d.ID)
		// Queued again unless another node has taken the build over already, which Requeue checks.
		if err := a.store.Requeue(d.ID); err != nil && !errors.Is(err, store.ErrFinished) {
			log.Error("build: queueing again", "err", err)
		}
		log.Warn("build stopped: this node no longer holds it")
	case errors.Is(err, cluster.ErrUnavailable):
		blog.Printf("The cluster has no quorum: deployment #%d is queued again", d.ID)
		a.requeueUnavailable(log, d.ID, err)
	case errors.Is(cause, errCancelled), errors.Is(err, store.ErrFinished):
		blog.Printf("Deployment #%d was cancelled", d.ID)
		log.Info("build cancelled")
	case errors.As(err, &skipped):
		blog.Printf("Deployment #%d was cancelled: its commit is skipped", d.ID)
		if err := a.store.Skip(d.ID, skipped.Error()); err != nil && !errors.Is(err, store.ErrFinished) {
			log.Error("build: recording the skip", "err", err)
		}
		log.Info("build skipped", "reason", skipped.Reason)
	default:
		if cause != nil {
			err = cause
		}
		blog.Printf("ERROR: %v", err)
		blog.Printf("Deployment #%d failed", d.ID)
		if ferr := a.store.Fail(d.ID, store.StatusFailed, blog.Redact(err.Error())); ferr != nil && !errors.Is(ferr, store.ErrFinished) {
			log.Error("build: recording the failure", "err", ferr)
		}
		log.Info("build failed")
	}
}

// prune applies retention to a project after a successful deployment: it removes the files and
// logs of the deployments retention.deployments forgets, and trims the build cache to
// retention.cache_bytes.
func (a *Agent) prune(log *slog.Logger, p *store.Project) {
	gone, err := a.store.PruneDeployments(p.ID, a.cfg.Retention.Deployments)
	if err != nil {
		log.Warn("pruning old deployments", "err", err)
		return
	}
	for _, d := range gone {
		if err := os.RemoveAll(a.domain.SiteDir(p.Slug, d.ID)); err != nil {
			log.Warn("removing an old deployment's files", "deployment", d.ID, "err", err)
		}
		_ = os.Remove(a.domain.LogPath(d.ID))
	}
	if len(gone) > 0 {
		log.Info("pruned old deployments", "count", len(gone))
	}
	a.trimCache(log, p)
}

// trimCache trims a project's build cache to retention.cache_bytes once a build of it has ended.
func (a *Agent) trimCache(log *slog.Logger, p *store.Project) {
	limit := a.cfg.Retention.CacheBytes
	if limit <= 0 {
		return
	}
	if freed, err := a.caches.Trim(p.ID, limit); err != nil {
		log.Warn("trimming the build cache", "err", err)
	} else if freed > 0 {
		log.Info("trimmed the build cache to retention.cache_bytes", "freed", freed, "limit", limit)
	}
}

// openBuildLog opens a deployment's build log, masking every secret the agent holds, since a build
// without a sandbox can read them all: the admin token, the GitHub token (also in the form git sends
// it), the OSS keys, the SMTP password, every project's webhook secret, the notification targets'
// URLs and signing secrets, and the project's own variables.
func (a *Agent) openBuildLog(p *store.Project, deploymentID int64) (*pipeline.Log, error) {
	projects, err := a.store.Projects()
	if err != nil {
		return nil, fmt.Errorf("reading the secrets to mask: %w", err)
	}
	targets, err := a.store.Notifications()
	if err != nil {
		return nil, fmt.Errorf("reading the secrets to mask: %w", err)
	}
	secrets := []string{a.adminToken, a.cfg.OSS.AccessKeyID, a.cfg.OSS.AccessKeySecret, a.cfg.SMTP.Password}
	for _, q := range projects {
		secrets = append(secrets, q.WebhookSecret)
	}
	for _, n := range targets {
		if n.Type != notify.TypeEmail {
			secrets = append(secrets, n.Target, n.Secret) // a chat URL holds its token
		}
	}
	for _, v := range p.Env {
		secrets = append(secrets, v)
	}
	if t := a.cfg.GitHub.Token; t != "" {
		secrets = append(secrets, t, base64.StdEncoding.EncodeToString([]byte("x-access-token:"+t)))
	}
	return pipeline.OpenLog(a.domain.LogPath(deploymentID), secrets)
}

// requeueUnavailable queues deployment id again when err is the cluster's lack of a quorum, a
// failure of the moment that must not fail the deployment for good, and reports whether it was.
func (a *Agent) requeueUnavailable(log *slog.Logger, id int64, err error) bool {
	if !errors.Is(err, cluster.ErrUnavailable) {
		return false
	}
	log.Warn("build: the cluster has no quorum: queued again", "err", err)
	// Without a quorum this may fail too: the build's lease, no longer renewed, then expires and
	// another node builds the deployment.
	if err := a.store.Requeue(id); err != nil && !errors.Is(err, store.ErrFinished) {
		log.Error("build: queueing again", "err", err)
	}
	return true
}

// failBeforeLog records a deployment as failed before its build log exists, logging when even that fails
// (the deployment then stays running until the next start recovers it).
func (a *Agent) failBeforeLog(log *slog.Logger, id int64, message string) {
	if err := a.store.Fail(id, store.StatusFailed, message); err != nil && !errors.Is(err, store.ErrFinished) {
		log.Error("build: recording the failure", "err", err)
	}
}
