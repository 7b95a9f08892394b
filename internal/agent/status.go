package agent

import (
	"net/http"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/domain"
)

// sandboxName says what isolates builds: bwrap, or none.
func (a *Agent) sandboxName() string {
	if a.builder != nil && a.builder.Bwrap != "" {
		return "bwrap"
	}
	return "none"
}

// status answers GET /api/v1/status.
func (a *Agent) status(w http.ResponseWriter, r *http.Request) error {
	out, err := a.statusView()
	if err != nil && a.cluster != nil {
		// Without a quorum nothing can be read: the cluster's own state is still worth showing.
		return writeJSON(w, http.StatusOK, api.Status{Status: "no quorum", Version: a.version,
			PublicURL: a.cfg.PublicURL, StartedAt: a.started.UTC(), Sandbox: a.sandboxName(), Projects: []api.ProjectStatus{},
			Queue: api.QueueStatus{Running: a.builds.running(), Concurrency: a.cfg.Build.Concurrency}, Certificates: []api.Certificate{},
			Cluster: a.clusterView()})
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// statusView is the agent's status: health, version, queue, sandbox and every project's state.
func (a *Agent) statusView() (api.Status, error) {
	queued, err := a.store.QueueDepth()
	if err != nil {
		return api.Status{}, err
	}
	projects, err := a.domain.Projects()
	if err != nil {
		return api.Status{}, err
	}
	out := api.Status{Status: "ok", Version: a.version, PublicURL: a.cfg.PublicURL, StartedAt: a.started.UTC(),
		Sandbox: a.sandboxName(), Projects: make([]api.ProjectStatus, 0, len(projects)),
		Queue:        api.QueueStatus{Queued: queued, Running: a.builds.running(), Concurrency: a.cfg.Build.Concurrency},
		Certificates: []api.Certificate{}, Cluster: a.clusterView()}
	if certs := a.certs.Load(); certs != nil {
		out.Certificates = certs.list(a.cfg.DataDir)
	}
	for _, p := range projects {
		ps := api.ProjectStatus{ID: p.ID, Slug: p.Slug, SiteURL: a.domain.LiveURL(p), WebhookConfigured: p.WebhookConfigured(),
			WebhookEventsMissing: domain.WebhookEventsMissing(p), CacheBytes: a.cacheBytes(p),
			Trigger: p.TriggerMode, PollStatus: a.pollStatus(p.ID)}
		if a.poller != nil {
			if message, retryAt, failed := a.poller.ReconcileError(p.ID); failed {
				ps.LastReconcileError, ps.ReconcileRetryAt = &message, &retryAt
			}
		}
		recent, err := a.store.Deployments(p.ID, 1)
		if err != nil {
			return api.Status{}, err
		}
		if len(recent) == 1 {
			last := a.deploymentView(recent[0], p)
			ps.Last = &last
		}
		if p.ActiveDeploymentID != 0 {
			if d, err := a.store.Deployment(p.ActiveDeploymentID); err == nil {
				live := a.deploymentView(d, p)
				ps.Live = &live
			}
		}
		previews, err := a.store.Previews(p.ID)
		if err != nil {
			return api.Status{}, err
		}
		for _, pv := range previews {
			if !pv.Removed() {
				ps.Previews++
			}
		}
		out.Projects = append(out.Projects, ps)
	}
	return out, nil
}
