// Package api holds the wire types and route paths shared by the agent and the CLI's client.
package api

import (
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/idna"
)

// Project is a deployable site as the API shows it; the webhook secret appears only once, in WebhookSecret.
type Project struct {
	ID                 int64     `json:"id"`
	Name               string    `json:"name"`
	Slug               string    `json:"slug"`
	Repo               *string   `json:"repo"`
	RepoURL            string    `json:"repo_url"`
	DefaultBranch      string    `json:"default_branch"`
	Framework          string    `json:"framework"`
	InstallCommand     string    `json:"install_command"`
	BuildCommand       string    `json:"build_command"`
	OutputDirectory    string    `json:"output_directory"`
	RootDirectory      string    `json:"root_directory"`
	Target             string    `json:"target"`
	WebhookID          *int64    `json:"webhook_id"`
	WebhookConfigured  bool      `json:"webhook_configured"`
	WebhookURL         string    `json:"webhook_url"`
	ActiveDeploymentID *int64    `json:"active_deployment_id"`
	SiteURL            string    `json:"site_url"`
	CreatedAt          time.Time `json:"created_at"`
	WebhookSecret      string    `json:"webhook_secret,omitempty"`
	// WebhookEventsMissing are the events the project's GitHub hook lacks, as the agent last saw
	// it; empty when it sends them all, or has no GitHub hook.
	WebhookEventsMissing []string `json:"webhook_events_missing"`
	// GitHubReports says what the agent reports to GitHub about the project's deployments.
	GitHubReports GitHubReports `json:"github_reports"`
	// CacheBytes is the disk space the project's build cache takes.
	CacheBytes int64 `json:"cache_bytes"`
	// Detection is what the newest build of the project detected.
	Detection
	// Trigger rules (contract section 7).
	PreviewBranches []string `json:"preview_branches"`
	PRPreviews      bool     `json:"pr_previews"`
	ForkPreviews    string   `json:"fork_previews"`
	WatchPaths      []string `json:"watch_paths"`
	Trigger         string   `json:"trigger"`
	PollStatus
}

// TriggerSettings are a project's trigger rules (contract section 7) in the body of a create, an
// import or an update: a nil field means the default on create and import, and no change on update.
type TriggerSettings struct {
	PreviewBranches *[]string `json:"preview_branches,omitempty"`
	PRPreviews      *bool     `json:"pr_previews,omitempty"`
	ForkPreviews    *string   `json:"fork_previews,omitempty"`
	WatchPaths      *[]string `json:"watch_paths,omitempty"`
	Trigger         *string   `json:"trigger,omitempty"`
}

// Project triggers: how new commits of a project are found.
const (
	// ProjectTriggerWebhook is GitHub's (or Gitea's, Forgejo's) push webhook.
	ProjectTriggerWebhook = "webhook"
	// ProjectTriggerPoll is the agent reading the branch heads itself every poll.interval.
	ProjectTriggerPoll = "poll"
)

// GitHubReports says which reports of a project's deployments reach GitHub.
type GitHubReports struct {
	// Statuses is true when each deployment sets a commit status on its commit.
	Statuses bool `json:"statuses"`
	// Deployments is true when each deployment is a GitHub Deployment.
	Deployments bool `json:"deployments"`
	// Note says why what is false is, and whether pull request comments are paused; empty when
	// both are true and nothing is paused.
	Note string `json:"note,omitempty"`
}

// Detection is what a build detected in its commit: the build settings used wherever the project
// sets none. Every field is null until a build has detected.
type Detection struct {
	DetectedFramework       *string `json:"detected_framework"`
	DetectedInstallCommand  *string `json:"detected_install_command"`
	DetectedBuildCommand    *string `json:"detected_build_command"`
	DetectedOutputDirectory *string `json:"detected_output_directory"`
}

// ProjectCreate is the body of POST /api/v1/projects (`miaobu project add`).
type ProjectCreate struct {
	Name            string `json:"name"`
	RepoURL         string `json:"repo_url"`
	Branch          string `json:"branch,omitempty"`
	Target          string `json:"target,omitempty"`
	BuildCommand    string `json:"build_command,omitempty"`
	InstallCommand  string `json:"install_command,omitempty"`
	OutputDirectory string `json:"output_directory,omitempty"`
	RootDirectory   string `json:"root_directory,omitempty"`
	TriggerSettings
}

