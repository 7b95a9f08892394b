package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/detect"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/store"
)

// githubError answers a failed GitHub call with a status that tells the caller whose problem it
// is; prefix, when not empty, says what could not be done. The messages of package github never
// contain the token.
func (a *Agent) githubError(w http.ResponseWriter, r *http.Request, prefix string, err error) {
	code := http.StatusBadGateway
	var ghErr *github.Error
	switch {
	case errors.Is(err, github.ErrNoToken), errors.Is(err, github.ErrInvalidRepository):
		code = http.StatusBadRequest
	case errors.As(err, &ghErr):
		switch ghErr.Kind {
		case github.ErrNotFound:
			code = http.StatusNotFound
		case github.ErrForbidden:
			code = http.StatusForbidden
		case github.ErrRateLimited:
			code = http.StatusTooManyRequests
		}
		// ErrUnauthorized stays a 502: a 401 would read as the admin token being wrong.
	default:
		a.internalError(w, r, err)
		return
	}
	a.log.Warn("github request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, code, prefix+err.Error())
}

// splitRepo splits a stored owner/name.
func splitRepo(repo string) (owner, name string) {
	owner, name, _ = strings.Cut(repo, "/")
	return owner, name
}

// hookURLRefusal explains why no hook can be made for the public URL, or returns "".
func (a *Agent) hookURLRefusal() string {
	if reason := a.cfg.PublicURLUnreachable(); reason != "" {
		return "Cannot create a webhook: " + reason
	}
	return ""
}

// loopbackWarning says, when the public URL is a loopback address, that GitHub cannot deliver to
// it and how to expose the agent.
func (a *Agent) loopbackWarning(slug string) string {
	if !a.cfg.PublicURLIsLoopback() {
		return ""
	}
	port := "8000"
	if u, err := url.Parse(a.cfg.PublicURL); err == nil && u.Port() != "" {
		port = u.Port()
	}
	return fmt.Sprintf("public_url %s is a loopback address that GitHub cannot reach: expose the agent with "+
		"`ngrok http %s` or `cloudflared tunnel --url http://127.0.0.1:%s`, set MIAOBU_PUBLIC_URL to the tunnel's "+
		"https URL, restart the agent and run `miaobu webhook setup %s`", a.cfg.PublicURL, port, port, slug)
}

// installHook makes p's repository deliver pushes to p's webhook URL signed with secret, adopting a
// hook that already has that URL, and stores the hook's id with the secret. The caller holds a.hooks.
func (a *Agent) installHook(ctx context.Context, p *store.Project, secret string) (*store.Project, bool, error) {
	owner, name := splitRepo(p.Repo)
	hook, created, err := a.github.EnsureHook(ctx, owner, name, a.webhookURL(p.ID), secret)
	if err != nil {
		return nil, false, err
	}
	updated, err := a.store.UpdateProject(p.ID, func(p *store.Project) error {
		p.WebhookID, p.WebhookSecret = hook.ID, secret
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("storing webhook %d: %w", hook.ID, err)
	}
	return updated, created, nil
}

// importRepository is `miaobu import`: it reads the repository, detects its build settings at the
// branch tip, stores the project, creates its webhook and queues the first deployment. Only the
// build settings given in the request are stored: the others are detected again from each
// commit at build time, by the same rules, so the project follows changes to the repository.
func (a *Agent) importRepository(w http.ResponseWriter, r *http.Request) {
	owner, name := r.PathValue("owner"), r.PathValue("repo")
	var req api.ImportRequest
	if r.ContentLength != 0 && !decodeBody(w, r, &req) {
		return
	}
	settings := buildSettings{Target: &req.Target, BuildCommand: &req.BuildCommand, InstallCommand: &req.InstallCommand,
		OutputDirectory: &req.OutputDirectory, RootDirectory: &req.RootDirectory}
	if err := settings.validate(a.cfg); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	root, err := detect.CleanRootDir(strings.TrimSpace(req.RootDirectory))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Branch != "" {
		if err := validateBranch(req.Branch); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	trigger, err := storedTrigger(req.Trigger)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// A polled project needs no webhook, and an agent without a public URL could not make one.
	req.NoWebhook = req.NoWebhook || trigger == api.ProjectTriggerPoll
	if refusal := a.hookURLRefusal(); refusal != "" && !req.NoWebhook {
		writeError(w, http.StatusBadRequest, refusal+", or import with --no-webhook")
		return
	}
	ctx := r.Context()
	repo, err := a.github.Repository(ctx, owner, name)
	if err != nil {
		a.githubError(w, r, "", err)
		return
	}
	full := repo.FullName
	if full == "" {
		full = owner + "/" + name
	}
	owner, name = splitRepo(full)
	branch := req.Branch
	if branch == "" {
		branch = repo.DefaultBranch
	}
	if branch == "" {
		branch = "main"
	}
	tip, err := a.github.BranchTip(ctx, owner, name, branch)
	if err != nil {
		a.githubError(w, r, "", err)
		return
	}
	found, err := detect.Detect(a.github.ContentsFS(ctx, owner, name, tip.SHA), root)
	if err != nil {
		var ghErr *github.Error
		if errors.As(err, &ghErr) {
			a.githubError(w, r, "Cannot read the repository's files: ", ghErr)
			return
		}
		if errors.Is(err, fs.ErrNotExist) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("Root directory %s not found in %s at %s (%s)", root, full, branch, tip.SHA[:7]))
			return
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Cannot detect the build settings of %s at %s (%s): %v", full, branch, tip.SHA[:7], err))
		return
	}

	projectName := strings.TrimSpace(req.Name)
	if projectName == "" {
		projectName = name
		if root != "." {
			projectName += "-" + path.Base(root)
		}
	}
	p := &store.Project{Name: projectName, Slug: projectName, Repo: full, RepoURL: repo.CloneURL, Private: repo.Private,
		DefaultBranch: branch, Target: a.cfg.Target, Trigger: trigger}
	settings.apply(p)
	if !req.NoWebhook {
		// Made before the project is stored, so it is kept even when creating the hook fails.
		if p.WebhookSecret, err = github.NewWebhookSecret(); err != nil {
			a.internalError(w, r, err)
			return
		}
	}
	if err := a.store.CreateProject(p); err != nil {
		a.storeError(w, r, err)
		return
	}
	log := a.log.With("project", p.ID, "slug", p.Slug, "repo", full, "branch", branch)

	result := api.ImportResult{Warnings: []string{}, Detected: api.Detected{
		CommitSHA: tip.SHA, Framework: found.Framework, PackageManager: found.PackageManager,
		InstallCommand: found.InstallCommand, BuildCommand: found.BuildCommand, OutputDirectory: found.OutputDirectory,
		NodeVersion: found.NodeVersion, Notes: append([]string{}, found.Notes...),
	}}
	if req.NoWebhook {
		result.Webhook.Status = api.HookSkipped
	} else {
		a.hooks.Lock()
		updated, created, err := a.installHook(ctx, p, p.WebhookSecret)
		a.hooks.Unlock()
		switch {
		case err != nil:
			log.Warn("import: creating the webhook failed", "err", err)
			result.Webhook = api.ImportWebhook{Status: api.HookFailed, Error: err.Error()}
			result.Warnings = append(result.Warnings, fmt.Sprintf("The webhook was not created: %v. Retry with `miaobu webhook setup %s`", err, p.Slug))
		case created:
			p, result.Webhook.Status = updated, api.HookCreated
		default:
			p, result.Webhook.Status = updated, api.HookUpdated
		}
		if warning := a.loopbackWarning(p.Slug); warning != "" {
			result.Warnings = append(result.Warnings, warning)
		}
	}
	if !req.NoDeploy {
		d := &store.Deployment{ProjectID: p.ID, CommitSHA: tip.SHA, CommitMessage: tip.Message, CommitAuthor: tip.Author,
			Branch: branch, Trigger: api.TriggerImport}
		if err := a.store.CreateDeployment(d); err != nil {
			log.Error("import: queueing the first deployment failed", "err", err)
			result.Warnings = append(result.Warnings, fmt.Sprintf("The first deployment could not be queued (see the agent's log): deploy with `miaobu deploy %s`", p.Slug))
		} else {
			a.wakeWorkers()
			view := a.deploymentView(d, p)
			result.Deployment = &view
			log = log.With("deployment", d.ID)
		}
	}
	result.Project = a.projectView(p)
	log.Info("repository imported", "commit", tip.SHA[:7], "framework", found.Framework, "webhook", result.Webhook.Status)
	writeJSON(w, http.StatusCreated, result)
}

// githubProject finds the project of the request and answers 400 when it was not imported from GitHub.
func (a *Agent) githubProject(w http.ResponseWriter, r *http.Request) (*store.Project, bool) {
	p, ok := a.lookupProject(w, r)
	if !ok {
		return nil, false
	}
	if p.Repo == "" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Project %s was not imported from GitHub: its webhook is set up by hand, "+
			"and `miaobu webhook rotate %s` gives it a new secret", p.Slug, p.Slug))
		return nil, false
	}
	return p, true
}

