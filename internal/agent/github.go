package agent

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/domain"
)

// importRepository is `miaobu import`.
func (a *Agent) importRepository(w http.ResponseWriter, r *http.Request) error {
	var req api.ImportRequest
	if err := decodeOptionalBody(w, r, &req); err != nil {
		return err
	}
	imp, err := a.domain.Import(r.Context(), domain.ImportRequest{Owner: r.PathValue("owner"), Repo: r.PathValue("repo"),
		Branch: req.Branch, Name: req.Name, NoWebhook: req.NoWebhook, NoDeploy: req.NoDeploy,
		Settings: domain.Settings{Target: &req.Target, BuildCommand: &req.BuildCommand, InstallCommand: &req.InstallCommand,
			OutputDirectory: &req.OutputDirectory, RootDirectory: &req.RootDirectory, Triggers: req.TriggerSettings}})
	if err != nil {
		return err
	}
	a.wakePoller()
	return writeJSON(w, http.StatusCreated, a.importView(imp))
}

// setupWebhook creates a project's GitHub hook.
func (a *Agent) setupWebhook(w http.ResponseWriter, r *http.Request) error {
	setup, err := a.domain.SetupWebhook(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	answer := api.WebhookAnswer{Status: "success", Message: "Webhook created successfully",
		WebhookID: setup.HookID, WebhookURL: setup.URL, Warning: setup.Warning}
	if setup.AlreadyConfigured {
		answer.Status, answer.Message = "already_configured", "Webhook is already configured for this project"
	}
	if setup.EventsAdded != nil {
		answer.Message += fmt.Sprintf("; it now also sends %s events", strings.Join(setup.EventsAdded, " and "))
	}
	return writeJSON(w, http.StatusOK, answer)
}

// deleteWebhook removes a project's webhook.
func (a *Agent) deleteWebhook(w http.ResponseWriter, r *http.Request) error {
	deleted, err := a.domain.DeleteWebhook(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !deleted {
		return writeJSON(w, http.StatusOK, api.WebhookAnswer{Status: "not_configured", Message: "No webhook configured for this project"})
	}
	return writeJSON(w, http.StatusOK, api.WebhookAnswer{Status: "success", Message: "Webhook deleted successfully"})
}

// rotateWebhook replaces a project's webhook secret, answering the new one only for a hand-made hook.
func (a *Agent) rotateWebhook(w http.ResponseWriter, r *http.Request) error {
	rotation, err := a.domain.RotateWebhook(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	answer := api.WebhookAnswer{Status: "success", Message: "Webhook secret rotated", WebhookURL: rotation.URL}
	if rotation.Secret != "" {
		answer.Message = "Webhook secret rotated: paste the new secret into the repository's webhook settings"
		answer.WebhookSecret = rotation.Secret
	} else {
		answer.WebhookID = rotation.Project.WebhookID
	}
	return writeJSON(w, http.StatusOK, answer)
}
