// Package pipeline owns what happens to one deployment between the queue and the publish target:
// clone the exact commit, detect the build settings that are not set, install and build in a clean
// environment (under bubblewrap when there is one), and copy the output, checked, into the
// directory the agent keeps and serves, writing the build log as it goes.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miaobu/miaobu/internal/buildcache"
	"github.com/miaobu/miaobu/internal/detect"
	"github.com/miaobu/miaobu/internal/publish"
	"github.com/miaobu/miaobu/internal/store"
	"github.com/miaobu/miaobu/internal/trigger"
)

// Builder runs builds; one Builder serves every worker of an agent.
type Builder struct {
	// WorkRoot holds the workspace of each project with a build running, <data_dir>/builds; each is
	// removed after its build.
	WorkRoot string
	// Caches holds what each project keeps between its builds, <data_dir>/cache.
	Caches *buildcache.Caches
	// Bwrap is the bubblewrap binary that sandboxes install and build, "" to run them unsandboxed.
	Bwrap string
	// Hide lists paths a sandboxed build must not see besides the agent's home and the host's
	// sockets: the data dir and the config file and directory.
	Hide []string
	// GitHubToken authenticates clones of private GitHub repositories (sent as an HTTP header).
	GitHubToken string
	// CloneTimeout bounds the clone step.
	CloneTimeout time.Duration
}

// Job is one deployment to build.
type Job struct {
	DeploymentID  int64
	ProjectID     int64
	RepoURL       string
	GitHub        bool // a GitHub repository: clones over https send the token
	CommitSHA     string
	Branch        string
	Trigger       store.Trigger
	CommitMessage string
	CommitAuthor  string
	// Build settings of the project; empty ones are detected from the checked-out commit.
	Framework, InstallCommand, BuildCommand, OutputDirectory, RootDirectory string
	// Env holds the project's build variables; their values are masked in the log.
	Env map[string]string
	// NoCache keeps the build away from the project's build cache: it neither reads nor writes it.
	NoCache bool
	// PullRequest is the number of the pull request whose head commit this is, 0 for a branch.
	PullRequest int
	// Fork marks an untrusted build of a pull request from another repository: its commit is
	// fetched as refs/pull/<n>/head of the project's repository and must be CommitSHA, and it runs
	// in the sandbox only, without Env, the GitHub token or the build cache.
	Fork bool
	// ClearCache discards the project's build cache before the build, which starts from nothing.
	ClearCache bool
	// SkipMarkers makes the build stop with a *SkippedError after the clone when the commit's
	// message has a skip marker.
	SkipMarkers bool
	// PublishDir is where the output is copied: <data_dir>/sites/<slug>/<deployment_id>.
	PublishDir string
	// Step is told each status the build enters; an error from it stops the build.
	Step func(status store.Status) error
	// Commit is told the commit's message and author once the clone knows them.
	Commit func(message, author string)
	// Detected is told what detection found in the commit, before the project's settings override it.
	Detected func(detect.Settings)
}

// Result is what a successful build produced.
type Result struct {
	// Settings are the build settings used: the project's where set, detected otherwise.
	Settings detect.Settings
	// Files is the number of files published.
	Files int
}

// SkippedError ends a build that stops after its clone: its commit's message has a skip marker.
// The deployment is then cancelled with Error as its message, not failed.
type SkippedError struct {
	// Reason says why, such as "commit message contains [skip ci]".
	Reason string
}

// Error is the deployment's message: "Skipped: " and the reason.
func (e *SkippedError) Error() string { return "Skipped: " + e.Reason }

// workspace is the directory tree of one build.
type workspace struct {
	root, src, home, tmp, bin string
	// git is the kept repository the commit is fetched into, and stores the package managers'
	// stores: the project's, or for a build without the cache, the workspace's own.
	git, stores string
	// cache is the project's build cache, nil for a build without it.
	cache *buildcache.Project
}