// reloadProject reads a project again once a.hooks is held, so that a hook change that ran while
// this one waited is seen; it answers the error itself and returns false when that fails.
func (a *Agent) reloadProject(w http.ResponseWriter, r *http.Request, id int64) (*store.Project, bool) {
	p, err := a.store.Project(id)
	if err != nil {
		a.storeError(w, r, err)
		return nil, false
	}
	return p, true
}

// setupWebhook creates the GitHub hook of a project: already_configured when its stored hook still
// exists with the project's URL; otherwise a hook with that URL is adopted, or a new one created.
func (a *Agent) setupWebhook(w http.ResponseWriter, r *http.Request) {
	p, ok := a.githubProject(w, r)
	if !ok {
		return
	}
	if refusal := a.hookURLRefusal(); refusal != "" {
		writeError(w, http.StatusBadRequest, refusal)
		return
	}
	a.hooks.Lock()
	defer a.hooks.Unlock()
	if p, ok = a.reloadProject(w, r, p.ID); !ok {
		return
	}
	hookURL := a.webhookURL(p.ID)
	warning := a.loopbackWarning(p.Slug)
	if p.WebhookID != 0 && p.WebhookSecret != "" {
		owner, name := splitRepo(p.Repo)
		hook, exists, err := a.github.FindHookByID(r.Context(), owner, name, p.WebhookID)
		if err != nil {
			a.githubError(w, r, "", err)
			return
		}
		if exists && hook.URL == hookURL {
			writeJSON(w, http.StatusOK, api.WebhookAnswer{Status: "already_configured", Message: "Webhook is already configured for this project",
				WebhookID: p.WebhookID, WebhookURL: hookURL, Warning: warning})
			return
		}
		if exists {
			// public_url changed since the hook was made: point the same hook at the new URL.
			if _, err := a.github.EditHook(r.Context(), owner, name, p.WebhookID, hookURL, p.WebhookSecret); err != nil {
				a.githubError(w, r, "", err)
				return
			}
			a.log.Info("webhook moved to the new public URL", "project", p.ID, "hook", p.WebhookID)
			writeJSON(w, http.StatusOK, api.WebhookAnswer{Status: "success", Message: "Webhook created successfully",
				WebhookID: p.WebhookID, WebhookURL: hookURL, Warning: warning})
			return
		}
	}
	secret := p.WebhookSecret
	if secret == "" {
		var err error
		if secret, err = github.NewWebhookSecret(); err != nil {
			a.internalError(w, r, err)
			return
		}
	}
	p, created, err := a.installHook(r.Context(), p, secret)
	if err != nil {
		a.githubError(w, r, "", err)
		return
	}
	a.log.Info("webhook set up", "project", p.ID, "hook", p.WebhookID, "created", created)
	writeJSON(w, http.StatusOK, api.WebhookAnswer{Status: "success", Message: "Webhook created successfully",
		WebhookID: p.WebhookID, WebhookURL: hookURL, Warning: warning})
}

