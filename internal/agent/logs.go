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
func (a *Agent) deploymentLogs(w http.ResponseWriter, r *http.Request) {
	d, _, ok := a.lookupDeployment(w, r)
	if !ok {
		return
	}
	follow := r.URL.Query().Get("follow")
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	f, err := os.Open(a.logPath(d.ID))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		a.internalError(w, r, err)
		return
	}
	if f != nil {
		defer f.Close()
	}
	if follow != "1" && follow != "true" {
		if f != nil {
			_, _ = io.Copy(w, f)
		}
		return
	}
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	for {
		// The status is read before the file: the log is complete once the deployment has ended.
		current, err := a.store.Deployment(d.ID)
		ended := err != nil || current.Terminal()
		if f == nil {
			if f, err = os.Open(a.logPath(d.ID)); err == nil {
				defer f.Close()
			}
		}
		if f != nil {
			if _, err := io.Copy(w, f); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
		if ended || errors.Is(err, store.ErrNotFound) {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-a.stopping:
			return
		case <-time.After(logPollInterval):
		}
	}
}
