// Package report owns what miaobu tells GitHub about its deployments: it turns each change of a
// deployment's status into outbox messages (a commit status on the deployed commit, and the
// statuses of a GitHub Deployment), sends them through the GitHub client, and pauses a kind of
// report for a project whose token GitHub refuses it. Nothing here fails or delays a deployment.
package report

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/outbox"
	"github.com/miaobu/miaobu/internal/store"
)

// Kinds of report, which are also the kinds of their outbox messages.
const (
	// KindStatus is a commit status on the deployed commit (github.statuses).
	KindStatus = "github.status"
	// KindDeployment is a status of the GitHub Deployment of a deployment, created with its first
	// status (github.deployments).
	KindDeployment = "github.deployment"
	// KindComment is the sticky comment of a pull request's preview, created once and then edited.
	KindComment = "github.comment"
)

// Store is what a Reporter reads and records while it sends: the deployment a report is about,
// the GitHub Deployment made for it, and a pull request preview's sticky comment.
type Store interface {
	Deployment(id int64) (*store.Deployment, error)
	DeploymentsWhere(projectID int64, limit int, keep func(*store.Deployment) bool) ([]*store.Deployment, error)
	NewestDeploymentOf(projectID int64, alias, sha string) (*store.Deployment, error)
	SetGitHubDeployment(id, githubID int64) error
	Preview(projectID int64, alias string) (*store.Preview, error)
	SetPreviewComment(projectID int64, alias string, commentID int64) error
}

// Options configure a Reporter.
type Options struct {
	// GitHub sends the reports; with no token (HasToken false) nothing is reported.
	GitHub   *github.Client
	HasToken bool
	// Statuses and Deployments turn each kind of report on (github.statuses, github.deployments).
	Statuses, Deployments bool
	// PublicURL is the dashboard's root: <PublicURL>/deployments/<id> is a deployment's page, the
	// target of the status's Details link and the deployment's log link.
	PublicURL string
	// LiveURL is where a project's live site is; DeploymentURL where one deployment is seen.
	LiveURL       func(p *store.Project) string
	DeploymentURL func(p *store.Project, d *store.Deployment) string
	Store         Store
	Log           *slog.Logger
	// Backoff is how failed reports are retried, never given up on; DefaultBackoff when zero.
	Backoff outbox.Backoff
}

// DefaultBackoff retries a report after 2 seconds, then twice as long each time up to 12.5 minutes
// (10 to 15 with the outbox's jitter): a blip of GitHub delays reports by seconds, an outage of any
// length by a quarter of an hour at most once it ends.
var DefaultBackoff = outbox.Backoff{First: 2 * time.Second, Max: 12*time.Minute + 30*time.Second}

// Reporter reports deployments to GitHub; it is safe for concurrent use.
type Reporter struct {
	opts Options

	mu sync.Mutex
	// worker sends the reports, and holds those of a paused kind until Resume releases them.
	worker *outbox.Worker
	// paused holds, for each project, the kinds of report GitHub refused since the last Resume.
	paused map[int64]map[string]bool
	// gone holds the GitHub deployments found deleted on GitHub, whose statuses are dropped.
	gone map[int64]bool
}

// New returns a Reporter with opts.
func New(opts Options) *Reporter {
	if opts.Backoff == (outbox.Backoff{}) {
		opts.Backoff = DefaultBackoff
	}
	return &Reporter{opts: opts, paused: map[int64]map[string]bool{}, gone: map[int64]bool{}}
}

// payload is the JSON of a report message: everything its request needs, fixed when the change it
// reports is committed.
type payload struct {
	ProjectID int64  `json:"project_id"`
	Slug      string `json:"slug"`
	Repo      string `json:"repo"`
	SHA       string `json:"sha"`
	// DeploymentID is the miaobu deployment reported, 0 for a skipped push.
	DeploymentID int64 `json:"deployment_id,omitempty"`
	// Status is the deployment's status that a pending commit status describes: once the deployment
	// has another, the report is outdated and dropped.
	Status      string `json:"status,omitempty"`
	State       string `json:"state"`
	Description string `json:"description"`
	// TargetURL and Context are those of a commit status.
	TargetURL string `json:"target_url,omitempty"`
	Context   string `json:"context,omitempty"`
	// The rest is a GitHub Deployment's.
	Environment    string `json:"environment,omitempty"`
	Production     bool   `json:"production,omitempty"`
	Transient      bool   `json:"transient,omitempty"`
	EnvironmentURL string `json:"environment_url,omitempty"`
	LogURL         string `json:"log_url,omitempty"`
	// GitHubDeploymentID names the GitHub Deployment when the message is made (one made on GitHub);
	// otherwise it is read from the deployment when sent, and created then if there is none.
	GitHubDeploymentID int64 `json:"github_deployment_id,omitempty"`
	// PullRequest and Alias name the pull request and preview of a comment.
	PullRequest int    `json:"pull_request,omitempty"`
	Alias       string `json:"alias,omitempty"`
}

