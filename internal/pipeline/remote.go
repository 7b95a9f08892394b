package pipeline

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// LsRemote returns the commits that refs (full names such as refs/heads/main) point to in the
// repository at repoURL, read with one `git ls-remote` in the builds' git environment and with
// their credentials (with github, the GitHub token for an https URL); a ref the repository lacks
// is absent from the map. Credentials in repoURL never appear in an error.
func (b *Builder) LsRemote(ctx context.Context, repoURL string, github bool, refs ...string) (map[string]string, error) {
	out, err := Git(ctx, os.TempDir(), b.gitEnv(Job{RepoURL: repoURL, GitHub: github}), redactURL(repoURL),
		append([]string{"ls-remote", "--", repoURL}, refs...)...)
	if err != nil {
		return nil, fmt.Errorf("reading the branches of the repository: %w", err)
	}
	heads := map[string]string{}
	for line := range strings.Lines(string(out)) {
		if sha, ref, ok := strings.Cut(strings.TrimSpace(line), "\t"); ok {
			heads[ref] = sha
		}
	}
	return heads, nil
}

// CommitInfo returns the message and author of commit sha, the head of branch in the repository at
// repoURL, read from a shallow fetch of the branch without file contents into a temporary
// repository under WorkRoot (servers need not serve a commit by its id). It fails when the branch has moved on since.
func (b *Builder) CommitInfo(ctx context.Context, repoURL string, github bool, branch, sha string) (message, author string, err error) {
	if err := os.MkdirAll(b.WorkRoot, 0o700); err != nil {
		return "", "", err
	}
	dir, err := os.MkdirTemp(b.WorkRoot, "commit-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(dir)
	env, redact := b.gitEnv(Job{RepoURL: repoURL, GitHub: github}), redactURL(repoURL)
	if _, err := Git(ctx, dir, env, redact, "init", "--quiet", "--bare"); err != nil {
		return "", "", err
	}
	// The commit alone: no file of its tree is downloaded (a server without filters sends them anyway).
	if _, err := Git(ctx, dir, env, redact, "fetch", "--quiet", "--depth=1", "--filter=blob:none", "--no-tags", "--", repoURL, "refs/heads/"+branch); err != nil {
		return "", "", fmt.Errorf("fetching branch %s: %w", branch, err)
	}
	// Asked of the fetched head, not of sha: git would fetch a missing sha from a filtered remote.
	head, err := Git(ctx, dir, env, redact, "rev-parse", "FETCH_HEAD")
	if err != nil {
		return "", "", err
	}
	if strings.TrimSpace(string(head)) != sha {
		return "", "", fmt.Errorf("branch %s has moved on from %s", branch, sha[:min(7, len(sha))])
	}
	info, err := Git(ctx, dir, env, redact, "log", "-1", "--format=%an%x00%B", "FETCH_HEAD", "--")
	if err != nil {
		return "", "", err
	}
	author, message, _ = strings.Cut(string(info), "\x00")
	return strings.TrimSpace(message), author, nil
}

// redactURL returns a function that masks the user name and password that repoURL carries, if
// any, in a message of git's.
func redactURL(repoURL string) func(string) string {
	u, err := url.Parse(repoURL)
	if err != nil || u.User == nil {
		return func(s string) string { return s }
	}
	password, _ := u.User.Password()
	var secrets []string
	for _, s := range []string{u.User.String(), password, u.User.Username()} {
		if s != "" {
			secrets = append(secrets, s)
		}
	}
	return func(s string) string {
		for _, secret := range secrets {
			s = strings.ReplaceAll(s, secret, "***")
		}
		return s
	}
}

// ChangedFiles returns the paths that differ between commits from and to of the repository at
// repoURL, read from a fetch of the two commits alone (their trees, no file contents) into a
// temporary repository under WorkRoot. It fails when the remote does not serve a commit by its id
// (or no longer has it); callers then cannot tell what changed.
func (b *Builder) ChangedFiles(ctx context.Context, repoURL string, github bool, from, to string) ([]string, error) {
	if err := os.MkdirAll(b.WorkRoot, 0o700); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(b.WorkRoot, "changes-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	env, redact := b.gitEnv(Job{RepoURL: repoURL, GitHub: github}), redactURL(repoURL)
	if _, err := Git(ctx, dir, env, redact, "init", "--quiet", "--bare"); err != nil {
		return nil, err
	}
	if _, err := Git(ctx, dir, env, redact, "fetch", "--quiet", "--depth=1", "--filter=blob:none", "--no-tags", "--", repoURL, from, to); err != nil {
		return nil, fmt.Errorf("fetching commits %s and %s: %w", from[:min(7, len(from))], to[:min(7, len(to))], err)
	}
	out, err := Git(ctx, dir, env, redact, "diff", "--name-only", "--no-renames", "-z", from, to, "--")
	if err != nil {
		return nil, err
	}
	return strings.FieldsFunc(string(out), func(r rune) bool { return r == 0 }), nil
}
