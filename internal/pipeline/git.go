package pipeline

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// keptRef is the ref of the kept repository that holds the last commit fetched, so git's garbage
// collection keeps its objects.
const keptRef = "refs/miaobu/fetched"

// checkout puts exactly job.CommitSHA into ws.src: fetched into the kept repository ws.git, then
// checked out from it into a fresh repository that borrows its objects. A kept repository that
// fails is replaced by a fresh clone. It returns the commit's message and author.
func (b *Builder) checkout(ctx context.Context, job Job, ws *workspace, log *Log) (message, author string, err error) {
	if _, err := os.Stat(ws.git); err == nil {
		log.Printf("Fetching into the kept repository")
		message, author, err := b.fetchAndCheckout(ctx, job, ws, log)
		if err == nil || ctx.Err() != nil {
			return message, author, err
		}
		log.Printf("The kept repository failed (%v): cloning afresh", err)
		for _, dir := range []string{ws.git, ws.src} {
			if err := os.RemoveAll(dir); err != nil {
				return "", "", fmt.Errorf("removing the kept repository: %w", err)
			}
		}
		if err := os.Mkdir(ws.src, 0o700); err != nil {
			return "", "", err
		}
	}
	return b.fetchAndCheckout(ctx, job, ws, log)
}

// fetchAndCheckout fetches job.CommitSHA into ws.git, a bare repository it creates when there is
// none: a shallow fetch of that commit, and, for a server that refuses to serve a commit by its id,
// a fetch of the branch. The repository is fetched into by URL, so neither the URL nor a token is
// ever written into it. Then it checks the commit out into ws.src, verified to be the recorded
// commit, never the branch tip in its place.
func (b *Builder) fetchAndCheckout(ctx context.Context, job Job, ws *workspace, log *Log) (message, author string, err error) {
	kept := b.gitIn(ctx, job, ws.git, log)
	if _, err := os.Stat(filepath.Join(ws.git, "HEAD")); err != nil {
		if err := os.MkdirAll(ws.git, 0o700); err != nil {
			return "", "", err
		}
		if _, err := kept("init", "--quiet", "--bare"); err != nil {
			return "", "", err
		}
	}
	// No garbage collection left running in the background while the build reads the repository.
	fetch := []string{"-c", "gc.autoDetach=false", "fetch", "--quiet", "--no-tags", "--no-write-fetch-head"}
	if _, err := kept(slices.Concat(fetch, []string{"--depth=1", "--", job.RepoURL, "+" + job.CommitSHA + ":" + keptRef})...); err != nil {
		log.Printf("Shallow fetch of the commit refused (%v); fetching branch %s", err, job.Branch)
		if _, err := kept(slices.Concat(fetch, []string{"--", job.RepoURL, "+refs/heads/" + job.Branch + ":" + keptRef})...); err != nil {
			return "", "", fmt.Errorf("cloning %s: %w", job.RepoURL, err)
		}
	}

	git := b.gitIn(ctx, job, ws.src, log)
	if _, err := git("init", "--quiet"); err != nil {
		return "", "", err
	}
	objects, err := filepath.Abs(filepath.Join(ws.git, "objects"))
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(ws.src, ".git", "objects", "info", "alternates"), []byte(objects+"\n"), 0o600); err != nil {
		return "", "", err
	}
	// The kept repository's shallow boundary, so git in the build stops there instead of failing.
	if shallow, err := os.ReadFile(filepath.Join(ws.git, "shallow")); err == nil {
		if err := os.WriteFile(filepath.Join(ws.src, ".git", "shallow"), shallow, 0o600); err != nil {
			return "", "", err
		}
	}
	if _, err := git("-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", job.CommitSHA); err != nil {
		return "", "", fmt.Errorf("commit %s is not in %s (force-pushed away?): %w", job.CommitSHA, job.RepoURL, err)
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

// gitIn returns a function that runs git in dir with gitEnv and returns its output; a failure
// carries git's complaint, with the log's secrets masked.
func (b *Builder) gitIn(ctx context.Context, job Job, dir string, log *Log) func(args ...string) ([]byte, error) {
	return func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
		cmd.Env = b.gitEnv(job)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			msg := strings.TrimSpace(log.Redact(stderr.String()))
			if msg == "" {
				msg = err.Error()
			}
			return out, fmt.Errorf("git %s: %s", gitVerb(args), msg)
		}
		return out, nil
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

// gitEnv is git's environment: the agent's home (for its SSH keys and known hosts) but none of its
// other variables, no prompts, and the GitHub token as an HTTP header, never in the URL.
func (b *Builder) gitEnv(job Job) []string {
	env := []string{"PATH=" + b.path(), "GIT_TERMINAL_PROMPT=0", "GIT_SSH_COMMAND=ssh -o BatchMode=yes", "LANG=C"}
	for _, name := range []string{"HOME", "SSH_AUTH_SOCK"} {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	if u, err := url.Parse(job.RepoURL); err == nil && job.GitHub && b.GitHubToken != "" && u.Scheme == "https" {
		basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + b.GitHubToken))
		env = append(env, "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.extraHeader",
			"GIT_CONFIG_VALUE_0=Authorization: Basic "+basic)
	}
	return env
}
