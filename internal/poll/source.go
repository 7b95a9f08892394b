package poll

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miaobu/miaobu/internal/clock"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/trigger"
)

// source reads the heads of projects' repositories.
type source interface {
	// heads returns the heads of the production branch, of the preview branches and, when asked,
	// of the open pull requests.
	heads(ctx context.Context, p Project) (listing, error)
	// commit returns the message and author of a head's commit.
	commit(ctx context.Context, p Project, h Head) (message, author string, err error)
	// pausedUntil is when the source may be asked again after a rate limit, zero when it may now.
	pausedUntil() time.Time
}

// listing is what a source read of a project's repository.
type listing struct {
	heads []Head
	// pullsListed says heads has every open pull request.
	pullsListed bool
	// goneBranches are the branches of previews that are up that the repository no longer has.
	goneBranches []string
	// failed says why some heads other than production's could not be read: those are missing
	// from heads, and neither gone nor closed.
	failed error
	// cut names the listings that stopped before their end without an error (at github.MaxPages,
	// or at a Link back): the branches or pull requests after it are not seen.
	cut []string
}

// goneBranches returns the branches of p's branch previews that are up but not among branches, the
// repository's.
func goneBranches(p Project, branches func(string) bool) []string {
	var gone []string
	for _, pv := range p.Previews {
		if pv.PullRequest == 0 && pv.Branch != p.Branch && !branches(pv.Branch) {
			gone = append(gone, pv.Branch)
		}
	}
	return gone
}

// gitSource reads any git remote with `git ls-remote`, one call per project and check.
type gitSource struct {
	git Git
	// timeout is the CheckTimeout that ends the git commands of a check.
	timeout time.Duration
}

func (g *gitSource) heads(ctx context.Context, p Project) (listing, error) {
	ref := "refs/heads/" + p.Branch
	pattern := ref
	every := len(p.PreviewBranches) > 0 || slices.ContainsFunc(p.Previews, func(pv Preview) bool { return pv.PullRequest == 0 })
	if every {
		pattern = "refs/heads/*"
	}
	refs, err := g.git.LsRemote(ctx, p.RepoURL, p.Repo != "", pattern)
	if err != nil {
		return listing{}, timedOut(ctx, err, "git ls-remote", g.timeout)
	}
	sha, ok := refs[ref]
	if !ok {
		return listing{}, fmt.Errorf("branch %s not found in the repository", p.Branch)
	}
	l := listing{heads: []Head{{Branch: p.Branch, SHA: sha}}}
	for _, r := range slices.Sorted(maps.Keys(refs)) {
		if branch, ok := strings.CutPrefix(r, "refs/heads/"); ok && branch != p.Branch && trigger.Match(p.PreviewBranches, branch) {
			l.heads = append(l.heads, Head{Branch: branch, SHA: refs[r]})
		}
	}
	if every {
		l.goneBranches = goneBranches(p, func(branch string) bool { return refs["refs/heads/"+branch] != "" })
	}
	return l, nil
}

func (g *gitSource) commit(ctx context.Context, p Project, h Head) (string, string, error) {
	message, author, err := g.git.CommitInfo(ctx, p.RepoURL, p.Repo != "", h.Branch, h.SHA)
	return message, author, timedOut(ctx, err, "git fetch of the head commit", g.timeout)
}

// timedOut returns err, the failure of what under ctx, or when ctx's deadline ended it (the killed
// git process or the cancelled request says nothing of why) that what timed out after timeout.
func timedOut(ctx context.Context, err error, what string, timeout time.Duration) error {
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s timed out after %s", what, timeout)
	}
	return err
}

func (g *gitSource) pausedUntil() time.Time { return time.Time{} }

// lowRate is the share of the rate limit below which polling GitHub waits for the limit's reset,
// leaving the rest to the agent's other calls (imports, reports).
const lowRate = 0.1