// deleteWebhook removes a project's GitHub hook (one already gone counts as deleted) and forgets its
// secret; for a hand-made hook it forgets the secret, so that deliveries are refused.
func (a *Agent) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	p, ok := a.lookupProject(w, r)
	if !ok {
		return
	}
	a.hooks.Lock()
	defer a.hooks.Unlock()
	if p, ok = a.reloadProject(w, r, p.ID); !ok {
		return
	}
	if !p.WebhookConfigured() {
		writeJSON(w, http.StatusOK, api.WebhookAnswer{Status: "not_configured", Message: "No webhook configured for this project"})
		return
	}
	if p.Repo != "" {
		owner, name := splitRepo(p.Repo)
		if err := a.github.DeleteHook(r.Context(), owner, name, p.WebhookID); err != nil {
			a.githubError(w, r, "", err)
			return
		}
	}
	if _, err := a.store.UpdateProject(p.ID, func(p *store.Project) error {
		p.WebhookID, p.WebhookSecret = 0, ""
		return nil
	}); err != nil {
		a.storeError(w, r, err)
		return
	}
	a.log.Info("webhook deleted", "project", p.ID, "hook", p.WebhookID)
	writeJSON(w, http.StatusOK, api.WebhookAnswer{Status: "success", Message: "Webhook deleted successfully"})
}