// ProjectUpdate is the body of PATCH /api/v1/projects/{id}; a nil field is left alone and an empty
// string returns a build setting to detection.
type ProjectUpdate struct {
	Branch          *string `json:"default_branch,omitempty"`
	Target          *string `json:"target,omitempty"`
	Framework       *string `json:"framework,omitempty"`
	BuildCommand    *string `json:"build_command,omitempty"`
	InstallCommand  *string `json:"install_command,omitempty"`
	OutputDirectory *string `json:"output_directory,omitempty"`
	RootDirectory   *string `json:"root_directory,omitempty"`
	TriggerSettings
}

// Deployment statuses, in the order a successful build passes through them.
const (
	StatusQueued     = "queued"
	StatusCloning    = "cloning"
	StatusInstalling = "installing"
	StatusBuilding   = "building"
	StatusUploading  = "uploading"
	StatusPurging    = "purging"
	StatusDeployed   = "deployed"
	StatusFailed     = "failed"
	StatusCancelled  = "cancelled"
)

// Deployment triggers.
const (
	TriggerWebhook  = "webhook"
	TriggerManual   = "manual"
	TriggerImport   = "import"
	TriggerRollback = "rollback"
	// TriggerPoll is a new head found by polling (contract section 9).
	TriggerPoll = "poll"
	// TriggerReconcile is a head found without a deployment by reconciliation.
	TriggerReconcile = "reconcile"
	// TriggerGitHubDeployment is a deployment asked for on GitHub (a deployment event).
	TriggerGitHubDeployment = "github_deployment"
)

// Deployment is one build of one commit of a project as the API shows it.
type Deployment struct {
	ID               int64      `json:"id"`
	ProjectID        int64      `json:"project_id"`
	CommitSHA        string     `json:"commit_sha"`
	CommitMessage    string     `json:"commit_message"`
	CommitAuthor     string     `json:"commit_author"`
	Branch           string     `json:"branch"`
	Trigger          string     `json:"trigger"`
	Status           string     `json:"status"`
	ErrorMessage     string     `json:"error_message"`
	CreatedAt        time.Time  `json:"created_at"`
	StartedAt        *time.Time `json:"started_at"`
	FinishedAt       *time.Time `json:"finished_at"`
	BuildTimeSeconds *float64   `json:"build_time_seconds"`
	URL              string     `json:"url"`
	Live             bool       `json:"live"`
	// Detection is what this deployment's build detected.
	Detection
	// Environment is production or preview; Alias names the preview ("" for production), whose
	// URL is then URL.
	Environment string `json:"environment"`
	Alias       string `json:"alias"`
	PullRequest *int   `json:"pull_request"`
	// Node is the clustered agent that runs or ran the build: null before that and on a single agent.
	Node *string `json:"node"`
}

// Preview is one preview alias of a project as the API shows it: a pull request's or a preview
// branch's, with its live deployment and URL.
type Preview struct {
	Alias       string `json:"alias"`
	Branch      string `json:"branch"`
	PullRequest *int   `json:"pull_request"`
	// Fork says the pull request comes from another repository; its head commits wait for
	// approval unless the project's fork_previews is on.
	Fork             bool   `json:"fork"`
	HeadSHA          string `json:"head_sha"`
	AwaitingApproval bool   `json:"awaiting_approval"`
	// DeploymentID is the live deployment, null before the first build goes live.
	DeploymentID *int64     `json:"deployment_id"`
	URL          string     `json:"url"`
	CreatedAt    time.Time  `json:"created_at"`
	RemovedAt    *time.Time `json:"removed_at"`
}

// DeployRequest is the body of POST /api/v1/projects/{id}/deploy; every field is optional.
type DeployRequest struct {
	CommitSHA string `json:"commit_sha,omitempty"`
	Branch    string `json:"branch,omitempty"`
	// NoCache makes the build start from nothing: the project's build cache is cleared first.
	NoCache bool `json:"no_cache,omitempty"`
}

// CacheCleared is the answer of DELETE /api/v1/projects/{id}/cache.
type CacheCleared struct {
	ProjectID int64 `json:"project_id"`
	// FreedBytes is the disk space the cache took.
	FreedBytes int64 `json:"freed_bytes"`
}

// ApproveRequest is the body of POST /api/v1/projects/{id}/previews/pr-{n}/approve, which may be
// left out.
type ApproveRequest struct {
	// CommitSHA, when set, is the head commit the reviewer looked at: the approval applies only
	// while the pull request's head is that commit.
	CommitSHA string `json:"commit_sha,omitempty"`
}

// RollbackRequest is the body of POST /api/v1/projects/{id}/rollback.
type RollbackRequest struct {
	DeploymentID int64 `json:"deployment_id,omitempty"`
}

