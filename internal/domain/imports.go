package domain

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/miaobu/miaobu/internal/detect"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/store"
	"github.com/miaobu/miaobu/internal/trigger"
)

// ImportRequest is `miaobu import OWNER/REPO`; the build settings given here are stored and win
// over detection.
type ImportRequest struct {
	Owner, Repo string
	// Branch deploys to production; empty means the repository's default branch.
	Branch string
	// Name names the project; empty means the repository's name (and root directory).
	Name                string
	Settings            Settings
	NoWebhook, NoDeploy bool
}

// HookOutcome says how creating the webhook went during an import.
type HookOutcome string

// Webhook outcomes of an import; the values are the API's.
const (
	HookCreated HookOutcome = "created" // a new hook was added to the repository
	HookUpdated HookOutcome = "updated" // a hook with the project's URL existed and now carries its secret
	HookSkipped HookOutcome = "skipped" // NoWebhook
	HookFailed  HookOutcome = "failed"  // GitHub refused or failed; HookError says why
)

// Imported is what an import did: the stored project, the settings detected at the branch tip,
// the webhook's outcome and the first deployment (nil with NoDeploy or when queueing it failed).
type Imported struct {
	Project    *store.Project
	CommitSHA  string
	Detected   detect.Settings
	Hook       HookOutcome
	HookError  string
	Deployment *store.Deployment
	Warnings   []string
}

// Import reads a GitHub repository, detects its build settings at the branch tip, stores the
// project, creates its webhook (none for a polled project) and queues the first deployment. Only the build settings given in
// the request are stored: the others are detected again from each commit at build time, by the
// same rules, so the project follows changes to the repository. A webhook or queueing failure is
// a warning of the import, not its failure.
func (s *Service) Import(ctx context.Context, req ImportRequest) (*Imported, error) {
	// A polled project needs no webhook, and an agent without a public URL could not make one.
	if t := req.Settings.Triggers.Trigger; t != nil && *t == trigger.ModePoll {
		req.NoWebhook = true
	}
	root, err := s.validateImport(req)
	if err != nil {
		return nil, err
	}
	repo, err := s.github.Repository(ctx, req.Owner, req.Repo)
	if err != nil {
		return nil, githubError("", err)
	}
	full := repo.FullName
	if full == "" {
		full = req.Owner + "/" + req.Repo
	}
	owner, name := splitRepo(full)
	branch := cmp.Or(req.Branch, repo.DefaultBranch, "main")
	tip, err := s.github.BranchTip(ctx, owner, name, branch)
	if err != nil {
		return nil, githubError("", err)
	}
	found, err := detect.Detect(s.github.ContentsFS(ctx, owner, name, tip.SHA), root)
	if err != nil {
		return nil, detectError(err, full, branch, tip.SHA, root)
	}
	projectName := strings.TrimSpace(req.Name)
	if projectName == "" {
		projectName = name
		if root != "." {
			projectName += "-" + path.Base(root)
		}
	}
	if err := s.checkSlug(projectName); err != nil {
		return nil, err
	}
	p := &store.Project{Name: projectName, Slug: projectName, Repo: full, RepoURL: repo.CloneURL, Private: repo.Private,
		DefaultBranch: branch, Target: s.cfg.Target}
	defaultTriggers(p)
	applySettings(req.Settings, p)
	if !req.NoWebhook {
		// Made before the project is stored, so it is kept even when creating the hook fails.
		if p.WebhookSecret, err = github.NewWebhookSecret(); err != nil {
			return nil, err
		}
	}
	if err := s.store.CreateProject(p); err != nil {
		return nil, storeError(err, "")
	}
	log := s.log.With("project", p.ID, "slug", p.Slug, "repo", full, "branch", branch)
	out := &Imported{Project: p, CommitSHA: tip.SHA, Detected: found, Hook: HookSkipped, Warnings: []string{}}
	if !req.NoWebhook {
		s.importHook(ctx, out)
	}
	if !req.NoDeploy {
		d := &store.Deployment{ProjectID: p.ID, CommitSHA: tip.SHA, CommitMessage: tip.Message, CommitAuthor: tip.Author,
			Branch: branch, Trigger: store.TriggerImport}
		if err := s.store.CreateDeployment(d); err != nil {
			log.Error("import: queueing the first deployment failed", "err", err)
			out.Warnings = append(out.Warnings, fmt.Sprintf("The first deployment could not be queued (see the agent's log): deploy with `miaobu deploy %s`", p.Slug))
		} else {
			s.builds.Wake()
			out.Deployment = d
			log = log.With("deployment", d.ID)
		}
	}
	log.Info("repository imported", "commit", tip.SHA[:7], "framework", found.Framework, "webhook", out.Hook)
	return out, nil
}

// validateImport checks an import before GitHub is asked anything, returning the cleaned root directory.
func (s *Service) validateImport(req ImportRequest) (string, error) {
	if err := s.validateSettings(req.Settings); err != nil {
		return "", err
	}
	rootDir := ""
	if req.Settings.RootDirectory != nil {
		rootDir = strings.TrimSpace(*req.Settings.RootDirectory)
	}
	root, err := detect.CleanRootDir(rootDir)
	if err != nil {
		return "", &Error{Kind: Invalid, Detail: err.Error()}
	}
	if req.Branch != "" {
		if err := validateBranch(req.Branch); err != nil {
			return "", err
		}
	}
	if refusal := s.hookURLRefusal(); refusal != "" && !req.NoWebhook {
		return "", Errorf(Invalid, "%s, or import with --no-webhook", refusal)
	}
	return root, nil
}

// detectError explains why the build settings of a repository could not be detected at a commit.
func detectError(err error, repo, branch, sha, root string) error {
	var ghErr *github.Error
	switch {
	case errors.As(err, &ghErr):
		return githubError("Cannot read the repository's files: ", ghErr)
	case errors.Is(err, fs.ErrNotExist):
		return Errorf(Invalid, "Root directory %s not found in %s at %s (%s)", root, repo, branch, sha[:7])
	}
	return Errorf(Invalid, "Cannot detect the build settings of %s at %s (%s): %v", repo, branch, sha[:7], err)
}

// importHook creates the webhook of a just imported project, recording the outcome in out.
func (s *Service) importHook(ctx context.Context, out *Imported) {
	p := out.Project
	s.hooks.Lock()
	updated, created, err := s.installHook(ctx, p, p.WebhookSecret)
	s.hooks.Unlock()
	switch {
	case err != nil:
		s.log.Warn("import: creating the webhook failed", "project", p.ID, "repo", p.Repo, "err", err)
		out.Hook, out.HookError = HookFailed, err.Error()
		out.Warnings = append(out.Warnings, fmt.Sprintf("The webhook was not created: %v. Retry with `miaobu webhook setup %s`", err, p.Slug))
	case created:
		out.Project, out.Hook = updated, HookCreated
	default:
		out.Project, out.Hook = updated, HookUpdated
	}
	if warning := s.loopbackWarning(out.Project.Slug); warning != "" {
		out.Warnings = append(out.Warnings, warning)
	}
}
