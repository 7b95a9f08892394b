package domain

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/miaobu/miaobu/internal/pipeline"
	"github.com/miaobu/miaobu/internal/store"
)

// envName is what a build variable's name may look like: a portable shell variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// EnvNames returns the names of a project's build variables, sorted; values never leave the agent.
func EnvNames(p *store.Project) []string {
	names := make([]string, 0, len(p.Env))
	for name := range p.Env {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// SetEnv sets build variables of the project ref names, keeping the others, and returns the project.
func (s *Service) SetEnv(ref string, vars map[string]string) (*store.Project, error) {
	p, err := s.Project(ref)
	if err != nil {
		return nil, err
	}
	if len(vars) == 0 {
		return nil, Errorf(Invalid, "Give at least one variable: an object of names to values")
	}
	for name, value := range vars {
		switch {
		case !envName.MatchString(name):
			return nil, Errorf(Invalid, "%q is not a valid variable name (letters, digits and _, not starting with a digit)", name)
		case pipeline.ReservedEnv(name):
			return nil, Errorf(Invalid, "%s is set by the build itself and cannot be changed", name)
		case strings.ContainsRune(value, 0):
			return nil, Errorf(Invalid, "The value of %s contains a NUL byte", name)
		}
	}
	updated, err := s.store.UpdateProject(p.ID, func(p *store.Project) error {
		if p.Env == nil {
			p.Env = map[string]string{}
		}
		for name, value := range vars {
			p.Env[name] = value
		}
		return nil
	})
	if err != nil {
		return nil, storeError(err, fmt.Sprintf("Project %s not found", ref))
	}
	s.log.Info("build variables set", "project", p.ID, "names", strings.Join(EnvNames(&store.Project{Env: vars}), ","))
	return updated, nil
}

// UnsetEnv removes a build variable of the project ref names and returns the project.
func (s *Service) UnsetEnv(ref, name string) (*store.Project, error) {
	p, err := s.Project(ref)
	if err != nil {
		return nil, err
	}
	if _, set := p.Env[name]; !set {
		return nil, Errorf(NotFound, "Variable %s is not set in project %s", name, p.Slug)
	}
	updated, err := s.store.UpdateProject(p.ID, func(p *store.Project) error {
		delete(p.Env, name)
		return nil
	})
	if err != nil {
		return nil, storeError(err, fmt.Sprintf("Project %s not found", ref))
	}
	s.log.Info("build variable unset", "project", p.ID, "name", name)
	return updated, nil
}
