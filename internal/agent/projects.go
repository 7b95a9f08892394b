package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/store"
)

// projectView turns a stored project into its API form, without its secrets.
func (a *Agent) projectView(p *store.Project) api.Project {
	v := api.Project{
		ID: p.ID, Name: p.Name, Slug: p.Slug, RepoURL: p.RepoURL, DefaultBranch: p.DefaultBranch,
		Framework: p.Framework, InstallCommand: p.InstallCommand, BuildCommand: p.BuildCommand,
		OutputDirectory: p.OutputDirectory, RootDirectory: p.RootDirectory, Target: p.Target,
		WebhookConfigured: p.WebhookConfigured(), WebhookURL: a.webhookURL(p.ID), SiteURL: a.liveURL(p),
		CreatedAt: p.CreatedAt, Detection: detectionView(p.Detected), Trigger: projectTrigger(p), PollStatus: a.pollStatus(p.ID),
	}
	if p.Repo != "" {
		repo := p.Repo
		v.Repo = &repo
	}
	if p.WebhookID != 0 {
		hook := p.WebhookID
		v.WebhookID = &hook
	}
	if p.ActiveDeploymentID != 0 {
		active := p.ActiveDeploymentID
		v.ActiveDeploymentID = &active
	}
	return v
}

// detectionView turns what a build detected into its API fields, all null when nothing was.
func detectionView(s *store.DetectedSettings) api.Detection {
	if s == nil {
		return api.Detection{}
	}
	return api.Detection{DetectedFramework: &s.Framework, DetectedInstallCommand: &s.InstallCommand,
		DetectedBuildCommand: &s.BuildCommand, DetectedOutputDirectory: &s.OutputDirectory}
}

// webhookURL is the URL GitHub posts a project's pushes to.
func (a *Agent) webhookURL(projectID int64) string {
	return a.cfg.PublicURL + api.PathWebhookPrefix + strconv.FormatInt(projectID, 10)
}

// siteURL is where a project's live site is served by the local target: <slug>.<sites.domain> on the
// agent's port, or on the public URL's scheme and port when sites have a domain of their own.
func (a *Agent) siteURL(host string) string {
	domain := a.cfg.Sites.Domain
	if domain == "localhost" {
		_, port, _ := net.SplitHostPort(a.cfg.Listen)
		return fmt.Sprintf("http://%s.localhost:%s/", host, port)
	}
	scheme, port := "https", ""
	if u, err := url.Parse(a.cfg.PublicURL); err == nil {
		scheme, port = u.Scheme, u.Port()
	}
	if port != "" {
		return fmt.Sprintf("%s://%s.%s:%s/", scheme, host, domain, port)
	}
	return fmt.Sprintf("%s://%s.%s/", scheme, host, domain)
}

// lookupProject finds the project named by the {id} path value: a numeric id or a slug.
func (a *Agent) lookupProject(w http.ResponseWriter, r *http.Request) (*store.Project, bool) {
	ref := r.PathValue("id")
	var p *store.Project
	var err error
	if id, convErr := strconv.ParseInt(ref, 10, 64); convErr == nil {
		p, err = a.store.Project(id)
	} else {
		p, err = a.store.ProjectBySlug(ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Project %s not found", ref))
		return nil, false
	}
	if err != nil {
		a.internalError(w, r, err)
		return nil, false
	}
	return p, true
}

// internalError logs err and answers 500 without exposing it.
func (a *Agent) internalError(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "Internal error: see the agent's log")
}

// decodeBody decodes a JSON request body into v, answering 400 and returning false when it is not valid.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "Invalid JSON body: "+err.Error())
		return false
	}
	return true
}

