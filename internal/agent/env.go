package agent

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/pipeline"
	"github.com/miaobu/miaobu/internal/store"
)

// envName is what a build variable's name may look like: a portable shell variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// envView lists a project's variable names, sorted, never their values.
func envView(p *store.Project) []api.EnvVar {
	out := make([]api.EnvVar, 0, len(p.Env))
	for name := range p.Env {
		out = append(out, api.EnvVar{Name: name})
	}
	slices.SortFunc(out, func(a, b api.EnvVar) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (a *Agent) listEnv(w http.ResponseWriter, r *http.Request) {
	if p, ok := a.lookupProject(w, r); ok {
		writeJSON(w, http.StatusOK, envView(p))
	}
}

// setEnv sets the variables of the body (an object of names to values), keeping the others.
func (a *Agent) setEnv(w http.ResponseWriter, r *http.Request) {
	p, ok := a.lookupProject(w, r)
	if !ok {
		return
	}
	var vars map[string]string
	if !decodeBody(w, r, &vars) {
		return
	}
	if len(vars) == 0 {
		writeError(w, http.StatusBadRequest, "Give at least one variable: an object of names to values")
		return
	}
	for name, value := range vars {
		switch {
		case !envName.MatchString(name):
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%q is not a valid variable name (letters, digits and _, not starting with a digit)", name))
			return
		case pipeline.ReservedEnv(name):
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s is set by the build itself and cannot be changed", name))
			return
		case strings.ContainsRune(value, 0):
			writeError(w, http.StatusBadRequest, fmt.Sprintf("The value of %s contains a NUL byte", name))
			return
		}
	}
	updated, err := a.store.UpdateProject(p.ID, func(p *store.Project) error {
		if p.Env == nil {
			p.Env = map[string]string{}
		}
		for name, value := range vars {
			p.Env[name] = value
		}
		return nil
	})
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	slices.Sort(names)
	a.log.Info("build variables set", "project", p.ID, "names", strings.Join(names, ","))
	writeJSON(w, http.StatusOK, envView(updated))
}

func (a *Agent) unsetEnv(w http.ResponseWriter, r *http.Request) {
	p, ok := a.lookupProject(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	if _, set := p.Env[name]; !set {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Variable %s is not set in project %s", name, p.Slug))
		return
	}
	updated, err := a.store.UpdateProject(p.ID, func(p *store.Project) error {
		delete(p.Env, name)
		return nil
	})
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	a.log.Info("build variable unset", "project", p.ID, "name", name)
	writeJSON(w, http.StatusOK, envView(updated))
}
