package agent

import (
	"io"
	"net/http"
	"strconv"

	"github.com/miaobu/miaobu/internal/store"
)

// backup streams a consistent copy of the store (`miaobu backup`).
func (a *Agent) backup(w http.ResponseWriter, r *http.Request) {
	started := false
	err := a.store.Backup(func(size int64) io.Writer {
		started = true
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		h.Set("Content-Disposition", `attachment; filename="`+store.FileName+`"`)
		return w
	})
	if err == nil {
		return
	}
	a.log.Warn("backup failed", "err", err)
	if !started {
		writeError(w, http.StatusInternalServerError, "backup failed: "+err.Error())
	}
	// Otherwise the answer is cut short of its Content-Length, and the client sees that it failed.
}
