// Package domain is what miaobu does, whatever carries the request: projects and their build
// variables, deployments, imports from GitHub, webhooks, the deliveries they send, the deployments
// GitHub asks for, and notification targets. Its methods take and return the store's entities and
// fail with *Error, whose Kind says whose problem it is; the agent's HTTP handlers only decode, call
// one method and encode.
package domain

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/miaobu/miaobu/internal/buildcache"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/keylock"
	"github.com/miaobu/miaobu/internal/notify"
	"github.com/miaobu/miaobu/internal/outbox"
	"github.com/miaobu/miaobu/internal/publish"
	"github.com/miaobu/miaobu/internal/store"
)

// Store is the durable state the domain reads and changes; *store.Store is the embedded
// implementation. Lookups of what does not exist return store.ErrNotFound, and a project that
// would duplicate another returns a *store.ConflictError.
type Store interface {
	Project(id int64) (*store.Project, error)
	ProjectBySlug(slug string) (*store.Project, error)
	Projects() ([]*store.Project, error)
	CreateProject(p *store.Project) error
	UpdateProject(id int64, change func(p *store.Project) error) (*store.Project, error)
	DeleteProject(id int64) ([]*store.Deployment, error)

	Deployment(id int64) (*store.Deployment, error)
	Deployments(projectID int64, limit int) ([]*store.Deployment, error)
	DeploymentsWhere(projectID int64, limit int, keep func(*store.Deployment) bool) ([]*store.Deployment, error)
	CreateDeployment(d *store.Deployment) error
	Cancel(id int64) (*store.Deployment, error)
	UpdateRunning(id int64, change func(d *store.Deployment)) error
	SetStatus(id int64, status store.Status) error
	MayGoLive(id int64) (bool, error)
	Complete(id int64) (live bool, err error)
	Rollback(projectID, id int64) error

	RecordDelivery(ctx context.Context, d store.Delivery) error
	RecordPush(ctx context.Context, p store.Push) (store.PushResult, error)
	HeadMissing(projectID int64, branch, sha string) (bool, error)
	DeployHead(ctx context.Context, d *store.Deployment) (bool, error)
	RecordGitHubDeployment(ctx context.Context, g store.GitHubDeployment) (store.GitHubDeploymentResult, error)
	HandledGitHubDeployment(projectID, githubID int64) (bool, error)
	HandleGitHubDeployment(projectID, githubID, id int64) error
	Deliveries(projectID int64, limit int) ([]store.Delivery, error)

	Preview(projectID int64, alias string) (*store.Preview, error)
	Previews(projectID int64) ([]*store.Preview, error)
	ApprovePreview(p store.Push) (store.PushResult, error)
	RemovePreview(projectID int64, alias, reason string) (*store.Preview, []*store.Deployment, error)
	DeleteBranch(projectID int64, branch, last, alias, reason string) (*store.Preview, []*store.Deployment, error)
	PurgeRemovedPreviews(cutoff time.Time) ([]*store.Deployment, error)

	EnqueueMessage(m outbox.Message) (int64, error)

	Notifications() ([]*store.Notification, error)
	Notification(id int64) (*store.Notification, error)
	CreateNotification(n *store.Notification) error
	DeleteNotification(id int64) error

	AddDomain(projectID int64, name string) (*store.Project, error)
	RemoveDomain(projectID int64, name string) (*store.Project, error)
	ProjectByDomain(name string) (*store.Project, error)
}

