package agent

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"

	"github.com/miaobu/miaobu/internal/store"
)

// deploymentLogs answers GET /api/v1/deployments/{id}/logs with the build log as text; with
// ?follow=1 it streams the log as it is written until the deployment ends.
func (a *Agent) deploymentLogs(w http.ResponseWriter, r *http.Request) error {
	d, _, err := a.domain.Deployment(r.PathValue("id"))
	if err != nil {
		return err
	}
	follow := r.URL.Query().Get("follow")
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if follow != "1" && follow != "true" {
		f, err := a.domain.OpenLog(r.Context(), d)
		if err != nil || f == nil {
			return err
		}
		defer f.Close()
		_, _ = io.Copy(w, f)
		return nil
	}
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	// Once the answer has begun, a failure (the client gone, the deployment deleted) can only end it.
	_ = a.domain.FollowLog(r.Context(), d.ID, 0, a.stopping, func(_ *store.Deployment, chunk []byte, _ bool) error {
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		return rc.Flush()
	})
	return nil
}

// sharedLog returns, on a cluster, the copy of deployment d's build log that the node building it
// shares (nil before it shared one), and false when this node builds or built d, or nobody does yet.
func (a *Agent) sharedLog(ctx context.Context, d *store.Deployment) ([]byte, bool, error) {
	if a.cluster == nil || d.Node == "" || d.Node == a.cluster.Node().Name() {
		return nil, false, nil
	}
	data, err := a.cluster.Log(ctx, d.ID)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, true, nil
	}
	return data, true, err
}
