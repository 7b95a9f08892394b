package domain

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/pipeline"
	"github.com/miaobu/miaobu/internal/store"
	"github.com/miaobu/miaobu/internal/trigger"
)

// Settings are the optional build settings of a request: a nil field is left alone, and an empty
// one returns the setting to detection (an empty target keeps the project's). Triggers are the
// trigger rules of contract section 7, a nil one left alone (or its default for a new project).
type Settings struct {
	Target, Framework, BuildCommand, InstallCommand, OutputDirectory, RootDirectory *string
	Triggers                                                                        api.TriggerSettings
}

// NewProject is a project from any git URL, its hook set up by hand (`miaobu project add`).
type NewProject struct {
	Name, RepoURL string
	// Branch deploys to production; empty asks the remote for its HEAD branch.
	Branch   string
	Settings Settings
}

// ProjectChange is a change of a project's settings; a nil Branch is left alone.
type ProjectChange struct {
	Branch   *string
	Settings Settings
}

// Project finds a project by its numeric id or its slug.
func (s *Service) Project(ref string) (*store.Project, error) {
	var p *store.Project
	var err error
	if id, convErr := strconv.ParseInt(ref, 10, 64); convErr == nil {
		p, err = s.store.Project(id)
	} else {
		p, err = s.store.ProjectBySlug(ref)
	}
	if err != nil {
		return nil, storeError(err, fmt.Sprintf("Project %s not found", ref))
	}
	return p, nil
}

// Projects returns every project, oldest first.
func (s *Service) Projects() ([]*store.Project, error) {
	return s.store.Projects()
}

// CreateProject stores a project from a git URL with a new webhook secret, which the returned
// project carries for the one answer that may show it.
func (s *Service) CreateProject(ctx context.Context, req NewProject) (*store.Project, error) {
	name := strings.TrimSpace(req.Name)
	if name == "" {
		return nil, Errorf(Invalid, "A project needs a name")
	}
	if err := s.checkSlug(name); err != nil {
		return nil, err
	}
	if err := validateRepoURL(req.RepoURL); err != nil {
		return nil, err
	}
	if err := s.validateSettings(req.Settings); err != nil {
		return nil, err
	}
	branch := req.Branch
	if branch == "" {
		var err error
		if branch, err = remoteHeadBranch(ctx, req.RepoURL); err != nil {
			return nil, err
		}
	} else if err := validateBranch(branch); err != nil {
		return nil, err
	}
	secret, err := github.NewWebhookSecret()
	if err != nil {
		return nil, err
	}
	p := &store.Project{Name: name, Slug: name, RepoURL: req.RepoURL, DefaultBranch: branch, Target: s.cfg.Target,
		WebhookSecret: secret}
	defaultTriggers(p)
	applySettings(req.Settings, p)
	if err := s.store.CreateProject(p); err != nil {
		return nil, storeError(err, "")
	}
	s.log.Info("project created", "project", p.ID, "slug", p.Slug, "branch", branch)
	return p, nil
}

// UpdateProject changes the settings of the project ref names.
func (s *Service) UpdateProject(ref string, change ProjectChange) (*store.Project, error) {
	p, err := s.Project(ref)
	if err != nil {
		return nil, err
	}
	if err := s.validateSettings(change.Settings); err != nil {
		return nil, err
	}
	if change.Branch != nil {
		if err := validateBranch(*change.Branch); err != nil {
			return nil, err
		}
	}
	updated, err := s.store.UpdateProject(p.ID, func(p *store.Project) error {
		if change.Branch != nil {
			p.DefaultBranch = *change.Branch
		}
		applySettings(change.Settings, p)
		return nil
	})
	return updated, storeError(err, fmt.Sprintf("Project %s not found", ref))
}

// DeleteProject deletes the project ref names with its deployments and files, and first its GitHub
// hook, so that no hook is left posting to a project that no longer exists; it returns the project.
func (s *Service) DeleteProject(ctx context.Context, ref string) (*store.Project, error) {
	p, err := s.Project(ref)
	if err != nil {
		return nil, err
	}
	if err := s.deleteHookOf(ctx, p); err != nil {
		return nil, githubError(fmt.Sprintf("Project %s was not deleted, as its GitHub webhook could not be: ", p.Slug), err)
	}
	gone, err := s.store.DeleteProject(p.ID)
	if err != nil {
		return nil, storeError(err, fmt.Sprintf("Project %s not found", ref))
	}
	// Its builds stop before its files go, rather than run on without them until build.timeout.
	for _, d := range gone {
		s.builds.Stop(d.ID)
	}
	s.removeProjectFiles(p, gone)
	s.log.Info("project deleted", "project", p.ID, "slug", p.Slug, "deployments", len(gone))
	return p, nil
}

