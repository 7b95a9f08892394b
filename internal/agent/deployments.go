package agent

import (
	"net/http"
	"strconv"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/domain"
	"github.com/miaobu/miaobu/internal/store"
)

// projectsByID returns every project keyed by id, for views of many deployments.
func (a *Agent) projectsByID() (map[int64]*store.Project, error) {
	projects, err := a.domain.Projects()
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]*store.Project, len(projects))
	for _, p := range projects {
		byID[p.ID] = p
	}
	return byID, nil
}

// listQuery reads the ?project_id= (an id or a slug; empty for every project) and ?limit= (default
// 20) of a history listing.
func listQuery(r *http.Request) (project string, limit int, err error) {
	q := r.URL.Query()
	limit = 20
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return "", 0, domain.Errorf(domain.Invalid, "limit must be a positive number")
		}
		limit = n
	}
	return q.Get("project_id"), limit, nil
}

func (a *Agent) listDeployments(w http.ResponseWriter, r *http.Request) error {
	project, limit, err := listQuery(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	deployments, err := a.domain.Deployments(project, limit, domain.DeploymentFilter{Environment: q.Get("environment"), Alias: q.Get("alias")})
	if err != nil {
		return err
	}
	projects, err := a.projectsByID()
	if err != nil {
		return err
	}
	out := make([]api.Deployment, 0, len(deployments))
	for _, d := range deployments {
		out = append(out, a.deploymentView(d, projects[d.ProjectID]))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *Agent) getDeployment(w http.ResponseWriter, r *http.Request) error {
	d, p, err := a.domain.Deployment(r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.deploymentView(d, p))
}

// deploy queues a manual deployment of a commit, or of the tip of the project's branch.
func (a *Agent) deploy(w http.ResponseWriter, r *http.Request) error {
	var req api.DeployRequest
	if err := decodeOptionalBody(w, r, &req); err != nil {
		return err
	}
	d, p, err := a.domain.Deploy(r.Context(), r.PathValue("id"), req.CommitSHA, req.Branch, req.NoCache)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, a.deploymentView(d, p))
}

func (a *Agent) cancelDeployment(w http.ResponseWriter, r *http.Request) error {
	d, p, err := a.domain.Cancel(r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.deploymentView(d, p))
}

// rollback makes an earlier successful deployment live at once; by default the one before the live one.
func (a *Agent) rollback(w http.ResponseWriter, r *http.Request) error {
	var req api.RollbackRequest
	if err := decodeOptionalBody(w, r, &req); err != nil {
		return err
	}
	d, p, err := a.domain.Rollback(r.Context(), r.PathValue("id"), req.DeploymentID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.deploymentView(d, p))
}
