package pipeline

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"
)

// keptRef is the ref of the kept repository that holds the last commit fetched, so git's garbage
// collection keeps its objects.
const keptRef = "refs/miaobu/fetched"

// checkout puts exactly job.CommitSHA into ws.src: fetched into the kept repository ws.git, then
// checked out from it into a fresh repository that borrows its objects. When the kept repository
// fails, a fresh clone replaces it once the commit is checked out from that; when the fresh clone
// fails too, the commit or the remote is at fault, not the kept repository, which stays. It
// returns the commit's message and author.
func (b *Builder) checkout(ctx context.Context, job Job, ws *workspace, log *Log) (message, author string, err error) {
	if _, err := os.Stat(ws.git); err != nil {
		if err := b.fetch(ctx, job, ws.git, log); err != nil {
			return "", "", err
		}
		return b.checkoutFrom(ctx, job, ws.git, ws.src, log)
	}
	log.Printf("Fetching into the kept repository")
	err = b.fetch(ctx, job, ws.git, log)
	if err == nil {
		if message, author, err = b.checkoutFrom(ctx, job, ws.git, ws.src, log); err == nil {
			return message, author, nil
		}
	}
	if ctx.Err() != nil {
		return "", "", err
	}
	log.Printf("The kept repository failed (%v): cloning afresh", err)
	fresh := filepath.Join(ws.root, "fresh.git")
	if err := os.RemoveAll(ws.src); err != nil {
		return "", "", err
	}
	if err := os.Mkdir(ws.src, 0o700); err != nil {
		return "", "", err
	}
	if err := b.fetch(ctx, job, fresh, log); err != nil {
		return "", "", err
	}
	if message, author, err = b.checkoutFrom(ctx, job, fresh, ws.src, log); err != nil {
		return "", "", err
	}
	if err := os.RemoveAll(ws.git); err != nil {
		return "", "", fmt.Errorf("replacing the kept repository: %w", err)
	}
	if err := os.Rename(fresh, ws.git); err != nil {
		return "", "", fmt.Errorf("replacing the kept repository: %w", err)
	}
	return message, author, borrow(ws.src, ws.git)
}

// fetch fetches job.CommitSHA into the bare repository dir, which it creates when there is none: a
// shallow fetch of that commit, and, for a server that refuses to serve a commit by its id, a fetch
// of the branch, which must contain it. The repository is fetched into by URL, so neither the URL nor a token is ever
// written into it.
func (b *Builder) fetch(ctx context.Context, job Job, dir string, log *Log) error {
	short := job.CommitSHA[:min(7, len(job.CommitSHA))]
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err != nil {
		init := []string{"init", "--quiet", "--bare"}
		if asRoot() {
			// A root agent's builds run as buildUser, who must read the objects the checkout borrows.
			init = append(init, "--shared=0644")
		}
		if _, err := b.gitIn(ctx, job, filepath.Dir(dir), log)(append(init, dir)...); err != nil {
			return err
		}
	}
	kept := b.gitIn(ctx, job, dir, log)
	// No garbage collection left running in the background while the build reads the repository.
	fetch := []string{"-c", "gc.autoDetach=false", "fetch", "--quiet", "--no-tags", "--no-write-fetch-head"}
	if job.Fork {
		return fetchPullHead(kept, fetch, job)
	}
	if _, err := kept(slices.Concat(fetch, []string{"--depth=1", "--", job.RepoURL, "+" + job.CommitSHA + ":" + keptRef})...); err != nil {
		// A missing repository, refused credentials or an unreachable host fail the branch the same way.
		if !isMissing(err) {
			return fmt.Errorf("cloning %s: %w", job.RepoURL, err)
		}
		log.Printf("Shallow fetch of the commit refused (%v); fetching branch %s", err, job.Branch)
		if _, err := kept(slices.Concat(fetch, []string{"--", job.RepoURL, "+refs/heads/" + job.Branch + ":" + keptRef})...); err != nil {
			if isMissing(err) {
				return fmt.Errorf("commit %s is not in the repository, and neither is branch %s", short, job.Branch)
			}
			return fmt.Errorf("cloning %s: %w", job.RepoURL, err)
		}
		// The kept repository may still hold the commit from before it was force-pushed away: it
		// is built only if the remote still has it, as a fresh clone would.
		if _, err := kept("merge-base", "--is-ancestor", job.CommitSHA, keptRef); err != nil {
			return errNotInRepository(short)
		}
	}
	return nil
}

