package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/store"
)

// deploymentView turns a stored deployment into its API form.
func (a *Agent) deploymentView(d *store.Deployment, p *store.Project) api.Deployment {
	v := api.Deployment{
		ID: d.ID, ProjectID: d.ProjectID, CommitSHA: d.CommitSHA, CommitMessage: d.CommitMessage,
		CommitAuthor: d.CommitAuthor, Branch: d.Branch, Trigger: d.Trigger, Status: d.Status,
		ErrorMessage: d.ErrorMessage, CreatedAt: d.CreatedAt, StartedAt: d.StartedAt, FinishedAt: d.FinishedAt,
		BuildTimeSeconds: d.BuildTimeSeconds, Detection: detectionView(d.Detected),
	}
	if p != nil {
		v.Live = p.ActiveDeploymentID == d.ID
		if d.Status == api.StatusDeployed {
			v.URL = a.deploymentURL(p, d)
		}
	}
	return v
}

// deploymentURL is where a successful deployment can be seen: its permanent preview on the local
// target, the live site on the others.
func (a *Agent) deploymentURL(p *store.Project, d *store.Deployment) string {
	if p.Target == "local" {
		return a.siteURL(p.Slug + "--" + strconv.FormatInt(d.ID, 10))
	}
	return a.liveURL(p)
}

// projectsByID returns every project keyed by id, for views of many deployments.
func (a *Agent) projectsByID() (map[int64]*store.Project, error) {
	projects, err := a.store.Projects()
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]*store.Project, len(projects))
	for _, p := range projects {
		byID[p.ID] = p
	}
	return byID, nil
}

// listQuery reads the ?project_id= (an id or a slug; 0 when absent) and ?limit= (default 20) of a
// history listing, answering the error itself and returning false when either is wrong.
func (a *Agent) listQuery(w http.ResponseWriter, r *http.Request) (projectID int64, limit int, ok bool) {
	q := r.URL.Query()
	limit = 20
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "limit must be a positive number")
			return 0, 0, false
		}
		limit = n
	}
	if s := q.Get("project_id"); s != "" {
		r.SetPathValue("id", s)
		p, ok := a.lookupProject(w, r)
		if !ok {
			return 0, 0, false
		}
		projectID = p.ID
	}
	return projectID, limit, true
}

func (a *Agent) listDeployments(w http.ResponseWriter, r *http.Request) {
	projectID, limit, ok := a.listQuery(w, r)
	if !ok {
		return
	}
	deployments, err := a.store.Deployments(projectID, limit)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	projects, err := a.projectsByID()
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	out := make([]api.Deployment, 0, len(deployments))
	for _, d := range deployments {
		out = append(out, a.deploymentView(d, projects[d.ProjectID]))
	}
	writeJSON(w, http.StatusOK, out)
}

// lookupDeployment finds the deployment named by the {id} path value and its project.
func (a *Agent) lookupDeployment(w http.ResponseWriter, r *http.Request) (*store.Deployment, *store.Project, bool) {
	ref := r.PathValue("id")
	id, err := strconv.ParseInt(ref, 10, 64)
	var d *store.Deployment
	if err == nil {
		d, err = a.store.Deployment(id)
	}
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, strconv.ErrSyntax) || errors.Is(err, strconv.ErrRange) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("Deployment %s not found", ref))
		} else {
			a.internalError(w, r, err)
		}
		return nil, nil, false
	}
	p, err := a.store.Project(d.ProjectID)
	if err != nil {
		a.storeError(w, r, err)
		return nil, nil, false
	}
	return d, p, true
}

func (a *Agent) getDeployment(w http.ResponseWriter, r *http.Request) {
	if d, p, ok := a.lookupDeployment(w, r); ok {
		writeJSON(w, http.StatusOK, a.deploymentView(d, p))
	}
}

