package store

import (
	"errors"
	"slices"
	"testing"
)

func TestDomains(t *testing.T) {
	s, _ := openTest(t)
	blog, docs := newProject(t, s, "blog"), newProject(t, s, "docs")
	p, err := s.AddDomain(blog.ID, "blog.example.com")
	if err != nil || !slices.Equal(p.Domains, []string{"blog.example.com"}) {
		t.Fatalf("AddDomain: %v, domains %v", err, p)
	}
	if _, err := s.AddDomain(blog.ID, "www.example.org"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{blog.ID, docs.ID} {
		if _, err := s.AddDomain(id, "blog.example.com"); !errors.Is(err, ErrConflict) {
			t.Fatalf("the same domain again for project %d: %v, want a conflict", id, err)
		}
	}
	if _, err := s.AddDomain(99, "x.example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a domain of a missing project: %v", err)
	}
	if got, err := s.ProjectByDomain("blog.example.com"); err != nil || got.ID != blog.ID {
		t.Fatalf("ProjectByDomain: %v, %v", got, err)
	}
	if _, err := s.RemoveDomain(docs.ID, "blog.example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing another project's domain: %v", err)
	}
	p, err = s.RemoveDomain(blog.ID, "blog.example.com")
	if err != nil || !slices.Equal(p.Domains, []string{"www.example.org"}) {
		t.Fatalf("RemoveDomain: %v, %v", err, p)
	}
	if _, err := s.ProjectByDomain("blog.example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a removed domain still finds %v", err)
	}
	if _, err := s.AddDomain(docs.ID, "blog.example.com"); err != nil {
		t.Fatalf("a removed domain is free again: %v", err)
	}
	if _, err := s.DeleteProject(blog.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ProjectByDomain("www.example.org"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a deleted project's domain still finds %v", err)
	}
	if _, err := s.AddDomain(docs.ID, "www.example.org"); err != nil {
		t.Fatalf("a deleted project's domain is free again: %v", err)
	}
}