// Build runs job: clone, detect, install, build, publish into job.PublishDir. Its error is the
// deployment's error message; when ctx ends it returns context.Cause(ctx).
func (b *Builder) Build(ctx context.Context, job Job, log *Log) (*Result, error) {
	start := time.Now()
	log.Printf("Deployment #%d of commit %s (branch %s, trigger %s)", job.DeploymentID, job.CommitSHA, job.Branch, job.Trigger)
	if job.CommitMessage != "" || job.CommitAuthor != "" {
		logCommit(log, job.CommitMessage, job.CommitAuthor)
	}
	if job.Fork {
		if b.Bwrap == "" {
			return nil, ErrForkNeedsSandbox
		}
		log.Printf("Pull request #%d comes from a fork: built in the sandbox, without the project's variables, token or cache", job.PullRequest)
		job.Env, job.NoCache = nil, true
	} else if b.Bwrap == "" {
		log.Printf("WARNING: no sandbox: %s", unsandboxedRisk())
	}
	ws, err := b.newWorkspace(job, log)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(ws.root)
	if ws.cache != nil {
		defer func() {
			if err := ws.cache.Close(); err != nil {
				log.Printf("Build cache: clearing it after the build: %v", err)
			}
		}()
	}

	log.Printf("==> Cloning %s at %s", withoutPassword(job.RepoURL), job.CommitSHA)
	message, author, err := b.cloneInTime(ctx, job, ws, log)
	if err != nil {
		return nil, err
	}
	if err := b.handToBuildUser(ws); err != nil {
		return nil, fmt.Errorf("handing the workspace to the build user: %w", err)
	}
	if job.CommitMessage == "" && job.CommitAuthor == "" {
		logCommit(log, message, author)
		if job.Commit != nil {
			job.Commit(message, author)
		}
	}
	if marker, found := trigger.SkipMarker(message); found && job.SkipMarkers {
		skipped := &SkippedError{Reason: "commit message contains " + marker}
		log.Printf("==> %s", skipped)
		return nil, skipped
	}

	settings, err := b.settings(job, ws.src, log)
	if err != nil {
		return nil, err
	}
	projectDir := filepath.Join(ws.src, filepath.FromSlash(settings.rootDir))
	// Registered after the workspace's removal, so it runs first: what the build took from the
	// cache goes back before the workspace is removed.
	kept := &keeping{builder: b, cache: ws.cache, src: ws.src, root: settings.rootDir}
	defer kept.giveBack(log)

	installEnv := b.baseEnv(ws, settings.PackageManager, job.Env)
	if settings.InstallCommand != "" {
		if kept.takeDeps(settings, job.Env, log) {
			log.Printf("==> Installing: skipped, dependencies unchanged (cache %s)", kept.key[:7])
		} else {
			if err := job.Step(store.StatusInstalling); err != nil {
				return nil, err
			}
			log.Printf("==> Installing: %s", settings.InstallCommand)
			if err := b.run(ctx, ws, command{name: "install", shell: settings.InstallCommand, dir: projectDir, env: installEnv}, log); err != nil {
				kept.key = "" // what a failed or interrupted install left is never kept
				return nil, err
			}
		}
		kept.installed(log)
	}
	if settings.BuildCommand != "" {
		kept.takeFramework(log)
		if err := job.Step(store.StatusBuilding); err != nil {
			return nil, err
		}
		log.Printf("==> Building: %s", settings.BuildCommand)
		// NODE_ENV=production only now: during install it would make npm skip devDependencies.
		buildEnv := slices.Concat(installEnv, []string{"NODE_ENV=production"})
		if err := b.run(ctx, ws, command{name: "build", shell: settings.BuildCommand, dir: projectDir, env: buildEnv}, log); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}

	if err := job.Step(store.StatusUploading); err != nil {
		return nil, err
	}
	output, err := outputDir(ws.src, settings.rootDir, settings.OutputDirectory)
	if err != nil {
		return nil, err
	}
	log.Printf("==> Publishing %s", settings.OutputDirectory)
	copyStart := time.Now()
	files, err := publish.Copy(output, job.PublishDir)
	if err != nil {
		return nil, err
	}
	log.Printf("Published %s in %.2fs; build took %.1fs", plural(files, "file"), time.Since(copyStart).Seconds(), time.Since(start).Seconds())
	kept.built = true
	return &Result{Settings: settings.Settings, Files: files}, nil
}