// Reports are the reports to GitHub that the domain makes itself; those of a deployment's changes
// of status are enqueued by the store, in the transaction of each change.
type Reports interface {
	// LiveAgain returns the messages that report an earlier deployment d of p live again: to the
	// GitHub Deployment githubID that asked for it or, with 0, to d's own.
	LiveAgain(p *store.Project, d *store.Deployment, githubID int64) []outbox.Message
	// AlreadyDeploying returns the messages that tell the GitHub Deployment githubID that
	// deployment d of p, of the same commit, is already queued or running instead.
	AlreadyDeploying(p *store.Project, d *store.Deployment, githubID int64) []outbox.Message
	// Resume reports to GitHub again for a project whose reports GitHub refused.
	Resume(projectID int64)
	// Skipped returns the messages that report a push of p's commit sha skipped for reason.
	Skipped(p *store.Project, sha, reason string) []outbox.Message
	// Inactive returns the messages that report deployment d, the last of p's preview alias, no
	// longer served.
	Inactive(p *store.Project, d *store.Deployment, alias string) []outbox.Message
	// AwaitingApproval and Removed return the messages that update pull request n's sticky comment:
	// its fork's head commit sha waits for approval, or its preview alias was taken down.
	AwaitingApproval(p *store.Project, n int, alias, sha string) []outbox.Message
	Removed(p *store.Project, n int, alias, sha string) []outbox.Message
}

// Builds is the part of the build queue the domain drives: waking workers for a new deployment and
// stopping the build of a cancelled one.
type Builds interface {
	Wake()
	Stop(deploymentID int64)
}

// Options are what a Service works with.
type Options struct {
	Config *config.Config
	Store  Store
	GitHub *github.Client
	Builds Builds
	// Reports tell GitHub what the domain does to deployments.
	Reports Reports
	// Targets are where deployments go live.
	Targets *publish.Targets
	// Notifier checks and tests notification targets.
	Notifier *notify.Notifier
	// Caches holds each project's build cache.
	Caches *buildcache.Caches
	// Resolver looks up where custom domains point; nil: the system's resolver.
	Resolver Resolver
	// SiteFiles returns where a kept deployment's files are when it goes live, after fetching them
	// if they are kept elsewhere (on another node of a cluster); nil: SiteDir.
	SiteFiles func(slug string, deploymentID int64) string
	// SharedLog returns the copy of deployment d's build log that another node of a cluster, which
	// builds or built it, shares (nil when it shared none yet), and false when the log is this
	// agent's own file; nil: every log is.
	SharedLog func(ctx context.Context, d *store.Deployment) (copy []byte, shared bool, err error)
	Log       *slog.Logger
}

// Service carries out the domain's operations; it is safe for concurrent use.
type Service struct {
	cfg      *config.Config
	store    Store
	github   *github.Client
	builds   Builds
	reports  Reports
	targets  *publish.Targets
	notifier *notify.Notifier
	caches   *buildcache.Caches
	resolver Resolver
	// siteFiles is Options.SiteFiles, or SiteDir.
	siteFiles func(slug string, deploymentID int64) string
	// sharedLog is Options.SharedLog.
	sharedLog func(ctx context.Context, d *store.Deployment) ([]byte, bool, error)
	log       *slog.Logger
	// headCommitTimeout bounds the webhook's question to GitHub about a pull request's head commit:
	// the constant headCommitTimeout, shorter in tests.
	headCommitTimeout time.Duration
	// hooks serialises the changes of GitHub hooks, so that two setups of one project cannot both
	// find no hook and create two.
	hooks sync.Mutex
	// publishing holds a lock per project while a deployment goes live.
	publishing keylock.Locks
}

// New returns a Service with opts.
func New(opts Options) *Service {
	resolver := opts.Resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	s := &Service{cfg: opts.Config, store: opts.Store, github: opts.GitHub, builds: opts.Builds, reports: opts.Reports, targets: opts.Targets,
		notifier: opts.Notifier, caches: opts.Caches, resolver: resolver, siteFiles: opts.SiteFiles, sharedLog: opts.SharedLog, log: opts.Log,
		headCommitTimeout: headCommitTimeout}
	if s.siteFiles == nil {
		s.siteFiles = s.SiteDir
	}
	return s
}

// LogPath is the build log file of a deployment.
func (s *Service) LogPath(deploymentID int64) string {
	return filepath.Join(s.cfg.DataDir, "logs", strconv.FormatInt(deploymentID, 10)+".log")
}

// SiteDir is where the output of a deployment is kept and served from.
func (s *Service) SiteDir(slug string, deploymentID int64) string {
	return publish.Dir(s.cfg.DataDir, slug, deploymentID)
}