// deleteHookOf removes the GitHub hook of a project that is being deleted.
func (s *Service) deleteHookOf(ctx context.Context, p *store.Project) error {
	if p.Repo == "" || p.WebhookID == 0 {
		return nil
	}
	s.hooks.Lock()
	defer s.hooks.Unlock()
	owner, name := splitRepo(p.Repo)
	return s.github.DeleteHook(ctx, owner, name, p.WebhookID)
}

// removeProjectFiles deletes a deleted project's published sites, build cache and build logs.
func (s *Service) removeProjectFiles(p *store.Project, deployments []*store.Deployment) {
	if err := os.RemoveAll(filepath.Join(s.cfg.DataDir, "sites", p.Slug)); err != nil {
		s.log.Warn("removing project files", "project", p.ID, "err", err)
	}
	if _, err := s.caches.Clear(p.ID); err != nil {
		s.log.Warn("removing the build cache", "project", p.ID, "err", err)
	}
	for _, d := range deployments {
		_ = os.Remove(s.LogPath(d.ID))
	}
}

// validateSettings checks the settings that are set; an oss target needs the agent configured for it.
func (s *Service) validateSettings(set Settings) error {
	if set.Target != nil && *set.Target != "" && *set.Target != "local" && *set.Target != "oss" {
		return Errorf(Invalid, "target must be local or oss, not %q", *set.Target)
	}
	if set.Target != nil && *set.Target == "oss" {
		if err := s.cfg.OSSMissing(); err != nil {
			return &Error{Kind: Invalid, Detail: err.Error()}
		}
	}
	if set.Framework != nil && *set.Framework != "" && !knownFramework(*set.Framework) {
		return Errorf(Invalid, "unknown framework %q", *set.Framework)
	}
	for name, dir := range map[string]*string{"output directory": set.OutputDirectory, "root directory": set.RootDirectory} {
		if dir != nil && *dir != "" {
			if err := validateRelativeDir(*dir); err != nil {
				return Errorf(Invalid, "%s: %v", name, err)
			}
		}
	}
	return validateTriggers(set.Triggers)
}

// validateTriggers checks the trigger rules that are set.
func validateTriggers(t api.TriggerSettings) error {
	for name, globs := range map[string]*[]string{"preview_branches": t.PreviewBranches, "watch_paths": t.WatchPaths} {
		if globs != nil {
			if err := trigger.Validate(*globs); err != nil {
				return Errorf(Invalid, "%s: %v", name, err)
			}
		}
	}
	if t.ForkPreviews != nil {
		if err := trigger.CheckForkPreviews(*t.ForkPreviews); err != nil {
			return Errorf(Invalid, "fork_previews %v", err)
		}
	}
	if t.Trigger != nil {
		if err := trigger.CheckMode(*t.Trigger); err != nil {
			return Errorf(Invalid, "trigger %v", err)
		}
	}
	return nil
}

// defaultTriggers gives a new project the default trigger rules: pull request previews on, forks
// after approval, new commits by webhook, no preview branches and every path watched.
func defaultTriggers(p *store.Project) {
	p.PRPreviews, p.ForkPreviews, p.TriggerMode = true, trigger.ForkPreviewsApprove, trigger.ModeWebhook
}