// deploy queues a manual deployment of a commit, or of the tip of the project's branch.
func (a *Agent) deploy(w http.ResponseWriter, r *http.Request) {
	p, ok := a.lookupProject(w, r)
	if !ok {
		return
	}
	var req api.DeployRequest
	if r.ContentLength != 0 && !decodeBody(w, r, &req) {
		return
	}
	branch := req.Branch
	if branch == "" {
		branch = p.DefaultBranch
	} else if err := validateBranch(branch); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	sha := strings.ToLower(req.CommitSHA)
	if sha != "" && !github.ValidSHA(sha) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%q is not a full commit SHA (40 hex characters)", req.CommitSHA))
		return
	}
	d := &store.Deployment{ProjectID: p.ID, CommitSHA: sha, Branch: branch, Trigger: api.TriggerManual, NoCache: req.NoCache}
	if sha == "" && p.Repo != "" {
		owner, name := splitRepo(p.Repo)
		tip, err := a.github.BranchTip(r.Context(), owner, name, branch)
		if err != nil {
			a.githubError(w, r, "", err)
			return
		}
		d.CommitSHA, d.CommitMessage, d.CommitAuthor = tip.SHA, tip.Message, tip.Author
	} else if sha == "" {
		var err error
		if d.CommitSHA, err = branchTip(r.Context(), p.RepoURL, branch); err != nil {
			writeError(w, http.StatusBadGateway, err.Error())
			return
		}
	}
	if err := a.store.CreateDeployment(d); err != nil {
		a.storeError(w, r, err)
		return
	}
	a.wakeWorkers()
	a.log.Info("deployment queued", "project", p.ID, "deployment", d.ID, "commit", d.CommitSHA[:7], "trigger", d.Trigger)
	writeJSON(w, http.StatusCreated, a.deploymentView(d, p))
}

// branchTip resolves a branch of a git remote to its commit with `git ls-remote`.
func branchTip(ctx context.Context, repoURL, branch string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", "ls-remote", "--", repoURL, "refs/heads/"+branch)
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_SSH_COMMAND=ssh -o BatchMode=yes")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("could not read branch %s of %s: git ls-remote failed (%v)", branch, repoURL, err)
	}
	sha, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\t")
	if !github.ValidSHA(sha) {
		return "", fmt.Errorf("branch %s not found in %s", branch, repoURL)
	}
	return sha, nil
}

func (a *Agent) cancelDeployment(w http.ResponseWriter, r *http.Request) {
	d, p, ok := a.lookupDeployment(w, r)
	if !ok {
		return
	}
	cancelled, err := a.store.Cancel(d.ID)
	if errors.Is(err, store.ErrFinished) {
		writeError(w, http.StatusConflict, fmt.Sprintf("Deployment %d has already finished (%s)", d.ID, d.Status))
		return
	}
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	a.stopBuild(d.ID)
	a.log.Info("deployment cancelled", "project", p.ID, "deployment", d.ID)
	writeJSON(w, http.StatusOK, a.deploymentView(cancelled, p))
}

// rollback makes an earlier successful deployment live at once; by default the one before the live one.
func (a *Agent) rollback(w http.ResponseWriter, r *http.Request) {
	p, ok := a.lookupProject(w, r)
	if !ok {
		return
	}
	var req api.RollbackRequest
	if r.ContentLength != 0 && !decodeBody(w, r, &req) {
		return
	}
	target := req.DeploymentID
	if target == 0 {
		history, err := a.store.Deployments(p.ID, 0)
		if err != nil {
			a.storeError(w, r, err)
			return
		}
		for _, d := range history {
			if d.Status == api.StatusDeployed && d.ID != p.ActiveDeploymentID && (p.ActiveDeploymentID == 0 || d.ID < p.ActiveDeploymentID) {
				target = d.ID
				break
			}
		}
		if target == 0 {
			writeError(w, http.StatusConflict, fmt.Sprintf("Project %s has no earlier successful deployment to roll back to", p.Slug))
			return
		}
	}
	d, err := a.store.Deployment(target)
	if errors.Is(err, store.ErrNotFound) || (err == nil && d.ProjectID != p.ID) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Deployment %d not found in project %s", target, p.Slug))
		return
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	if d.Status != api.StatusDeployed {
		writeError(w, http.StatusConflict, fmt.Sprintf("Deployment %d is %s: only successful deployments can go live", d.ID, d.Status))
		return
	}
	if d.ID == p.ActiveDeploymentID {
		writeError(w, http.StatusConflict, fmt.Sprintf("Deployment %d is already live", d.ID))
		return
	}
	if err := a.goLive(r.Context(), p, d); err != nil {
		writeError(w, http.StatusBadGateway, "Rollback failed: "+err.Error())
		return
	}
	if p, err = a.store.Project(p.ID); err != nil {
		a.internalError(w, r, err)
		return
	}
	a.log.Info("rolled back", "project", p.ID, "deployment", d.ID)
	writeJSON(w, http.StatusOK, a.deploymentView(d, p))
}