// message wraps p as an outbox message of kind under key.
func message(kind, key string, p payload) outbox.Message {
	raw, _ := json.Marshal(p) // a struct of strings, numbers and booleans always encodes
	return outbox.Message{Kind: kind, Key: key, Payload: raw}
}

// reports reports whether kind is reported for project p: it has a repository, there is a token,
// and kind is turned on (comments always are). A pause does not count here: a paused report is
// held in the outbox until the pause ends.
func (r *Reporter) reports(p *store.Project, kind string) bool {
	switch {
	case p.Repo == "" || !r.opts.HasToken:
		return false
	case kind == KindStatus:
		return r.opts.Statuses
	case kind == KindDeployment:
		return r.opts.Deployments
	}
	return true
}

// Transition returns the messages that report d's new status; it is the store's Reporter, called
// inside the transaction of the change.
func (r *Reporter) Transition(p store.Project, d store.Deployment) []outbox.Message {
	var out []outbox.Message
	if r.reports(&p, KindStatus) {
		state, description := commitState(&p, &d)
		s := base(&p, &d)
		s.Status, s.State, s.Description = string(d.Status), state, description
		s.TargetURL, s.Context = r.page(&d), "miaobu/"+p.Slug
		out = append(out, message(KindStatus, statusKey(p.ID, d.CommitSHA), s))
	}
	if state, description, ok := deploymentState(&p, &d); ok && r.reports(&p, KindDeployment) {
		s := base(&p, &d)
		s.State, s.Description, s.LogURL = state, description, r.page(&d)
		s.Environment, s.Production, s.Transient = environment(d.Alias)
		if state == "success" {
			s.EnvironmentURL = r.siteURL(&p, &d)
		}
		s.GitHubDeploymentID = d.GitHubDeploymentID
		out = append(out, message(KindDeployment, deploymentKey(p.ID, s.Environment), s))
	}
	if d.PullRequest != 0 {
		out = append(out, r.buildComment(&p, &d)...)
	}
	return out
}

// base is the part of a report of d that both kinds share.
func base(p *store.Project, d *store.Deployment) payload {
	return payload{ProjectID: p.ID, Slug: p.Slug, Repo: p.Repo, SHA: d.CommitSHA, DeploymentID: d.ID}
}

// page is d's page in the dashboard, where its log is shown.
func (r *Reporter) page(d *store.Deployment) string {
	return r.opts.PublicURL + "/deployments/" + strconv.FormatInt(d.ID, 10)
}

// siteURL is where a successful deployment is seen: the live site while it is live, a preview's
// alias.
func (r *Reporter) siteURL(p *store.Project, d *store.Deployment) string {
	if d.Alias == "" && p.ActiveDeploymentID == d.ID {
		return r.opts.LiveURL(p)
	}
	return r.opts.DeploymentURL(p, d)
}

// environment returns the GitHub environment of a deployment to alias ("" for production): its
// name, and whether it is the production one and a transient one.
func environment(alias string) (name string, production, transient bool) {
	if alias == "" {
		return "production", true, false
	}
	return "preview/" + alias, false, true
}

// stepDescriptions describe the statuses of a deployment on its way.
var stepDescriptions = map[store.Status]string{
	store.StatusQueued:     "Queued",
	store.StatusCloning:    "Cloning",
	store.StatusInstalling: "Installing dependencies",
	store.StatusBuilding:   "Building",
	store.StatusUploading:  "Uploading",
	store.StatusPurging:    "Purging the CDN",
}

// commitState returns the commit status state and description of d.
func commitState(p *store.Project, d *store.Deployment) (state, description string) {
	switch d.Status {
	case store.StatusDeployed:
		return "success", deployedDescription(p, d)
	case store.StatusFailed:
		return "failure", failedDescription(d)
	case store.StatusCancelled:
		if d.Skipped {
			// A required check must not wait for a commit that asked not to be built.
			return "success", d.ErrorMessage
		}
		return "error", cancelledDescription(d)
	}
	if description, ok := stepDescriptions[d.Status]; ok {
		return "pending", description
	}
	return "pending", string(d.Status)
}

// deploymentState returns the GitHub Deployment state and description of d, and false when d's new
// status is not reported there: a deployment is in_progress from its first step to its end.
func deploymentState(p *store.Project, d *store.Deployment) (state, description string, ok bool) {
	switch d.Status {
	case store.StatusCloning:
		return "in_progress", "Building", true
	case store.StatusDeployed:
		return "success", deployedDescription(p, d), true
	case store.StatusFailed:
		return "failure", failedDescription(d), true
	case store.StatusCancelled:
		if d.Skipped {
			return "inactive", d.ErrorMessage, true
		}
		return "error", cancelledDescription(d), true
	}
	return "", "", false
}

// deployedDescription is "Live in 12s", or says that a newer deployment was live first.
func deployedDescription(p *store.Project, d *store.Deployment) string {
	took := ""
	if d.BuildTimeSeconds != nil {
		took = " in " + (time.Duration(*d.BuildTimeSeconds * float64(time.Second))).Round(time.Second).String()
	}
	// A preview's live deployment is the preview's, not the project's: a preview that goes live
	// goes live on its own alias.
	if d.Alias == "" && p.ActiveDeploymentID != d.ID {
		return "Deployed" + took + "; a newer deployment is live"
	}
	return "Live" + took
}

