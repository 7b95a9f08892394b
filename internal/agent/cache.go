package agent

import (
	"net/http"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/store"
)

// clearCache answers DELETE /api/v1/projects/{id}/cache: the project's next build starts from nothing.
func (a *Agent) clearCache(w http.ResponseWriter, r *http.Request) error {
	p, freed, err := a.domain.ClearCache(r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, api.CacheCleared{ProjectID: p.ID, FreedBytes: freed})
}

// cacheBytes is the disk space a project's build cache takes, 0 (logged) when it cannot be measured.
func (a *Agent) cacheBytes(p *store.Project) int64 {
	size, err := a.caches.Size(p.ID)
	if err != nil {
		a.log.Warn("measuring the build cache", "project", p.ID, "err", err)
	}
	return size
}
