package github

import (
	"context"
	"fmt"
	"unicode/utf8"

	gogithub "github.com/google/go-github/v60/github"
)

// MaxDescription is the most characters GitHub accepts in the description of a commit status or a
// deployment status; a longer one is refused with 422.
const MaxDescription = 140

// truncate returns s cut to at most MaxDescription characters (runes), ending in "…" when it was cut.
func truncate(s string) string {
	if utf8.RuneCountInString(s) <= MaxDescription {
		return s
	}
	return string([]rune(s)[:MaxDescription-1]) + "…"
}

// Refusal messages of the reports, naming the permission a token needs: a 403 or 404 on these calls
// means the token may not make them, or cannot see the repository.
const (
	statusRefused     = "GitHub refused to set a commit status on %s: the token needs the repo:status scope (classic token; repo includes it) or Commit statuses: write (fine-grained token)"
	deploymentRefused = "GitHub refused to report a deployment on %s: the token needs the repo_deployment scope (classic token; repo includes it) or Deployments: write (fine-grained token)"
)

// CommitStatus is a status of a commit, shown as a check on its pull requests.
type CommitStatus struct {
	// State is pending, success, failure or error.
	State string
	// Description is cut to MaxDescription characters.
	Description string
	// TargetURL is where the check's Details link leads; empty for none.
	TargetURL string
	// Context names the check, such as miaobu/site.
	Context string
}

// CreateStatus sets a status of commit sha in owner/repo (POST /repos/{o}/{r}/statuses/{sha}).
func (c *Client) CreateStatus(ctx context.Context, owner, repo, sha string, s CommitStatus) error {
	if err := c.check(owner, repo); err != nil {
		return err
	}
	if !ValidSHA(sha) {
		return fmt.Errorf("%q is not a full commit SHA", sha)
	}
	status := &gogithub.RepoStatus{State: gogithub.String(s.State), Description: gogithub.String(truncate(s.Description)),
		Context: gogithub.String(s.Context)}
	if s.TargetURL != "" {
		status.TargetURL = gogithub.String(s.TargetURL)
	}
	_, resp, err := c.gh.Repositories.CreateStatus(ctx, owner, repo, sha, status)
	if err != nil {
		refused := fmt.Sprintf(statusRefused, owner+"/"+repo)
		return c.apiError(err, resp, refused, refused)
	}
	return nil
}

// Deployment is a deployment to record on GitHub: the Environments page and a pull request's
// "View deployment" button show it.
type Deployment struct {
	// Ref is the full SHA of the deployed commit.
	Ref string
	// Environment is production, or preview/<alias>.
	Environment string
	// Description is cut to MaxDescription characters.
	Description string
	// Production and Transient are GitHub's production_environment and transient_environment.
	Production, Transient bool
	// MiaobuID is the miaobu deployment, carried in the payload so that miaobu ignores the
	// deployment event GitHub sends back for it.
	MiaobuID int64
}

// CreateDeployment records d on owner/repo (POST /repos/{o}/{r}/deployments) and returns GitHub's id
// of it. It never merges the default branch into the ref and requires no other check to pass first.
func (c *Client) CreateDeployment(ctx context.Context, owner, repo string, d Deployment) (int64, error) {
	if err := c.check(owner, repo); err != nil {
		return 0, err
	}
	created, resp, err := c.gh.Repositories.CreateDeployment(ctx, owner, repo, &gogithub.DeploymentRequest{
		Ref:                   gogithub.String(d.Ref),
		Environment:           gogithub.String(d.Environment),
		Description:           gogithub.String(truncate(d.Description)),
		AutoMerge:             gogithub.Bool(false),
		RequiredContexts:      &[]string{},
		TransientEnvironment:  gogithub.Bool(d.Transient),
		ProductionEnvironment: gogithub.Bool(d.Production),
		Payload:               map[string]any{PayloadKey: map[string]int64{"deployment_id": d.MiaobuID}},
	})
	if err != nil {
		refused := fmt.Sprintf(deploymentRefused, owner+"/"+repo)
		return 0, c.apiError(err, resp, refused, refused)
	}
	if created.GetID() == 0 {
		return 0, &Error{Kind: ErrUnavailable, StatusCode: resp.StatusCode,
			Message: fmt.Sprintf("GitHub answered no id for the deployment it created on %s/%s", owner, repo)}
	}
	return created.GetID(), nil
}

// DeploymentStatus is a state of a GitHub deployment.
type DeploymentStatus struct {
	// State is in_progress, success, failure, error or inactive.
	State string
	// Description is cut to MaxDescription characters.
	Description string
	// EnvironmentURL is where the deployed site is, the target of "View deployment"; empty for none.
	EnvironmentURL string
	// LogURL is where the deployment's log is shown; empty for none.
	LogURL string
}

// FindDeployment returns the id of the deployment of commit sha to environment in owner/repo that
// carries miaobu deployment miaobuID in its payload (GET /repos/{o}/{r}/deployments?sha=&environment=),
// 0 when there is none: a creation whose answer was lost may have made it.
func (c *Client) FindDeployment(ctx context.Context, owner, repo, sha, environment string, miaobuID int64) (int64, error) {
	if err := c.check(owner, repo); err != nil {
		return 0, err
	}
	// Newest first: one made by a lost answer is among the latest of its commit and environment.
	found, resp, err := c.gh.Repositories.ListDeployments(ctx, owner, repo, &gogithub.DeploymentsListOptions{SHA: sha,
		Environment: environment, ListOptions: gogithub.ListOptions{PerPage: 100}})
	if err != nil {
		refused := fmt.Sprintf(deploymentRefused, owner+"/"+repo)
		return 0, c.apiError(err, resp, refused, refused)
	}
	for _, d := range found {
		if id, ok := payloadDeploymentID(d.Payload); ok && id == miaobuID {
			return d.GetID(), nil
		}
	}
	return 0, nil
}

// CreateDeploymentStatus adds s to deployment id of owner/repo (POST
// /repos/{o}/{r}/deployments/{id}/statuses). A 404 is an ErrNotFound that says the deployment is
// gone: deleted on GitHub.
func (c *Client) CreateDeploymentStatus(ctx context.Context, owner, repo string, id int64, s DeploymentStatus) error {
	if err := c.check(owner, repo); err != nil {
		return err
	}
	req := &gogithub.DeploymentStatusRequest{State: gogithub.String(s.State),
		Description: gogithub.String(truncate(s.Description))}
	if s.EnvironmentURL != "" {
		req.EnvironmentURL = gogithub.String(s.EnvironmentURL)
	}
	if s.LogURL != "" {
		req.LogURL = gogithub.String(s.LogURL)
	}
	_, resp, err := c.gh.Repositories.CreateDeploymentStatus(ctx, owner, repo, id, req)
	if err != nil {
		return c.apiError(err, resp, fmt.Sprintf("GitHub deployment %d of %s/%s no longer exists (deleted on GitHub)", id, owner, repo),
			fmt.Sprintf(deploymentRefused, owner+"/"+repo))
	}
	return nil
}