// errNotInRepository is the error of a commit the repository does not hold.
func errNotInRepository(short string) error {
	return fmt.Errorf("commit %s is not in the repository (force-pushed away?)", short)
}

// fetchPullHead fetches the head of a fork's pull request into the bare repository of kept from
// the project's own repository, as refs/pull/<n>/head, and checks that it is the recorded commit:
// the fork itself is never asked.
func fetchPullHead(kept func(args ...string) ([]byte, error), fetch []string, job Job) error {
	ref := fmt.Sprintf("refs/pull/%d/head", job.PullRequest)
	if _, err := kept(slices.Concat(fetch, []string{"--depth=1", "--", job.RepoURL, "+" + ref + ":" + keptRef})...); err != nil {
		if isMissing(err) {
			return fmt.Errorf("%s is not in the repository: was pull request #%d closed?", ref, job.PullRequest)
		}
		return fmt.Errorf("fetching %s of %s: %w", ref, job.RepoURL, err)
	}
	head, err := kept("rev-parse", keptRef)
	if err != nil {
		return err
	}
	if got := strings.TrimSpace(string(head)); got != job.CommitSHA {
		return fmt.Errorf("the head of pull request #%d is now %s, not the recorded commit %s",
			job.PullRequest, got[:min(7, len(got))], job.CommitSHA[:min(7, len(job.CommitSHA))])
	}
	return nil
}

// checkoutFrom checks job.CommitSHA out of the bare repository kept into src, a new repository
// that borrows kept's objects, and verifies it is the recorded commit, never the branch tip in its
// place. It returns the commit's message and author.
func (b *Builder) checkoutFrom(ctx context.Context, job Job, kept, src string, log *Log) (message, author string, err error) {
	short := job.CommitSHA[:min(7, len(job.CommitSHA))]
	git := b.gitIn(ctx, job, src, log)
	if _, err := git("init", "--quiet"); err != nil {
		return "", "", err
	}
	if err := borrow(src, kept); err != nil {
		return "", "", err
	}
	if _, err := git("-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", job.CommitSHA); err != nil {
		if isMissing(err) {
			return "", "", errNotInRepository(short)
		}
		return "", "", fmt.Errorf("checking out commit %s: %w", short, err)
	}
	head, err := git("rev-parse", "HEAD")
	if err != nil {
		return "", "", err
	}
	if got := strings.TrimSpace(string(head)); got != job.CommitSHA {
		return "", "", fmt.Errorf("checked out %s instead of the recorded commit %s", got, job.CommitSHA)
	}
	info, err := git("log", "-1", "--format=%an%x00%B")
	if err != nil {
		return "", "", err
	}
	author, message, _ = strings.Cut(string(info), "\x00")
	log.Printf("Checked out %s", job.CommitSHA)
	return strings.TrimSpace(message), author, nil
}

// borrow makes the repository in src use the objects of the bare repository kept, and stop where
// kept's shallow history stops, so that git in the build neither copies them nor fails.
func borrow(src, kept string) error {
	objects, err := filepath.Abs(filepath.Join(kept, "objects"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, ".git", "objects", "info", "alternates"), []byte(objects+"\n"), 0o600); err != nil {
		return err
	}
	shallow, err := os.ReadFile(filepath.Join(kept, "shallow"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(src, ".git", "shallow"), shallow, 0o600)
}

// gitIn returns a function that runs git in dir with gitEnv and returns its output; a failure says
// in a few words what git said, with the log's secrets masked.
func (b *Builder) gitIn(ctx context.Context, job Job, dir string, log *Log) func(args ...string) ([]byte, error) {
	return func(args ...string) ([]byte, error) {
		return Git(ctx, dir, b.gitEnv(job), log.Redact, args...)
	}
}

// gitVerb is the git command among args, after any -c options.
func gitVerb(args []string) string {
	for i := 0; i < len(args); i++ {
		if args[i] == "-c" {
			i++
			continue
		}
		return args[i]
	}
	return "git"
}

// Git runs git with args in dir (none: the agent's) and env, started like a build's commands so that
// it is killed whole with ctx and reaped, and returns its stdout. When git fails, the error says in a
// few words what git wrote on stderr, passed through redact (when not nil) first.
func Git(ctx context.Context, dir string, env []string, redact func(string) string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := startTracked(cmd)
	if err == nil {
		err = waitTracked(cmd)
	}
	if err != nil {
		text := stderr.String()
		if redact != nil {
			text = redact(text)
		}
		if failure := explainGit(text); failure.summary != "" {
			return stdout.Bytes(), &failure
		}
		return stdout.Bytes(), fmt.Errorf("git %s: %w", gitVerb(args), err)
	}
	return stdout.Bytes(), nil
}

// gitEnv is git's environment: the agent's home (for its SSH keys and known hosts) but none of its
// other variables, no prompts, and the GitHub token as an HTTP header, never in the URL (nor at
// all for a fork's pull request).
func (b *Builder) gitEnv(job Job) []string {
	env := []string{"PATH=" + b.path(), "GIT_TERMINAL_PROMPT=0", "GIT_SSH_COMMAND=ssh -o BatchMode=yes", "LANG=C"}
	for _, name := range []string{"HOME", "SSH_AUTH_SOCK"} {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	if u, err := url.Parse(job.RepoURL); err == nil && job.GitHub && !job.Fork && b.GitHubToken != "" && u.Scheme == "https" {
		basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + b.GitHubToken))
		env = append(env, "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.extraHeader",
			"GIT_CONFIG_VALUE_0=Authorization: Basic "+basic)
	}
	return env
}

