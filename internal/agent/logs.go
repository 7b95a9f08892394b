package agent

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/miaobu/miaobu/internal/store"
)

// logPollInterval is how often a followed log is checked for new lines.
const logPollInterval = 200 * time.Millisecond

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
	f, err := os.Open(a.domain.LogPath(d.ID))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if f != nil {
		defer f.Close()
	}
	if follow != "1" && follow != "true" {
		if f != nil {
			_, _ = io.Copy(w, f)
		}
		return nil
	}
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	for {
		// The status is read before the file: the log is complete once the deployment has ended.
		current, err := a.store.Deployment(d.ID)
		ended := err != nil || current.Terminal()
		if f == nil {
			if f, err = os.Open(a.domain.LogPath(d.ID)); err == nil {
				defer f.Close()
			}
		}
		if f != nil {
			if _, err := io.Copy(w, f); err != nil {
				return nil
			}
			if rc.Flush() != nil {
				return nil
			}
		}
		if ended || errors.Is(err, store.ErrNotFound) {
			return nil
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-a.stopping:
			return nil
		case <-time.After(logPollInterval):
		}
	}
}