func (a *Agent) listProjects(w http.ResponseWriter, r *http.Request) {
	projects, err := a.store.Projects()
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	out := make([]api.Project, 0, len(projects))
	for _, p := range projects {
		out = append(out, a.projectView(p))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *Agent) getProject(w http.ResponseWriter, r *http.Request) {
	if p, ok := a.lookupProject(w, r); ok {
		writeJSON(w, http.StatusOK, a.projectView(p))
	}
}

// createProject is `miaobu project add`: a project from any git URL, its hook set up by hand.
func (a *Agent) createProject(w http.ResponseWriter, r *http.Request) {
	var req api.ProjectCreate
	if !decodeBody(w, r, &req) {
		return
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" {
		writeError(w, http.StatusBadRequest, "A project needs a name")
		return
	}
	if err := validateRepoURL(req.RepoURL); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	settings := buildSettings{Target: &req.Target, BuildCommand: &req.BuildCommand, InstallCommand: &req.InstallCommand,
		OutputDirectory: &req.OutputDirectory, RootDirectory: &req.RootDirectory}
	if err := settings.validate(a.cfg); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	trigger, err := storedTrigger(req.Trigger)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	branch := req.Branch
	if branch == "" {
		branch = remoteHeadBranch(r.Context(), req.RepoURL)
	} else if err := validateBranch(branch); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	secret, err := github.NewWebhookSecret()
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	p := &store.Project{Name: req.Name, Slug: req.Name, RepoURL: req.RepoURL, DefaultBranch: branch, Target: a.cfg.Target,
		WebhookSecret: secret, Trigger: trigger}
	settings.apply(p)
	if err := a.store.CreateProject(p); err != nil {
		a.storeError(w, r, err)
		return
	}
	a.wakePoller()
	a.log.Info("project created", "project", p.ID, "slug", p.Slug, "branch", branch)
	view := a.projectView(p)
	view.WebhookSecret = secret
	writeJSON(w, http.StatusCreated, view)
}

// storeError answers a store error: a conflict is the user's to fix, anything else is ours.
func (a *Agent) storeError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrConflict):
		writeError(w, http.StatusConflict, strings.TrimPrefix(err.Error(), store.ErrConflict.Error()+": "))
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "Not found")
	default:
		a.internalError(w, r, err)
	}
}