// maxPause is the longest rate-limit pause: GitHub's primary limit is per hour, so a reset or a
// Retry-After further away is a wrong clock or a wrong answer, not a reason to stop for a day.
const maxPause = time.Hour

// githubSource reads GitHub repositories through the REST API with conditional requests: it keeps
// the last SHA of each branch and the ETag of each pull request listing, so an unchanged
// repository costs no rate limit. It pauses every request while the rate limit is low or spent.
type githubSource struct {
	gh    *github.Client
	clock clock.Clock
	// timeout is the CheckTimeout that ends the requests of a check.
	timeout time.Duration

	mu sync.Mutex
	// shas are the last SHA seen of each project's branches, pulls the last listing of its open
	// pull requests, branches the last listing of its branches.
	shas     map[knownBranch]string
	pulls    map[int64]*pagedListing[github.OpenPullRequest]
	branches map[int64]*pagedListing[github.Branch]
	// rate is what GitHub said last of the rate limit; pause is when polling may go on, and
	// refused says a request was refused for the rate limit then (not only that it ran low).
	rate    github.Rate
	pause   time.Time
	refused bool
}

// knownBranch names a branch of a project's repository whose last SHA is kept.
type knownBranch struct {
	project      int64
	repo, branch string
}

// pagedListing is the last listing of a repository's branches or open pull requests, page by
// page with their ETags.
type pagedListing[T any] struct {
	repo  string
	pages []github.Page[T]
}

// lastPages returns the pages of the last listing of p's repository kept in listings, none when
// there is none or it was of another repository.
func lastPages[T any](g *githubSource, listings map[int64]*pagedListing[T], p Project) []github.Page[T] {
	g.mu.Lock()
	defer g.mu.Unlock()
	if known := listings[p.ID]; known != nil && known.repo == p.Repo {
		return known.pages
	}
	return nil
}

// keepPages keeps pages as the last listing of p's repository in listings.
func keepPages[T any](g *githubSource, listings map[int64]*pagedListing[T], p Project, pages []github.Page[T]) {
	g.mu.Lock()
	defer g.mu.Unlock()
	listings[p.ID] = &pagedListing[T]{repo: p.Repo, pages: pages}
}

// newGitHubSource returns a githubSource of gh whose requests end after timeout.
func newGitHubSource(gh *github.Client, c clock.Clock, timeout time.Duration) *githubSource {
	return &githubSource{gh: gh, clock: c, timeout: timeout, shas: map[knownBranch]string{},
		pulls: map[int64]*pagedListing[github.OpenPullRequest]{}, branches: map[int64]*pagedListing[github.Branch]{}}
}