// ErrForkNeedsSandbox is the error of a fork's pull request on an agent that has no sandbox.
var ErrForkNeedsSandbox = errors.New("pull requests from forks are built only in the sandbox, and this agent has none: " +
	"install bubblewrap (build.sandbox: auto or bwrap), or approve nothing from forks until then")

// cloneInTime is checkout bounded by the clone timeout; when ctx ends or the time is up it returns why.
func (b *Builder) cloneInTime(ctx context.Context, job Job, ws *workspace, log *Log) (message, author string, err error) {
	cloneCtx, cancel := context.WithTimeoutCause(ctx, b.cloneTimeout(), fmt.Errorf("clone timed out after %s", b.cloneTimeout()))
	defer cancel()
	message, author, err = b.checkout(cloneCtx, job, ws, log)
	if err != nil && cloneCtx.Err() != nil {
		return "", "", context.Cause(cloneCtx)
	}
	return message, author, err
}

// cloneTimeout is the clone step's bound.
func (b *Builder) cloneTimeout() time.Duration {
	if b.CloneTimeout > 0 {
		return b.CloneTimeout
	}
	return 5 * time.Minute
}

// newWorkspace creates the build's directories: the checkout, a home, a temporary directory, a
// bin directory for shims, and the project's build cache, cleared first for job.ClearCache. The
// workspace's path is the same for every build of a project (they never run at once), since some
// package managers write absolute paths into what they install.
func (b *Builder) newWorkspace(job Job, log *Log) (*workspace, error) {
	root := filepath.Join(b.WorkRoot, strconv.FormatInt(job.ProjectID, 10))
	if err := os.RemoveAll(root); err != nil {
		return nil, fmt.Errorf("clearing the workspace: %w", err)
	}
	ws := &workspace{root: root, src: filepath.Join(root, "src"), home: filepath.Join(root, "home"),
		tmp: filepath.Join(root, "tmp"), bin: filepath.Join(root, "bin"),
		git: filepath.Join(root, "git"), stores: filepath.Join(root, "stores")}
	switch {
	case job.NoCache:
		log.Printf("Build cache: not used by this build")
	case job.ClearCache:
		freed, err := b.Caches.Clear(job.ProjectID)
		if err != nil {
			return nil, err
		}
		log.Printf("Build cache: cleared (%.1f MiB freed); this build starts from nothing", float64(freed)/(1<<20))
	}
	if !job.NoCache {
		cache, err := b.Caches.Open(job.ProjectID)
		if err != nil {
			return nil, err
		}
		ws.cache, ws.git, ws.stores = cache, cache.Git(), cache.Stores()
	}
	for _, d := range []string{ws.src, ws.home, ws.tmp, ws.bin, ws.stores} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("creating the workspace: %w", err)
		}
	}
	if err := writeShims(ws.bin); err != nil {
		return nil, fmt.Errorf("creating the workspace: %w", err)
	}
	return ws, nil
}

// buildSettings are the settings a build uses, with the root directory cleaned.
type buildSettings struct {
	detect.Settings
	rootDir string
}

