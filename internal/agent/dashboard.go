package agent

import (
	"net/http"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/store"
)

// dashboardViews gives the dashboard the API's views of the agent's records.
type dashboardViews struct{ a *Agent }

func (v dashboardViews) Project(p *store.Project) api.Project { return v.a.projectView(p) }
func (v dashboardViews) Deployment(d *store.Deployment, p *store.Project) api.Deployment {
	return v.a.deploymentView(d, p)
}
func (v dashboardViews) Preview(p *store.Project, pv *store.Preview) api.Preview {
	return v.a.previewView(p, pv)
}
func (v dashboardViews) Status() (api.Status, error) { return v.a.statusView() }

// createLoginCode answers POST /api/v1/dashboard/login-codes (`miaobu dashboard`) with a one-time
// code and the sign-in link it goes in.
func (a *Agent) createLoginCode(w http.ResponseWriter, r *http.Request) error {
	code, url, expires, err := a.dashboard.IssueLoginCode()
	if err != nil {
		return err
	}
	a.log.Info("dashboard login code issued", "expires_at", expires)
	return writeJSON(w, http.StatusCreated, api.LoginCode{Code: code, URL: url, ExpiresAt: expires})
}