func (g *githubSource) heads(ctx context.Context, p Project) (listing, error) {
	owner, name, _ := strings.Cut(p.Repo, "/")
	sha, err := g.branchHead(ctx, p, owner, name, p.Branch)
	if err != nil {
		return listing{}, err
	}
	l := listing{heads: []Head{{Branch: p.Branch, SHA: sha}}}
	// Branches matching a pattern are found in the listing of every branch; the others (named
	// preview branches, and those with a preview up) are asked for one by one, unless the listing
	// has them: a 304 costs nothing, and a branch missing from the listing is confirmed gone.
	listed, complete := map[string]string{}, false
	var errs []error
	if listsBranches(p) {
		if listed, complete, err = g.listBranches(ctx, p, owner, name); err != nil {
			errs = append(errs, err)
		} else if !complete {
			l.cut = append(l.cut, "branches")
		}
		for _, branch := range slices.Sorted(maps.Keys(listed)) {
			if branch != p.Branch && trigger.Match(p.PreviewBranches, branch) {
				l.heads = append(l.heads, Head{Branch: branch, SHA: listed[branch]})
			}
		}
	}
	up := map[string]bool{}
	for _, pv := range p.Previews {
		if pv.PullRequest == 0 {
			up[pv.Branch] = true
		}
	}
	branches := previewBranches(p)
	for _, branch := range branches {
		if sha, ok := listed[branch]; ok {
			if !trigger.Match(p.PreviewBranches, branch) {
				l.heads = append(l.heads, Head{Branch: branch, SHA: sha})
			}
			continue
		}
		if complete && !up[branch] {
			continue // not pushed yet
		}
		sha, err := g.branchHead(ctx, p, owner, name, branch)
		switch {
		case errors.Is(err, github.ErrNotFound):
			if up[branch] {
				l.goneBranches = append(l.goneBranches, branch)
			}
			continue
		case err != nil:
			// One branch that cannot be read holds up none of the others.
			errs = append(errs, err)
			continue
		}
		l.heads = append(l.heads, Head{Branch: branch, SHA: sha})
	}
	g.mu.Lock()
	maps.DeleteFunc(g.shas, func(k knownBranch, _ string) bool {
		return k.project == p.ID && (k.repo != p.Repo || (k.branch != p.Branch && !slices.Contains(branches, k.branch)))
	})
	if !listsBranches(p) {
		delete(g.branches, p.ID)
	}
	g.mu.Unlock()
	if p.PullRequests {
		pulls, complete, err := g.openPullRequests(ctx, p, owner, name)
		l.heads, l.pullsListed = append(l.heads, pulls...), err == nil && complete
		errs = append(errs, err)
		if err == nil && !complete {
			l.cut = append(l.cut, "open pull requests")
		}
	}
	l.failed = errors.Join(errs...)
	return l, nil
}

// listsBranches reports whether p's preview branches are found in the listing of every branch:
// when a pattern of preview_branches is more than a branch's name.
func listsBranches(p Project) bool {
	return slices.ContainsFunc(p.PreviewBranches, func(pattern string) bool { return !literal(pattern) })
}