// settings detects the build settings from the checkout and lets the project's own override them.
func (b *Builder) settings(job Job, src string, log *Log) (buildSettings, error) {
	rootDir, err := detect.CleanRootDir(job.RootDirectory)
	if err != nil {
		return buildSettings{}, err
	}
	// Through an os.Root: a repository's symlinks must not lead detection to files outside it.
	root, err := os.OpenRoot(src)
	if err != nil {
		return buildSettings{}, fmt.Errorf("detecting build settings: %w", err)
	}
	defer root.Close()
	detected, err := detect.Detect(root.FS(), rootDir)
	if err != nil {
		return buildSettings{}, fmt.Errorf("detecting build settings: %w", err)
	}
	if job.Detected != nil {
		job.Detected(detected)
	}
	s := detected
	for _, o := range []struct {
		set string
		to  *string
	}{{job.Framework, &s.Framework}, {job.InstallCommand, &s.InstallCommand}, {job.BuildCommand, &s.BuildCommand},
		{job.OutputDirectory, &s.OutputDirectory}} {
		if o.set != "" {
			*o.to = o.set
		}
	}
	source := func(set string) string {
		if set != "" {
			return "project setting"
		}
		return "detected"
	}
	log.Printf("Framework: %s (%s)", s.Framework, source(job.Framework))
	log.Printf("Install:   %s (%s)", orNone(s.InstallCommand), source(job.InstallCommand))
	log.Printf("Build:     %s (%s)", orNone(s.BuildCommand), source(job.BuildCommand))
	log.Printf("Output:    %s (%s)", s.OutputDirectory, source(job.OutputDirectory))
	for _, note := range s.Notes {
		log.Printf("Note: %s", note)
	}
	if s.NodeVersion != "" && (s.InstallCommand != "" || s.BuildCommand != "") {
		if want, ok := detect.NodeMajor(s.NodeVersion); ok {
			have := NodeVersion()
			atLeast := strings.HasPrefix(strings.TrimSpace(s.NodeVersion), ">")
			if have != 0 && (have < want || (!atLeast && have != want)) {
				log.Printf("WARNING: the project asks for Node %s but this agent has Node %d", s.NodeVersion, have)
			}
		}
	}
	return buildSettings{Settings: s, rootDir: rootDir}, nil
}

// outputDir resolves the output directory of the project in rootDir (slash-separated, relative to
// the checkout src) and refuses one outside the checkout.
func outputDir(src, rootDir, output string) (string, error) {
	if filepath.IsAbs(output) {
		return "", fmt.Errorf("output directory %q must be relative to the project directory", output)
	}
	dir := filepath.Join(src, filepath.FromSlash(rootDir), filepath.FromSlash(output))
	real, err := filepath.EvalSymlinks(dir)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("build output directory %q not found: set the output directory (miaobu project set --output-dir)%s", output, listDirs(src, rootDir))
	}
	if err != nil {
		return "", fmt.Errorf("build output directory %q: %w", output, err)
	}
	realSrc, err := filepath.EvalSymlinks(src)
	if err != nil {
		return "", err
	}
	if !publish.Within(realSrc, real) {
		return "", fmt.Errorf("output directory %q is outside the checkout: nothing outside the build is published", output)
	}
	if publish.InGitDir(realSrc, real) {
		return "", fmt.Errorf("output directory %q is in .git: the repository's own files are never published", output)
	}
	if info, err := os.Stat(real); err != nil || !info.IsDir() {
		return "", fmt.Errorf("build output %q is not a directory", output)
	}
	return real, nil
}

// listDirs names the directories in rootDir of the checkout src, for an error message; through an
// os.Root, so a root directory that is a symlink out of the checkout lists nothing.
func listDirs(src, rootDir string) string {
	root, err := os.OpenRoot(src)
	if err != nil {
		return ""
	}
	defer root.Close()
	entries, err := fs.ReadDir(root.FS(), rootDir)
	if err != nil {
		return ""
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != ".git" && e.Name() != "node_modules" {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return ""
	}
	return "; directories present: " + strings.Join(names, ", ")
}

// logCommit logs the first line of a commit's message and its author, cut as the deployment keeps
// them: a message read from git may be of any size.
func logCommit(log *Log, message, author string) {
	line, _, _ := strings.Cut(store.LimitCommitMessage(message), "\n")
	log.Printf("Commit: %s — %s", line, store.LimitCommitAuthor(author))
}

// orNone shows an empty command as (none).
func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// plural writes a count with its noun, in the plural unless the count is one.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// withoutPassword returns a repository URL fit for a build log: its user information, which may be a
// token or a password, is replaced by "***".
func withoutPassword(repoURL string) string {
	u, err := url.Parse(repoURL)
	if err != nil || u.User == nil {
		return repoURL
	}
	u.User = nil
	return strings.Replace(u.String(), "//", "//***@", 1)
}
