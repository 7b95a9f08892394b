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
	"slices"
	"strings"
	"unicode/utf8"
)

// clone checks out exactly job.CommitSHA into dir: a shallow fetch of that commit, and, for a
// server that refuses to serve a commit by its id, a fetch of the branch; either way the checkout
// is verified to be the recorded commit, never the branch tip in its place. It returns the
// commit's message and author.
func (b *Builder) clone(ctx context.Context, job Job, dir string, log *Log) (message, author string, err error) {
	git := func(args ...string) ([]byte, error) { return b.git(ctx, job, dir, log.Redact, args...) }
	short := job.CommitSHA[:min(7, len(job.CommitSHA))]
	if _, err := git("init", "--quiet"); err != nil {
		return "", "", err
	}
	if _, err := git("remote", "add", "origin", job.RepoURL); err != nil {
		return "", "", err
	}
	if _, err := git("fetch", "--quiet", "--depth=1", "--no-tags", "origin", job.CommitSHA); err != nil {
		// A missing repository, refused credentials or an unreachable host fail the branch the same way.
		if !isMissing(err) {
			return "", "", fmt.Errorf("cloning %s: %w", job.RepoURL, err)
		}
		log.Printf("Shallow fetch of the commit refused (%v); fetching branch %s", err, job.Branch)
		if _, err := git("fetch", "--quiet", "--no-tags", "origin", "refs/heads/"+job.Branch); err != nil {
			if isMissing(err) {
				return "", "", fmt.Errorf("commit %s is not in the repository, and neither is branch %s", short, job.Branch)
			}
			return "", "", fmt.Errorf("cloning %s: %w", job.RepoURL, err)
		}
	}
	if _, err := git("-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", job.CommitSHA); err != nil {
		if isMissing(err) {
			return "", "", fmt.Errorf("commit %s is not in the repository (force-pushed away?)", short)
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

// git runs git with args in dir for job and returns its standard output; a failure says in a few
// words what git wrote on stderr, with redact applied to it first.
func (b *Builder) git(ctx context.Context, job Job, dir string, redact func(string) string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	cmd.Env = b.gitEnv(job)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := startTracked(cmd)
	if err == nil {
		err = waitTracked(cmd)
	}
	out := stdout.Bytes()
	if err != nil {
		if failure := explainGit(redact(stderr.String())); failure.summary != "" {
			return out, &failure
		}
		return out, fmt.Errorf("git %s: %w", args[0], err)
	}
	return out, nil
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