// literal reports whether a pattern of preview_branches matches one branch, its own name.
func literal(pattern string) bool {
	return !strings.HasPrefix(pattern, "!") && !strings.ContainsAny(pattern, `*?[]{}\`)
}

// listBranches returns the heads of the branches of p's repository, from the listing GitHub gives
// page by page (an unchanged page from the last listing), and whether the listing is complete; a
// page that failed ends it, with its error and the heads of the pages before.
func (g *githubSource) listBranches(ctx context.Context, p Project, owner, name string) (map[string]string, bool, error) {
	pages, _, partial, rate, err := g.gh.Branches(ctx, owner, name, lastPages(g, g.branches, p))
	g.observe(rate, err)
	if err == nil {
		keepPages(g, g.branches, p, pages) // after a failure the last full listing's ETags stay
	}
	heads := map[string]string{}
	for _, page := range pages {
		for _, b := range page.Items {
			heads[b.Name] = b.SHA
		}
	}
	return heads, !partial, timedOut(ctx, err, "the GitHub request for the branches", g.timeout)
}

// branchHead returns the SHA at the head of a branch of p's repository, asking GitHub with the SHA
// it saw last, so that an unchanged branch costs no rate limit.
func (g *githubSource) branchHead(ctx context.Context, p Project, owner, name, branch string) (string, error) {
	key := knownBranch{project: p.ID, repo: p.Repo, branch: branch}
	g.mu.Lock()
	known := g.shas[key]
	g.mu.Unlock()
	sha, _, rate, err := g.gh.HeadSHA(ctx, owner, name, branch, known)
	g.observe(rate, err)
	if err != nil {
		return "", timedOut(ctx, err, "the GitHub request for the head of branch "+branch, g.timeout)
	}
	g.mu.Lock()
	g.shas[key] = sha
	g.mu.Unlock()
	return sha, nil
}

// previewBranches returns the preview branches of p whose heads are read one by one through the
// GitHub API: those with a preview up and those preview_branches names without a pattern, sorted.
func previewBranches(p Project) []string {
	var branches []string
	for _, pv := range p.Previews {
		if pv.PullRequest == 0 && pv.Branch != p.Branch {
			branches = append(branches, pv.Branch)
		}
	}
	for _, pattern := range p.PreviewBranches {
		if literal(pattern) && pattern != p.Branch {
			branches = append(branches, pattern)
		}
	}
	slices.Sort(branches)
	return slices.Compact(branches)
}

// openPullRequests returns the heads of the open pull requests of p's repository, from the listing
// GitHub gives page by page (an unchanged page from the last listing), and whether it is complete;
// a page that failed ends it, with its error and the heads of the pages before.
func (g *githubSource) openPullRequests(ctx context.Context, p Project, owner, name string) ([]Head, bool, error) {
	pages, _, partial, rate, err := g.gh.OpenPullRequests(ctx, owner, name, lastPages(g, g.pulls, p))
	g.observe(rate, err)
	if err == nil {
		keepPages(g, g.pulls, p, pages) // after a failure the last full listing's ETags stay
	}
	var heads []Head
	for _, page := range pages {
		for _, pr := range page.Items {
			heads = append(heads, Head{Branch: pr.HeadRef, PullRequest: pr.Number, SHA: pr.HeadSHA, Fork: pr.IsFork()})
		}
	}
	return heads, !partial, timedOut(ctx, err, "the GitHub request for the open pull requests", g.timeout)
}

func (g *githubSource) commit(ctx context.Context, p Project, h Head) (string, string, error) {
	owner, name, _ := strings.Cut(p.Repo, "/")
	c, err := g.gh.CommitInfo(ctx, owner, name, h.SHA)
	if err != nil {
		return "", "", timedOut(ctx, err, "the GitHub request for the head commit", g.timeout)
	}
	return c.Message, c.Author, nil
}

// observe keeps what an answer said of the rate limit and pauses polling when the limit is spent
// (until its reset, or longer when a Retry-After asks) or below lowRate (until its reset), for at
// most maxPause.
func (g *githubSource) observe(rate github.Rate, err error) {
	now := g.clock.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if rate.Limit > 0 {
		g.rate = rate
	}
	until := time.Time{}
	switch {
	case errors.Is(err, github.ErrRateLimited):
		if rate.Limit == 0 || rate.Remaining == 0 {
			until = rate.Reset // the primary limit is spent; with requests left, a secondary one refused
		}
		if rate.RetryAfter > 0 {
			until = later(until, now.Add(rate.RetryAfter))
		}
		if !until.After(now) {
			until = now.Add(time.Minute) // the answer said no time: a minute, as GitHub's docs advise
		}
	case rate.Limit > 0 && float64(rate.Remaining) < lowRate*float64(rate.Limit):
		until = rate.Reset
	}
	if limit := now.Add(maxPause); until.After(limit) {
		until = limit
	}
	if until.After(g.pause) {
		g.pause, g.refused = until, errors.Is(err, github.ErrRateLimited)
	}
}

func (g *githubSource) pausedUntil() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pause
}

// refusedUntil is when the pause of a request refused for the rate limit ends, zero when polling
// is not paused for one.
func (g *githubSource) refusedUntil() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.refused {
		return time.Time{}
	}
	return g.pause
}

// remaining returns the requests left in the primary rate limit, false before any answer said.
func (g *githubSource) remaining() (int, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.rate.Remaining, g.rate.Limit > 0
}

// forget drops what is kept of the projects that are not live.
func (g *githubSource) forget(live map[int64]bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	maps.DeleteFunc(g.shas, func(k knownBranch, _ string) bool { return !live[k.project] })
	maps.DeleteFunc(g.pulls, func(id int64, _ *pagedListing[github.OpenPullRequest]) bool { return !live[id] })
	maps.DeleteFunc(g.branches, func(id int64, _ *pagedListing[github.Branch]) bool { return !live[id] })
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
