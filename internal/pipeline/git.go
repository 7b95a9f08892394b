package pipeline

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
)

// clone checks out exactly job.CommitSHA into dir: a shallow fetch of that commit, and, for a
// server that refuses to serve a commit by its id, a fetch of the branch; either way the checkout
// is verified to be the recorded commit, never the branch tip in its place. It returns the
// commit's message and author.
func (b *Builder) clone(ctx context.Context, job Job, dir string, log *Log) (message, author string, err error) {
	git := func(args ...string) ([]byte, error) {
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
			return out, fmt.Errorf("git %s: %s", args[0], msg)
		}
		return out, nil
	}
	if _, err := git("init", "--quiet"); err != nil {
		return "", "", err
	}
	if _, err := git("remote", "add", "origin", job.RepoURL); err != nil {
		return "", "", err
	}
	if _, err := git("fetch", "--quiet", "--depth=1", "--no-tags", "origin", job.CommitSHA); err != nil {
		log.Printf("Shallow fetch of the commit refused (%v); fetching branch %s", err, job.Branch)
		if _, err := git("fetch", "--quiet", "--no-tags", "origin", "refs/heads/"+job.Branch); err != nil {
			return "", "", fmt.Errorf("cloning %s: %w", job.RepoURL, err)
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
