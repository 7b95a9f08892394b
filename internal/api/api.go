// Package api holds the wire types and route paths shared by the agent and the CLI's client.
package api

import "time"

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
}

// DeployRequest is the body of POST /api/v1/projects/{id}/deploy; both fields are optional.
type DeployRequest struct {
	CommitSHA string `json:"commit_sha,omitempty"`
	Branch    string `json:"branch,omitempty"`
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
}

// Health is the body of GET /healthz.
type Health struct {
	Status string `json:"status"`
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
)

// EnvVar is a project's build variable as the API shows it: its name, never its value.
type EnvVar struct {
	Name string `json:"name"`
}
