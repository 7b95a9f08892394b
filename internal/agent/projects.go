package agent

import (
	"fmt"
	"net/http"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/domain"
)

func (a *Agent) listProjects(w http.ResponseWriter, r *http.Request) error {
	projects, err := a.domain.Projects()
	if err != nil {
		return err
	}
	out := make([]api.Project, 0, len(projects))
	for _, p := range projects {
		out = append(out, a.projectView(p))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *Agent) getProject(w http.ResponseWriter, r *http.Request) error {
	p, err := a.domain.Project(r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.projectView(p))
}

// createProject is `miaobu project add`: a project from any git URL, its hook set up by hand; the
// answer is the one that shows the webhook secret.
func (a *Agent) createProject(w http.ResponseWriter, r *http.Request) error {
	var req api.ProjectCreate
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	p, err := a.domain.CreateProject(r.Context(), domain.NewProject{Name: req.Name, RepoURL: req.RepoURL, Branch: req.Branch,
		Settings: domain.Settings{Target: &req.Target, BuildCommand: &req.BuildCommand, InstallCommand: &req.InstallCommand,
			OutputDirectory: &req.OutputDirectory, RootDirectory: &req.RootDirectory, Triggers: req.TriggerSettings}})
	if err != nil {
		return err
	}
	a.wakePoller()
	view := a.projectView(p)
	view.WebhookSecret = p.WebhookSecret
	return writeJSON(w, http.StatusCreated, view)
}

func (a *Agent) updateProject(w http.ResponseWriter, r *http.Request) error {
	var req api.ProjectUpdate
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	p, err := a.domain.UpdateProject(r.PathValue("id"), domain.ProjectChange{Branch: req.Branch,
		Settings: domain.Settings{Target: req.Target, Framework: req.Framework, BuildCommand: req.BuildCommand,
			InstallCommand: req.InstallCommand, OutputDirectory: req.OutputDirectory, RootDirectory: req.RootDirectory,
			Triggers: req.TriggerSettings}})
	if err != nil {
		return err
	}
	a.wakePoller()
	return writeJSON(w, http.StatusOK, a.projectView(p))
}

func (a *Agent) deleteProject(w http.ResponseWriter, r *http.Request) error {
	p, err := a.domain.DeleteProject(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	for _, name := range p.Domains {
		a.forgetCertificate(r.Context(), p, name)
	}
	return writeJSON(w, http.StatusOK, api.WebhookAnswer{Status: "success", Message: fmt.Sprintf("Project %s deleted", p.Slug)})
}

func (a *Agent) listEnv(w http.ResponseWriter, r *http.Request) error {
	p, err := a.domain.Project(r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, envView(p))
}

// setEnv sets the variables of the body (an object of names to values), keeping the others.
func (a *Agent) setEnv(w http.ResponseWriter, r *http.Request) error {
	var vars map[string]string
	if err := decodeBody(w, r, &vars); err != nil {
		return err
	}
	p, err := a.domain.SetEnv(r.PathValue("id"), vars)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, envView(p))
}

func (a *Agent) unsetEnv(w http.ResponseWriter, r *http.Request) error {
	p, err := a.domain.UnsetEnv(r.PathValue("id"), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, envView(p))
}