// rotateWebhook replaces a project's webhook secret: on GitHub and in the store together for an
// imported project, or in the store with the new secret answered once for a hand-made hook.
func (a *Agent) rotateWebhook(w http.ResponseWriter, r *http.Request) {
	p, ok := a.lookupProject(w, r)
	if !ok {
		return
	}
	a.hooks.Lock()
	defer a.hooks.Unlock()
	if p, ok = a.reloadProject(w, r, p.ID); !ok {
		return
	}
	if p.Repo != "" && p.WebhookID == 0 {
		writeError(w, http.StatusConflict, fmt.Sprintf("Project %s has no GitHub webhook: create one with `miaobu webhook setup %s`", p.Slug, p.Slug))
		return
	}
	secret, err := github.NewWebhookSecret()
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	hookURL := a.webhookURL(p.ID)
	if p.Repo != "" {
		// GitHub first: if the store then failed, a retry would fix both, while the other order
		// would leave GitHub signing with a secret the agent no longer has.
		owner, name := splitRepo(p.Repo)
		if _, err := a.github.EditHook(r.Context(), owner, name, p.WebhookID, hookURL, secret); err != nil {
			prefix := ""
			if errors.Is(err, github.ErrNotFound) {
				prefix = fmt.Sprintf("Run `miaobu webhook setup %s` to create a new one: ", p.Slug)
			}
			a.githubError(w, r, prefix, err)
			return
		}
	}
	if _, err := a.store.UpdateProject(p.ID, func(p *store.Project) error {
		p.WebhookSecret = secret
		return nil
	}); err != nil {
		a.storeError(w, r, err)
		return
	}
	a.log.Info("webhook secret rotated", "project", p.ID, "hook", p.WebhookID)
	answer := api.WebhookAnswer{Status: "success", Message: "Webhook secret rotated", WebhookURL: hookURL}
	if p.Repo == "" {
		answer.Message = "Webhook secret rotated: paste the new secret into the repository's webhook settings"
		answer.WebhookSecret = secret
	} else {
		answer.WebhookID = p.WebhookID
	}
	writeJSON(w, http.StatusOK, answer)
}

// deleteHookOf removes the GitHub hook of a project that is being deleted, so that no hook is left
// posting to a project that no longer exists.
func (a *Agent) deleteHookOf(ctx context.Context, p *store.Project) error {
	if p.Repo == "" || p.WebhookID == 0 {
		return nil
	}
	a.hooks.Lock()
	defer a.hooks.Unlock()
	owner, name := splitRepo(p.Repo)
	return a.github.DeleteHook(ctx, owner, name, p.WebhookID)
}
