package domain

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/miaobu/miaobu/internal/store"
)

// SweepLocalFiles removes from this agent's disk the files of what the store no longer has: the
// sites and build caches of deleted projects, and the outputs and logs of deleted deployments. On
// a cluster, a node removes only its own copies when it deletes or prunes; the copies other nodes
// built or fetched go here. Nothing is removed on a store error (a cluster without quorum), only
// on a store that says it has no such project or deployment.
func (s *Service) SweepLocalFiles() error {
	// gone reports whether a lookup's error says the store has no such thing.
	gone := func(err error) (bool, error) {
		if errors.Is(err, store.ErrNotFound) {
			return true, nil
		}
		return false, err
	}
	var remove []string
	sites := filepath.Join(s.cfg.DataDir, "sites")
	slugs, err := readDirIfAny(sites)
	if err != nil {
		return err
	}
	for _, e := range slugs {
		p, err := s.store.ProjectBySlug(e.Name())
		if isGone, err := gone(err); err != nil {
			return err
		} else if isGone {
			remove = append(remove, filepath.Join(sites, e.Name()))
			continue
		}
		outputs, err := readDirIfAny(filepath.Join(sites, e.Name()))
		if err != nil {
			return err
		}
		for _, o := range outputs {
			id, err := strconv.ParseInt(o.Name(), 10, 64)
			if err != nil {
				continue // a copy or fetch in progress, which cleans up after itself
			}
			d, err := s.store.Deployment(id)
			if isGone, err := gone(err); err != nil {
				return err
			} else if isGone || d.ProjectID != p.ID {
				remove = append(remove, filepath.Join(sites, e.Name(), o.Name()))
			}
		}
	}
	logs, err := readDirIfAny(filepath.Join(s.cfg.DataDir, "logs"))
	if err != nil {
		return err
	}
	for _, l := range logs {
		name, isLog := strings.CutSuffix(l.Name(), ".log")
		id, err := strconv.ParseInt(name, 10, 64)
		if err != nil || !isLog {
			continue
		}
		if _, err := s.store.Deployment(id); err != nil {
			if isGone, err := gone(err); err != nil {
				return err
			} else if isGone {
				remove = append(remove, s.LogPath(id))
			}
		}
	}
	var errs []error
	for _, path := range remove {
		errs = append(errs, os.RemoveAll(path))
	}
	if len(remove) > 0 {
		s.log.Info("removed the local files of deleted projects and deployments", "count", len(remove))
	}
	_, err = s.caches.ClearGone(func(id int64) bool {
		_, err := s.store.Project(id)
		return !errors.Is(err, store.ErrNotFound)
	})
	return errors.Join(append(errs, err)...)
}

// readDirIfAny returns the directories and files in dir, none when it does not exist.
func readDirIfAny(dir string) ([]os.DirEntry, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return entries, err
}
