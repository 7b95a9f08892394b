package agent

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"time"

	"github.com/miaobu/miaobu/internal/domain"
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
	if a.cluster != nil {
		if _, err := os.Stat(a.domain.LogPath(d.ID)); errors.Is(err, os.ErrNotExist) {
			// Built by another node, or not built yet: the log is the copy the building node shares.
			return a.sharedLog(w, r, d.ID, follow == "1" || follow == "true")
		}
	}
	if follow != "1" && follow != "true" {
		f, err := os.Open(a.domain.LogPath(d.ID))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
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

// sharedLog answers a log request from the copy of the log that the node building the deployment
// shares with the cluster, at each step of the build and at its end; following, it sends what
// each new copy adds until the deployment has ended.
func (a *Agent) sharedLog(w http.ResponseWriter, r *http.Request, id int64, follow bool) error {
	sent := 0
	if follow {
		w.WriteHeader(http.StatusOK)
	}
	rc := http.NewResponseController(w)
	for {
		current, err := a.store.Deployment(id)
		ended := err != nil || current.Terminal()
		data, err := a.cluster.Log(r.Context(), id)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if len(data) > sent {
			if _, err := w.Write(data[sent:]); err != nil {
				return nil
			}
			sent = len(data)
			_ = rc.Flush()
		}
		if !follow || ended {
			return nil
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-a.stopping:
			return nil
		case <-time.After(domain.LogPollInterval):
		}
	}
}