// failedDescription is "Build failed: " and the first line of the error.
func failedDescription(d *store.Deployment) string {
	first, _, _ := strings.Cut(strings.TrimSpace(d.ErrorMessage), "\n")
	if first == "" {
		return "Build failed"
	}
	return "Build failed: " + first
}

// cancelledDescription is "Superseded by #N" for a deployment a newer one replaced, else "Cancelled".
func cancelledDescription(d *store.Deployment) string {
	if rest, ok := strings.CutPrefix(d.ErrorMessage, "superseded by "); ok {
		return "Superseded by " + rest
	}
	return "Cancelled"
}

// Skipped returns the report of a push of p's commit sha that is not deployed, for reason (such as
// "commit message contains [skip ci]"): a successful "Skipped: <reason>" status, so that a required
// check does not wait forever.
func (r *Reporter) Skipped(p *store.Project, sha, reason string) []outbox.Message {
	if !r.reports(p, KindStatus) {
		return nil
	}
	s := payload{ProjectID: p.ID, Slug: p.Slug, Repo: p.Repo, SHA: sha, State: "success", Description: "Skipped: " + reason,
		Context: "miaobu/" + p.Slug}
	return []outbox.Message{message(KindStatus, statusKey(p.ID, sha), s)}
}

// statusKey orders the commit statuses of project's commit sha: GitHub keeps one per commit and
// context, so those of every deployment of the commit are sent in turn, and the last one sent is
// what GitHub shows. A commit can be deployed to production and to previews; its status speaks
// for production first. So, when its turn comes, a status is dropped if it is outdated: a pending
// one of a deployment that has moved on, any of a deployment followed by a newer deployment of the
// commit to the same environment (production, or the previews), and any of a preview of a commit
// whose newest production deployment is deployed (a preview, even one cancelled or superseded
// afterwards, never takes production's success away). A preview never drops a production status.
func statusKey(project int64, sha string) string {
	return fmt.Sprintf("%s:%d:%s", KindStatus, project, sha)
}

// deploymentKey orders the reports of project's GitHub environment: they are sent one after the
// other, in miaobu's order, so that GitHub creates the environment's deployments and gets their
// statuses in that order too, also when an outage delayed them, and its last success, the one it
// shows as active, is the newest one's.
func deploymentKey(project int64, environment string) string {
	return fmt.Sprintf("%s:%d:%s", KindDeployment, project, environment)
}

// Inactive returns the report that deployment d, the last one of p's preview alias, is no longer
// served: its GitHub Deployment becomes inactive (GitHub shows a transient one as destroyed).
func (r *Reporter) Inactive(p *store.Project, d *store.Deployment, alias string) []outbox.Message {
	if !r.reports(p, KindDeployment) {
		return nil
	}
	s := base(p, d)
	s.State, s.Description = "inactive", "Preview removed"
	s.Environment, s.Production, s.Transient = environment(alias)
	s.GitHubDeploymentID = d.GitHubDeploymentID
	return []outbox.Message{message(KindDeployment, deploymentKey(p.ID, s.Environment), s)}
}

// LiveAgain returns the report that an earlier deployment d of p is live again (a rollback): a
// success pointing at the site, for the GitHub Deployment githubID that asked for it (one made on
// GitHub), or with githubID 0 for d's own.
func (r *Reporter) LiveAgain(p *store.Project, d *store.Deployment, githubID int64) []outbox.Message {
	if !r.reports(p, KindDeployment) {
		return nil
	}
	s := base(p, d)
	s.State, s.Description, s.LogURL = "success", fmt.Sprintf("Live again: deployment #%d", d.ID), r.page(d)
	s.Environment, s.Production, s.Transient = environment("")
	s.EnvironmentURL, s.GitHubDeploymentID = r.opts.LiveURL(p), githubID
	if githubID == 0 {
		s.GitHubDeploymentID = d.GitHubDeploymentID
	}
	return []outbox.Message{message(KindDeployment, deploymentKey(p.ID, s.Environment), s)}
}

// AlreadyDeploying returns the report to the GitHub Deployment githubID, asked for on GitHub, that
// deployment d of p, of the same commit, is already queued or running, so that it is not built
// twice: the GitHub Deployment becomes inactive, its log link pointing at d.
func (r *Reporter) AlreadyDeploying(p *store.Project, d *store.Deployment, githubID int64) []outbox.Message {
	if !r.reports(p, KindDeployment) {
		return nil
	}
	s := base(p, d)
	s.State, s.Description, s.LogURL = "inactive", fmt.Sprintf("Already deploying this commit: deployment #%d", d.ID), r.page(d)
	s.Environment, s.Production, s.Transient = environment("")
	s.GitHubDeploymentID = githubID
	return []outbox.Message{message(KindDeployment, deploymentKey(p.ID, s.Environment), s)}
}