// applySettings copies the settings that are set onto p; an empty target keeps p's target.
func applySettings(set Settings, p *store.Project) {
	if set.Target != nil && *set.Target != "" {
		p.Target = *set.Target
	}
	for _, f := range []struct {
		from *string
		to   *string
	}{{set.Framework, &p.Framework}, {set.BuildCommand, &p.BuildCommand}, {set.InstallCommand, &p.InstallCommand},
		{set.OutputDirectory, &p.OutputDirectory}, {set.RootDirectory, &p.RootDirectory}} {
		if f.from != nil {
			*f.to = strings.TrimSpace(*f.from)
		}
	}
	if p.RootDirectory != "" {
		p.RootDirectory = filepath.ToSlash(filepath.Clean(p.RootDirectory))
	}
	t := set.Triggers
	if t.PreviewBranches != nil {
		p.PreviewBranches = *t.PreviewBranches
	}
	if t.WatchPaths != nil {
		p.WatchPaths = *t.WatchPaths
	}
	if t.PRPreviews != nil {
		p.PRPreviews = *t.PRPreviews
	}
	if t.ForkPreviews != nil {
		p.ForkPreviews = *t.ForkPreviews
	}
	if t.Trigger != nil {
		p.TriggerMode = *t.Trigger
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
		return Errorf(Invalid, "%q is not a valid branch name", branch)
	}
	return nil
}

// validateRepoURL accepts the git URLs of contract section 3: https://, http://, ssh://, git@host:path,
// file:// and absolute local paths.
func validateRepoURL(raw string) error {
	switch {
	case raw == "":
		return Errorf(Invalid, "a project needs --repo-url")
	case strings.HasPrefix(raw, "-"):
		return Errorf(Invalid, "%q is not a git URL", raw)
	case strings.HasPrefix(raw, "/"):
		return nil
	case strings.HasPrefix(raw, "git@") && strings.Contains(raw, ":"):
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Errorf(Invalid, "%q is not a git URL", raw)
	}
	switch u.Scheme {
	case "https", "http", "ssh", "git":
		if u.Host == "" {
			return Errorf(Invalid, "%q has no host", raw)
		}
		if u.User != nil {
			if _, hasPassword := u.User.Password(); hasPassword {
				return Errorf(Invalid, "put no credentials in the repository URL: they would be stored and shown; use an SSH key or a token in the agent's config")
			}
		}
		return nil
	case "file":
		return nil
	}
	return Errorf(Invalid, "%q is not a git URL (https://, ssh://, git@host:path, file:// or an absolute path)", raw)
}

// gitCommand runs git against a remote with no prompt for credentials, bounded by timeout, through
// the pipeline's git, which reaps it and explains its failures.
func gitCommand(ctx context.Context, timeout time.Duration, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	env := append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_SSH_COMMAND=ssh -o BatchMode=yes")
	return pipeline.Git(ctx, "", env, nil, args...)
}

// headBranchTimeout bounds the question a project's creation asks the remote: long enough for a
// slow host, short enough for a command waiting on it.
const headBranchTimeout = 10 * time.Second

// remoteHeadBranch asks the remote for the branch its HEAD points at, main when it names none; a
// remote that cannot be read is an error that says to name the branch.
func remoteHeadBranch(ctx context.Context, repoURL string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, headBranchTimeout)
	defer cancel()
	out, err := gitCommand(ctx, headBranchTimeout, "ls-remote", "--symref", "--", repoURL, "HEAD")
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("git ls-remote timed out after %s", headBranchTimeout)
	}
	if err != nil {
		return "", &Error{Kind: Upstream, Detail: fmt.Sprintf("could not read the default branch of %s: %v (pass --branch to name it)", repoURL, err), Err: err}
	}
	for _, line := range strings.Split(string(out), "\n") {
		if ref, ok := strings.CutPrefix(line, "ref: refs/heads/"); ok {
			if branch, _, ok := strings.Cut(ref, "\t"); ok {
				return branch, nil
			}
		}
	}
	return "main", nil
}

// branchTip resolves a branch of a git remote to its commit with `git ls-remote`.
func branchTip(ctx context.Context, repoURL, branch string) (string, error) {
	out, err := gitCommand(ctx, 30*time.Second, "ls-remote", "--", repoURL, "refs/heads/"+branch)
	if err != nil {
		return "", &Error{Kind: Upstream, Detail: fmt.Sprintf("could not read branch %s of %s: %v", branch, repoURL, err), Err: err}
	}
	sha, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\t")
	if !github.ValidSHA(sha) {
		return "", Errorf(Upstream, "branch %s not found in %s", branch, repoURL)
	}
	return sha, nil
}

// splitRepo splits a stored owner/name.
func splitRepo(repo string) (owner, name string) {
	owner, name, _ = strings.Cut(repo, "/")
	return owner, name
}
