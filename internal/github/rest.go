package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	gogithub "github.com/google/go-github/v60/github"

	"github.com/miaobu/miaobu/internal/clock"
)

// DefaultAPIURL is the REST API root of github.com.
const DefaultAPIURL = "https://api.github.com/"

// Options configure a Client.
type Options struct {
	// APIURL is the REST API root (github.api_url): DefaultAPIURL when empty, or a GitHub
	// Enterprise root such as https://ghe.example.com/api/v3/. It is used as given.
	APIURL string
	// Token authenticates every request as a bearer token; calls fail with ErrNoToken without one.
	Token string
	// HTTPClient sends the requests; nil means a client with a 30-second timeout.
	HTTPClient *http.Client
	// WriteInterval is the least time between two requests that create or change content
	// (github.write_interval); zero sends them at once.
	WriteInterval time.Duration
	// Clock paces those requests; the system clock when nil.
	Clock clock.Clock
}

// Client calls the GitHub REST API on behalf of the agent; it is safe for concurrent use.
type Client struct {
	gh       *gogithub.Client
	apiURL   string
	hasToken bool
	// token is kept only to be cut out of what GitHub's answers say, should one echo it.
	token string
}

// New returns a Client for opts; it fails only for a malformed API URL.
func New(opts Options) (*Client, error) {
	apiURL := opts.APIURL
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	if !strings.HasSuffix(apiURL, "/") {
		apiURL += "/"
	}
	base, err := url.Parse(apiURL)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("GitHub API URL %q is not an http(s) URL such as %s", opts.APIURL, DefaultAPIURL)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	if opts.HTTPClient != nil {
		copied := *opts.HTTPClient
		hc = &copied
	}
	// The token is added by the transport to every request, redirected ones too: follow no
	// redirect away from the API's host, so that it never reaches another server.
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != base.Host || len(via) >= 10 {
			return fmt.Errorf("GitHub API redirected to %s://%s, away from %s: not followed", req.URL.Scheme, req.URL.Host, base.Host)
		}
		return nil
	}
	if opts.WriteInterval > 0 {
		next, clk := hc.Transport, opts.Clock
		if next == nil {
			next = http.DefaultTransport
		}
		if clk == nil {
			clk = clock.System{}
		}
		hc.Transport = &pacedTransport{pacer: &pacer{interval: opts.WriteInterval, clock: clk}, next: next}
	}
	gh := gogithub.NewClient(hc)
	if opts.Token != "" {
		gh = gh.WithAuthToken(opts.Token)
	}
	gh.BaseURL = base
	gh.UserAgent = "miaobu"
	return &Client{gh: gh, apiURL: base.String(), hasToken: opts.Token != "", token: opts.Token}, nil
}

// repoNamePart matches an owner or repository name as GitHub allows them.
var repoNamePart = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// check refuses calls without a token, and owner or repository names that would change the
// request's path (go-github puts them into it unescaped).
func (c *Client) check(owner, repo string) error {
	if !c.hasToken {
		return ErrNoToken
	}
	for _, part := range []string{owner, repo} {
		if !repoNamePart.MatchString(part) || part == "." || part == ".." {
			return fmt.Errorf("%w: %q is not a GitHub OWNER/REPO", ErrInvalidRepository, owner+"/"+repo)
		}
	}
	return nil
}

// Repository describes a GitHub repository.
type Repository struct {
	ID            int64
	FullName      string // OWNER/REPO
	DefaultBranch string
	CloneURL      string // https clone URL, without credentials
	HTMLURL       string
	Private       bool
}

// Repository reads owner/repo.
func (c *Client) Repository(ctx context.Context, owner, repo string) (Repository, error) {
	if err := c.check(owner, repo); err != nil {
		return Repository{}, err
	}
	r, resp, err := c.gh.Repositories.Get(ctx, owner, repo)
	if err != nil {
		return Repository{}, c.apiError(err, resp, fmt.Sprintf("repository %s/%s not found or the token cannot see it", owner, repo), "")
	}
	return Repository{
		ID:            r.GetID(),
		FullName:      r.GetFullName(),
		DefaultBranch: r.GetDefaultBranch(),
		CloneURL:      r.GetCloneURL(),
		HTMLURL:       r.GetHTMLURL(),
		Private:       r.GetPrivate(),
	}, nil
}

// Commit is the commit at the tip of a branch.
type Commit struct {
	SHA     string
	Message string
	Author  string // the git author's name, else the GitHub login
}

// CommitInfo returns the commit sha of owner/repo with its message and author (GET
// /repos/{o}/{r}/commits/{sha}); a pull request's payload carries neither.
func (c *Client) CommitInfo(ctx context.Context, owner, repo, sha string) (Commit, error) {
	if err := c.check(owner, repo); err != nil {
		return Commit{}, err
	}
	if !ValidSHA(sha) {
		return Commit{}, fmt.Errorf("%q is not a full commit SHA", sha)
	}
	rc, resp, err := c.gh.Repositories.GetCommit(ctx, owner, repo, sha, nil)
	if err != nil {
		return Commit{}, c.apiError(err, resp, fmt.Sprintf("commit %s not found in %s/%s, or the token cannot see the repository", sha[:7], owner, repo), "")
	}
	return commitOf(rc), nil
}

// commitOf is the commit of a repository commit, its author named by git or, failing that, by
// their GitHub login.
func commitOf(rc *gogithub.RepositoryCommit) Commit {
	author := rc.GetCommit().GetAuthor().GetName()
	if author == "" {
		author = rc.GetAuthor().GetLogin()
	}
	return Commit{SHA: rc.GetSHA(), Message: rc.GetCommit().GetMessage(), Author: author}
}

// BranchTip returns the commit at the tip of branch in owner/repo.
func (c *Client) BranchTip(ctx context.Context, owner, repo, branch string) (Commit, error) {
	if err := c.check(owner, repo); err != nil {
		return Commit{}, err
	}
	if branch == "" {
		return Commit{}, errors.New("no branch given")
	}
	// No redirect is followed: GitHub answers 301 for a renamed branch, and the project must
	// then be told the new name rather than deploy another branch silently.
	b, resp, err := c.gh.Repositories.GetBranch(ctx, owner, repo, branch, 0)
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusMovedPermanently {
			return Commit{}, &Error{Kind: ErrNotFound, StatusCode: resp.StatusCode,
				Message: fmt.Sprintf("branch %s of %s/%s was renamed on GitHub: set the project's branch to its new name", branch, owner, repo)}
		}
		return Commit{}, c.apiError(err, resp, fmt.Sprintf("branch %s not found in %s/%s, or the token cannot see the repository", branch, owner, repo), "")
	}
	rc := b.GetCommit()
	if !ValidSHA(rc.GetSHA()) {
		return Commit{}, &Error{Kind: ErrUnavailable, StatusCode: resp.StatusCode,
			Message: fmt.Sprintf("GitHub answered no commit SHA for branch %s of %s/%s", branch, owner, repo)}
	}
	return commitOf(rc), nil
}