// Error is the body of every error answer.
type Error struct {
	Detail string `json:"detail"`
}

// WebhookAnswer is the body of every 2xx answer of the webhook endpoint and of the webhook management routes.
type WebhookAnswer struct {
	Status        string `json:"status"`
	Message       string `json:"message"`
	ProjectID     int64  `json:"project_id,omitempty"`
	DeploymentID  int64  `json:"deployment_id,omitempty"`
	CommitSHA     string `json:"commit_sha,omitempty"`
	CommitMessage string `json:"commit_message,omitempty"`
	Branch        string `json:"branch,omitempty"`
	WebhookID     int64  `json:"webhook_id,omitempty"`
	WebhookURL    string `json:"webhook_url,omitempty"`
	WebhookSecret string `json:"webhook_secret,omitempty"`
	// Warning says why GitHub may still not reach the hook, such as a loopback public_url.
	Warning string `json:"warning,omitempty"`
}

// ImportRequest is the body of POST /api/v1/repositories/{owner}/{repo}/import; every field is
// optional, and a build setting given here is stored and wins over detection.
type ImportRequest struct {
	Branch          string `json:"branch,omitempty"`
	Name            string `json:"name,omitempty"`
	Target          string `json:"target,omitempty"`
	BuildCommand    string `json:"build_command,omitempty"`
	InstallCommand  string `json:"install_command,omitempty"`
	OutputDirectory string `json:"output_directory,omitempty"`
	RootDirectory   string `json:"root_directory,omitempty"`
	NoWebhook       bool   `json:"no_webhook,omitempty"`
	NoDeploy        bool   `json:"no_deploy,omitempty"`
	TriggerSettings
}

// Detected is what import detected from the repository at the branch tip.
type Detected struct {
	CommitSHA       string   `json:"commit_sha"`
	Framework       string   `json:"framework"`
	PackageManager  string   `json:"package_manager"`
	InstallCommand  string   `json:"install_command"`
	BuildCommand    string   `json:"build_command"`
	OutputDirectory string   `json:"output_directory"`
	NodeVersion     string   `json:"node_version"`
	Notes           []string `json:"notes"`
}

// Webhook outcomes of an import.
const (
	HookCreated = "created" // a new hook was added to the repository
	HookUpdated = "updated" // a hook with the project's URL existed and now carries its secret
	HookSkipped = "skipped" // --no-webhook
	HookFailed  = "failed"  // GitHub refused or failed; Error says why and how to retry
)

// ImportWebhook is how creating the webhook went during an import.
type ImportWebhook struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// ImportResult is the answer of an import: the stored project, what was detected, the webhook's
// outcome and the first deployment (null with --no-deploy).
type ImportResult struct {
	Project    Project       `json:"project"`
	Detected   Detected      `json:"detected"`
	Webhook    ImportWebhook `json:"webhook"`
	Deployment *Deployment   `json:"deployment"`
	Warnings   []string      `json:"warnings"`
}

// Health is the body of GET /healthz.
type Health struct {
	Status string `json:"status"`
	// Detail says why a node answers 503: it cannot do its share of the cluster's work.
	Detail string `json:"detail,omitempty"`
}

// Delivery is one verified webhook delivery as the agent recorded it.
type Delivery struct {
	GUID         string    `json:"guid"`
	Event        string    `json:"event"`
	ProjectID    int64     `json:"project_id"`
	Outcome      string    `json:"outcome"`
	DeploymentID int64     `json:"deployment_id,omitempty"`
	ReceivedAt   time.Time `json:"received_at"`
	// RemoteAddr is the client's address: the TCP peer, or the X-Forwarded-For client behind a trusted proxy.
	RemoteAddr string `json:"remote_addr"`
}

// Route paths of the agent.
const (
	PathHealth          = "/healthz"
	PathWebhookPrefix   = "/api/v1/webhooks/github/"
	PathProjects        = "/api/v1/projects"
	PathDeployments     = "/api/v1/deployments"
	PathStatus          = "/api/v1/status"
	PathMetrics         = "/metrics"
	PathRepositories    = "/api/v1/repositories"
	PathProjectWebhooks = "/api/v1/webhooks/projects"
	PathDeliveries      = "/api/v1/webhooks/deliveries"
	PathBackup          = "/api/v1/backup"
	PathLoginCodes      = "/api/v1/dashboard/login-codes"
)