// gitFailure is what a failed git command wrote on stderr, said in a few words a deployment's error
// can show.
type gitFailure struct {
	summary string
	// missing reports that the commit or branch asked for is not in the repository.
	missing bool
}

func (f *gitFailure) Error() string { return f.summary }

// isMissing reports whether err is git saying the commit or branch asked for is not in the repository.
func isMissing(err error) bool {
	var f *gitFailure
	return errors.As(err, &f) && f.missing
}

// maxGitSummary bounds, in runes, what a deployment's error quotes of git's stderr.
const maxGitSummary = 300

// gitPrefixes start lines of git's stderr and say nothing about what went wrong.
var gitPrefixes = []string{"fatal:", "error:", "remote:", "remote error:", "upload-pack:", "git upload-pack:"}

// gitNoise are lines of git's stderr that explain nothing the line before them has not said.
var gitNoise = []string{"Could not read from remote repository.", "Please make sure you have the correct access rights",
	"and the repository exists."}

// gitMissing are what git says when a repository exists but has not the commit or branch asked for.
var gitMissing = []string{"not our ref", "reference is not a tree", "couldn't find remote ref", "unadvertised object",
	"did not match any", "bad object", "unable to read tree"}

// gitAuth are what git and ssh say when the repository wants credentials it did not get.
var gitAuth = []string{"could not read Username", "could not read Password", "Authentication failed", "Permission denied (publickey"}

// explainGit turns git's stderr into one line: "repository not found", "authentication failed: …",
// "cannot reach the repository: …", or git's own complaints without their "fatal:" prefixes.
func explainGit(stderr string) gitFailure {
	var lines []string
	// Progress lines end in a carriage return.
	for _, line := range strings.FieldsFunc(stderr, func(r rune) bool { return r == '\n' || r == '\r' }) {
		line = strings.TrimSpace(line)
		for stripped := true; stripped; {
			stripped = false
			for _, prefix := range gitPrefixes {
				if rest, ok := strings.CutPrefix(line, prefix); ok {
					line, stripped = strings.TrimSpace(rest), true
				}
			}
		}
		if line == "" || strings.HasPrefix(line, "hint:") || slices.ContainsFunc(gitNoise, func(n string) bool { return strings.HasPrefix(line, n) }) {
			continue
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 {
		// Only hints and boilerplate: better than nothing.
		lines = []string{strings.Join(strings.Fields(stderr), " ")}
	}
	containing := func(needles []string) string {
		for _, line := range lines {
			for _, n := range needles {
				if strings.Contains(strings.ToLower(line), strings.ToLower(n)) {
					return line
				}
			}
		}
		return ""
	}
	f := gitFailure{summary: strings.Join(lines, "; ")}
	if line := containing(gitMissing); line != "" {
		f = gitFailure{summary: line, missing: true}
	} else if containing([]string{"does not appear to be a git repository", "repository not found"}) != "" ||
		slices.ContainsFunc(lines, func(l string) bool {
			return strings.HasPrefix(l, "repository '") && strings.HasSuffix(l, "' not found")
		}) {
		f.summary = "repository not found"
	} else if line := containing(gitAuth); line != "" {
		f.summary = "authentication failed: " + line
	} else if line := containing([]string{"unable to access '"}); line != "" {
		_, reason, _ := strings.Cut(line, "': ")
		f.summary = "cannot reach the repository: " + reason
	}
	if utf8.RuneCountInString(f.summary) > maxGitSummary {
		f.summary = string([]rune(f.summary)[:maxGitSummary]) + "…"
	}
	return f
}
