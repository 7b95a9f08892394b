package domain

import (
	"fmt"

	"github.com/miaobu/miaobu/internal/store"
)

// ClearCache removes the build cache of the project ref names, so its next build starts from
// nothing, and returns the project and the bytes the cache took.
func (s *Service) ClearCache(ref string) (*store.Project, int64, error) {
	p, err := s.Project(ref)
	if err != nil {
		return nil, 0, err
	}
	freed, err := s.caches.Clear(p.ID)
	if err != nil {
		return nil, 0, fmt.Errorf("clearing the build cache of project %s: %w", p.Slug, err)
	}
	s.log.Info("build cache cleared", "project", p.ID, "bytes", freed)
	return p, freed, nil
}