// ImportPath is the import route of the GitHub repository owner/repo.
func ImportPath(owner, repo string) string {
	return PathRepositories + "/" + url.PathEscape(owner) + "/" + url.PathEscape(repo) + "/import"
}

// PreviewsPath is the route of the previews of a project named by id or slug.
func PreviewsPath(project string) string {
	return PathProjects + "/" + url.PathEscape(project) + "/previews"
}

// PreviewPath is the route of one preview alias of a project.
func PreviewPath(project, alias string) string {
	return PreviewsPath(project) + "/" + url.PathEscape(alias)
}

// ApprovePath is the route that approves the head commit of a pull request's fork preview.
func ApprovePath(project, alias string) string {
	return PreviewPath(project, alias) + "/approve"
}

// WebhookSetupPath is the route that creates the GitHub hook of a project named by id or slug.
func WebhookSetupPath(project string) string {
	return PathProjectWebhooks + "/" + url.PathEscape(project) + "/setup"
}

// WebhookDeletePath is the route that removes a project's webhook.
func WebhookDeletePath(project string) string {
	return PathProjectWebhooks + "/" + url.PathEscape(project) + "/webhook"
}

// WebhookRotatePath is the route that replaces a project's webhook secret.
func WebhookRotatePath(project string) string {
	return PathProjectWebhooks + "/" + url.PathEscape(project) + "/rotate"
}

// EnvVar is a project's build variable as the API shows it: its name, never its value.
type EnvVar struct {
	Name string `json:"name"`
}

// Status is the body of GET /api/v1/status: the agent's health and each project's state.
type Status struct {
	Status    string          `json:"status"`
	Version   string          `json:"version"`
	PublicURL string          `json:"public_url"`
	StartedAt time.Time       `json:"started_at"`
	Sandbox   string          `json:"sandbox"`
	Queue     QueueStatus     `json:"queue"`
	Projects  []ProjectStatus `json:"projects"`
	// Certificates are those the agent obtained for its own HTTPS (tls.enabled), and names whose
	// last attempt failed.
	Certificates []Certificate `json:"certificates"`
	// Cluster is the cluster of agents this one belongs to; absent on a single agent.
	Cluster *Cluster `json:"cluster,omitempty"`
}

// Cluster is a cluster of agents as the answering node sees it: its members and whether a quorum
// of them agree on a leader, without which nothing is written and webhooks get 503.
type Cluster struct {
	Node    string          `json:"node"`
	Members []ClusterMember `json:"members"`
	Quorum  bool            `json:"quorum"`
}

// ClusterMember is one voting node of a cluster: its name, route address, whether it leads the
// cluster's metadata, and whether it is current (seen and caught up).
type ClusterMember struct {
	Node    string `json:"node"`
	Address string `json:"address"`
	Leader  bool   `json:"leader"`
	Current bool   `json:"current"`
}

// Certificate is one name's certificate for the agent's own HTTPS: when it expires (null: none
// obtained) and why the last attempt to obtain or renew it failed (null: it did not).
type Certificate struct {
	Name      string     `json:"name"`
	ExpiresAt *time.Time `json:"expires_at"`
	LastError *string    `json:"last_error"`
}

// QueueStatus says how much work waits and runs; Concurrency 0 means building is paused.
type QueueStatus struct {
	Queued      int `json:"queued"`
	Running     int `json:"running"`
	Concurrency int `json:"concurrency"`
}

// ProjectStatus is one project's line in the status: its live deployment, webhook and last result,
// and for a project with trigger poll its polling.
type ProjectStatus struct {
	ID                int64  `json:"id"`
	Slug              string `json:"slug"`
	SiteURL           string `json:"site_url"`
	WebhookConfigured bool   `json:"webhook_configured"`
	// WebhookEventsMissing is the project's Project.WebhookEventsMissing.
	WebhookEventsMissing []string    `json:"webhook_events_missing"`
	Trigger              string      `json:"trigger"`
	Live                 *Deployment `json:"live"`
	Last                 *Deployment `json:"last"`
	// Previews counts the previews that are up (not removed).
	Previews int `json:"previews"`
	// CacheBytes is the disk space the project's build cache takes.
	CacheBytes int64 `json:"cache_bytes"`
	PollStatus
	// LastReconcileError says why the last reconciliation of the project's heads with its
	// deployments failed, null when it did not.
	LastReconcileError *string `json:"last_reconcile_error"`
	// ReconcileRetryAt is when a failed reconciliation is tried again, null when none failed.
	ReconcileRetryAt *time.Time `json:"reconcile_retry_at"`
}

