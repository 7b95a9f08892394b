package store

import (
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// AddDomain attaches the custom domain name, already checked and in lower-case ASCII, to project
// id; a name that a project already has is a *ConflictError.
func (s *Store) AddDomain(id int64, name string) (*Project, error) {
	return s.changeDomains(id, func(p *Project, domains *bolt.Bucket) error {
		if owner := domains.Get([]byte(name)); owner != nil {
			if btoi(owner) == id {
				return &ConflictError{Message: fmt.Sprintf("%s is already a domain of %s", name, p.Slug)}
			}
			return &ConflictError{Message: fmt.Sprintf("%s is already a domain of project %d", name, btoi(owner))}
		}
		p.Domains = append(p.Domains, name)
		return domains.Put([]byte(name), itob(id))
	})
}

// RemoveDomain detaches the custom domain name from project id; ErrNotFound when the project does
// not have it.
func (s *Store) RemoveDomain(id int64, name string) (*Project, error) {
	return s.changeDomains(id, func(p *Project, domains *bolt.Bucket) error {
		i := slices.Index(p.Domains, name)
		if i < 0 {
			return ErrNotFound
		}
		p.Domains = slices.Delete(p.Domains, i, i+1)
		return domains.Delete([]byte(name))
	})
}

// changeDomains applies change to project id and the domains index in one transaction, and stores
// the project.
func (s *Store) changeDomains(id int64, change func(p *Project, domains *bolt.Bucket) error) (*Project, error) {
	var p Project
	err := s.db.Update(func(tx *bolt.Tx) error {
		projects := bucket(tx, projectsBucket)
		if err := get(projects, itob(id), &p); err != nil {
			return err
		}
		if err := change(&p, bucket(tx, domainsBucket)); err != nil {
			return err
		}
		return put(projects, itob(id), &p)
	})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// ProjectByDomain returns the project that has the custom domain name (lower-case ASCII).
func (s *Store) ProjectByDomain(name string) (*Project, error) {
	return s.projectByIndex(domainsBucket, name)
}