func (a *Agent) updateProject(w http.ResponseWriter, r *http.Request) {
	p, ok := a.lookupProject(w, r)
	if !ok {
		return
	}
	var req api.ProjectUpdate
	if !decodeBody(w, r, &req) {
		return
	}
	settings := buildSettings{Target: req.Target, Framework: req.Framework, BuildCommand: req.BuildCommand,
		InstallCommand: req.InstallCommand, OutputDirectory: req.OutputDirectory, RootDirectory: req.RootDirectory}
	if err := settings.validate(a.cfg); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Branch != nil {
		if err := validateBranch(*req.Branch); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	trigger := p.Trigger
	if req.Trigger != nil {
		var err error
		if trigger, err = storedTrigger(*req.Trigger); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	updated, err := a.store.UpdateProject(p.ID, func(p *store.Project) error {
		if req.Branch != nil {
			p.DefaultBranch = *req.Branch
		}
		p.Trigger = trigger
		settings.apply(p)
		return nil
	})
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	a.wakePoller()
	writeJSON(w, http.StatusOK, a.projectView(updated))
}

func (a *Agent) deleteProject(w http.ResponseWriter, r *http.Request) {
	p, ok := a.lookupProject(w, r)
	if !ok {
		return
	}
	if err := a.deleteHookOf(r.Context(), p); err != nil {
		a.githubError(w, r, fmt.Sprintf("Project %s was not deleted, as its GitHub webhook could not be: ", p.Slug), err)
		return
	}
	gone, err := a.store.DeleteProject(p.ID)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	a.removeProjectFiles(p, gone)
	a.log.Info("project deleted", "project", p.ID, "slug", p.Slug, "deployments", len(gone))
	writeJSON(w, http.StatusOK, api.WebhookAnswer{Status: "success", Message: fmt.Sprintf("Project %s deleted", p.Slug)})
}

// removeProjectFiles deletes a deleted project's published sites, build cache and build logs.
func (a *Agent) removeProjectFiles(p *store.Project, deployments []*store.Deployment) {
	for _, dir := range []string{filepath.Join(a.cfg.DataDir, "sites", p.Slug), filepath.Join(a.cfg.DataDir, "cache", strconv.FormatInt(p.ID, 10))} {
		if err := os.RemoveAll(dir); err != nil {
			a.log.Warn("removing project files", "project", p.ID, "err", err)
		}
	}
	for _, d := range deployments {
		_ = os.Remove(a.logPath(d.ID))
	}
}

// logPath is the build log file of a deployment.
func (a *Agent) logPath(deploymentID int64) string {
	return filepath.Join(a.cfg.DataDir, "logs", strconv.FormatInt(deploymentID, 10)+".log")
}

// buildSettings are the optional build settings of a create or update request.
type buildSettings struct {
	Target, Framework, BuildCommand, InstallCommand, OutputDirectory, RootDirectory *string
}

// validate checks the settings that are set; an oss target needs the agent configured for it.
func (s buildSettings) validate(cfg *config.Config) error {
	if s.Target != nil && *s.Target != "" && *s.Target != "local" && *s.Target != "oss" {
		return fmt.Errorf("target must be local or oss, not %q", *s.Target)
	}
	if s.Target != nil && *s.Target == "oss" {
		if err := cfg.OSSMissing(); err != nil {
			return err
		}
	}
	if s.Framework != nil && *s.Framework != "" && !knownFramework(*s.Framework) {
		return fmt.Errorf("unknown framework %q", *s.Framework)
	}
	for name, dir := range map[string]*string{"output directory": s.OutputDirectory, "root directory": s.RootDirectory} {
		if dir != nil && *dir != "" {
			if err := validateRelativeDir(*dir); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	return nil
}

// apply copies the settings that are set onto p; an empty target keeps p's target.
func (s buildSettings) apply(p *store.Project) {
	if s.Target != nil && *s.Target != "" {
		p.Target = *s.Target
	}
	for _, f := range []struct {
		from *string
		to   *string
	}{{s.Framework, &p.Framework}, {s.BuildCommand, &p.BuildCommand}, {s.InstallCommand, &p.InstallCommand},
		{s.OutputDirectory, &p.OutputDirectory}, {s.RootDirectory, &p.RootDirectory}} {
		if f.from != nil {
			*f.to = strings.TrimSpace(*f.from)
		}
	}
	if p.RootDirectory != "" {
		p.RootDirectory = filepath.ToSlash(filepath.Clean(p.RootDirectory))
	}
}

// knownFramework reports whether id is one of the contract's framework ids.
func knownFramework(id string) bool {
	switch id {
	case "vite", "create-react-app", "next", "vue-cli", "nuxt", "gatsby", "angular", "svelte",
		"docusaurus", "vuepress", "astro", "slidev", "node", "static":
		return true
	}
	return false
}

// validateRelativeDir refuses a directory that is absolute or climbs out of the checkout.
func validateRelativeDir(dir string) error {
	clean := filepath.ToSlash(filepath.Clean(dir))
	if filepath.IsAbs(dir) || strings.HasPrefix(dir, "/") || clean == ".." || strings.HasPrefix(clean, "../") {
		return fmt.Errorf("%q must be a path inside the repository", dir)
	}
	return nil
}

// validateBranch refuses names git would refuse as a branch.
func validateBranch(branch string) error {
	if branch == "" || strings.HasPrefix(branch, "-") || strings.ContainsAny(branch, " ~^:?*[\\\x00") ||
		strings.Contains(branch, "..") || strings.HasSuffix(branch, "/") || strings.HasSuffix(branch, ".lock") {
		return fmt.Errorf("%q is not a valid branch name", branch)
	}
	return nil
}

// validateRepoURL accepts the git URLs of contract section 3: https://, http://, ssh://, git@host:path,
// file:// and absolute local paths.
func validateRepoURL(raw string) error {
	switch {
	case raw == "":
		return errors.New("a project needs --repo-url")
	case strings.HasPrefix(raw, "-"):
		return fmt.Errorf("%q is not a git URL", raw)
	case strings.HasPrefix(raw, "/"):
		return nil
	case strings.HasPrefix(raw, "git@") && strings.Contains(raw, ":"):
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a git URL", raw)
	}
	switch u.Scheme {
	case "https", "http", "ssh", "git":
		if u.Host == "" {
			return fmt.Errorf("%q has no host", raw)
		}
		if u.User != nil {
			if _, hasPassword := u.User.Password(); hasPassword {
				return errors.New("put no credentials in the repository URL: they would be stored and shown; use an SSH key or a token in the agent's config")
			}
		}
		return nil
	case "file":
		return nil
	}
	return fmt.Errorf("%q is not a git URL (https://, ssh://, git@host:path, file:// or an absolute path)", raw)
}

// remoteHeadBranch asks the remote for the branch its HEAD points at, defaulting to main.
func remoteHeadBranch(ctx context.Context, repoURL string) string {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", "ls-remote", "--symref", "--", repoURL, "HEAD")
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_SSH_COMMAND=ssh -o BatchMode=yes")
	out, err := cmd.Output()
	if err != nil {
		return "main"
	}
	for _, line := range strings.Split(string(out), "\n") {
		if ref, ok := strings.CutPrefix(line, "ref: refs/heads/"); ok {
			if branch, _, ok := strings.Cut(ref, "\t"); ok {
				return branch
			}
		}
	}
	return "main"
}