// PollStatus is how the polling of a project with trigger poll goes; every field is null for a
// project that is not polled.
type PollStatus struct {
	// LastPollAt is the last successful check for new commits, null before one.
	LastPollAt *time.Time `json:"last_poll_at"`
	// LastPollError says why the last check failed, null when it succeeded.
	LastPollError *string `json:"last_poll_error"`
	// NextPollAt is when the next check is due.
	NextPollAt *time.Time `json:"next_poll_at"`
}

// PathNotifications is the route of the notification targets.
const PathNotifications = "/api/v1/notifications"

// NotificationPath is the route of notification target id.
func NotificationPath(id string) string { return PathNotifications + "/" + url.PathEscape(id) }

// Types of notification target.
const (
	NotifySlack   = "slack"
	NotifyDiscord = "discord"
	NotifyWebhook = "webhook"
	NotifyEmail   = "email"
)

// NotificationTypes lists the types of notification target.
var NotificationTypes = []string{NotifySlack, NotifyDiscord, NotifyWebhook, NotifyEmail}

// Notification is an outgoing notification target as the API shows it: Target masks a URL's
// path and query after its first segment, and Secret (a webhook's signing secret) appears only
// once, in the answer that creates it.
type Notification struct {
	ID     int64  `json:"id"`
	Type   string `json:"type"`
	Target string `json:"target"`
	// ProjectID is the one project the target hears of; null: every project.
	ProjectID *int64   `json:"project_id"`
	Events    []string `json:"events"`
	// DisabledReason says why deliveries stopped; null while the target is enabled.
	DisabledReason *string   `json:"disabled_reason"`
	CreatedAt      time.Time `json:"created_at"`
	Secret         string    `json:"secret,omitempty"`
}

// NotificationCreate is the body of POST /api/v1/notifications; no events means the default ones.
type NotificationCreate struct {
	Type      string   `json:"type"`
	Target    string   `json:"target"`
	ProjectID *int64   `json:"project_id,omitempty"`
	Events    []string `json:"events,omitempty"`
}

// NotificationTest is the answer of POST /api/v1/notifications/{id}/test: what the receiver
// answered to a test message, an HTTP status or an SMTP reply code and the start of its text.
type NotificationTest struct {
	StatusCode int    `json:"status_code"`
	Response   string `json:"response"`
}

// DomainsPath is the route of the custom domains of project ref.
func DomainsPath(ref string) string { return PathProjects + "/" + url.PathEscape(ref) + "/domains" }

// domainNames converts a custom domain to the ASCII form DNS and TLS use, as lookups do (IDNA 2008
// with the UTS 46 mapping, so upper case and full-width forms become the name they stand for), and
// refuses what no DNS name may be.
var domainNames = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.StrictDomainName(true),
	idna.VerifyDNSLength(true), idna.Transitional(false))

// DomainName returns a custom domain in the form the agent stores and compares it: without spaces
// around it or a final dot, in lower-case ASCII (bücher.example is xn--bcher-kva.example); the
// error says why raw is no DNS name.
func DomainName(raw string) (string, error) {
	return domainNames.ToASCII(strings.TrimSuffix(strings.TrimSpace(raw), "."))
}

// PathTLSAsk is the public route that says whether the agent serves a name (?domain=HOST), for a
// TLS server in front that gets certificates on demand: 200 yes, 404 no.
const PathTLSAsk = "/api/v1/tls/ask"

// Domain is a custom domain of a project.
type Domain struct {
	Domain    string `json:"domain"`
	ProjectID int64  `json:"project_id"`
	Project   string `json:"project"`
}

// DomainCreate is the body of POST /api/v1/projects/{id}/domains.
type DomainCreate struct {
	Domain string `json:"domain"`
}

// DNSRecord is a DNS record to create: Type CNAME, A or AAAA, at Name, pointing to Value.
type DNSRecord struct {
	Type  string `json:"type"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

// DomainAdded is the answer of POST /api/v1/projects/{id}/domains: the domain, the DNS records to
// create (for an apex, none when the agent does not know its own addresses), what the name resolves
// to now and whether that is the agent.
type DomainAdded struct {
	Domain
	DNSRecords []DNSRecord `json:"dns_records"`
	Addresses  []string    `json:"addresses"`
	PointsHere bool        `json:"points_here"`
}

// LoginCode is the answer of POST /api/v1/dashboard/login-codes: a code that signs in to the
// dashboard once, before ExpiresAt, and the link that carries it.
type LoginCode struct {
	Code      string    `json:"code"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}
