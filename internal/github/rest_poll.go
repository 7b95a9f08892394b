package github

import (
	"context"
	"net/http"
	"strconv"
	"time"

	gogithub "github.com/google/go-github/v60/github"
)

// Rate is what one answer of GitHub said about the token's rate limits; a field is zero when the
// answer did not say.
type Rate struct {
	// Limit and Remaining are the requests per hour of the primary limit and those left.
	Limit, Remaining int
	// Reset is when the primary limit's window starts again.
	Reset time.Time
	// RetryAfter is the wait a secondary limit asked for (Retry-After).
	RetryAfter time.Duration
}

// rateOf reads the rate headers of an answer; zero when there was none.
func rateOf(resp *gogithub.Response) Rate {
	if resp == nil || resp.Response == nil {
		return Rate{}
	}
	r := Rate{Limit: resp.Rate.Limit, Remaining: resp.Rate.Remaining, Reset: resp.Rate.Reset.Time}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		r.RetryAfter = time.Duration(s) * time.Second
	}
	return r
}

// notModified reports whether GitHub answered 304: the conditional request matched, and it cost
// no rate limit.
func notModified(resp *gogithub.Response) bool {
	return resp != nil && resp.StatusCode == http.StatusNotModified
}

// HeadSHA returns the SHA of the commit at ref (a branch) in owner/repo through
// GET /repos/{o}/{r}/commits/{ref} with Accept: application/vnd.github.sha. With known, the SHA the
// caller saw last, the request carries If-None-Match, and an unchanged branch costs no rate limit:
// HeadSHA then returns known and changed false. rate is what the answer said of the rate limits,
// also when it failed.
func (c *Client) HeadSHA(ctx context.Context, owner, repo, ref, known string) (sha string, changed bool, rate Rate, err error) {
	if err := c.check(owner, repo); err != nil {
		return "", false, Rate{}, err
	}
	sha, resp, err := c.gh.Repositories.GetCommitSHA1(ctx, owner, repo, ref, known)
	rate = rateOf(resp)
	switch {
	case notModified(resp) && known != "":
		return known, false, rate, nil
	case resp != nil && resp.StatusCode == http.StatusUnprocessableEntity:
		// GitHub's answer for a ref it cannot resolve: "No commit found for SHA".
		return "", false, rate, &Error{Kind: ErrNotFound, StatusCode: resp.StatusCode, cause: err,
			Message: "branch " + ref + " not found in " + owner + "/" + repo}
	case err != nil:
		return "", false, rate, c.apiError(err, resp, "branch "+ref+" not found in "+owner+"/"+repo+", or the token cannot see the repository", "")
	case !ValidSHA(sha):
		return "", false, rate, &Error{Kind: ErrUnavailable, StatusCode: resp.StatusCode,
			Message: "GitHub answered no commit SHA for branch " + ref + " of " + owner + "/" + repo}
	}
	return sha, sha != known, rate, nil
}

// OpenPullRequest is an open pull request as the listing shows it.
type OpenPullRequest struct {
	Number  int
	HeadSHA string
	HeadRef string
	// HeadRepo is the full name (owner/name) of the repository the head commit comes from, ""
	// when that repository was deleted; BaseRepo is the repository the pull request targets.
	HeadRepo, BaseRepo string
}

// IsFork reports whether the head commit comes from another repository than the base, as
// PullRequest.IsFork does.
func (p OpenPullRequest) IsFork() bool {
	return isFork(p.HeadRepo, p.BaseRepo)
}

// Page is one page of a listing, with the ETag that asks GitHub whether it changed.
type Page[T any] struct {
	ETag  string
	Items []T
	// Full says the page held PageSize items: the listing may go on after it.
	Full bool
}

// PageSize is how many items a page of a listing holds, GitHub's most.
const PageSize = 100

// MaxPages bounds a listing: a repository with more branches or open pull requests is read in part.
const MaxPages = 10

// Branch is a branch as the listing of branches shows it.
type Branch struct {
	Name, SHA string
}

// Branches lists the branches of owner/repo and their heads (GET /repos/{o}/{r}/branches), page by
// page, conditionally on last, the caller's previous listing (see listPages).
func (c *Client) Branches(ctx context.Context, owner, repo string, last []Page[Branch]) (pages []Page[Branch], changed, partial bool, rate Rate, err error) {
	return listPages(c, ctx, owner, repo, "branches?per_page="+strconv.Itoa(PageSize), last, func(b *gogithub.Branch) (Branch, bool) {
		sha := b.GetCommit().GetSHA()
		return Branch{Name: b.GetName(), SHA: sha}, ValidSHA(sha)
	})
}

// OpenPullRequests lists the open pull requests of owner/repo (GET /repos/{o}/{r}/pulls), page by
// page, conditionally on last, the caller's previous listing (see listPages).
func (c *Client) OpenPullRequests(ctx context.Context, owner, repo string, last []Page[OpenPullRequest]) (pages []Page[OpenPullRequest], changed, partial bool, rate Rate, err error) {
	return listPages(c, ctx, owner, repo, "pulls?state=open&per_page="+strconv.Itoa(PageSize), last, func(p *gogithub.PullRequest) (OpenPullRequest, bool) {
		return OpenPullRequest{Number: p.GetNumber(), HeadSHA: p.GetHead().GetSHA(), HeadRef: p.GetHead().GetRef(),
			HeadRepo: p.GetHead().GetRepo().GetFullName(), BaseRepo: p.GetBase().GetRepo().GetFullName()}, true
	})
}

// listPages reads the listing at path (below repos/{owner}/{repo}/) page by page, keeping the
// items convert accepts. Each page's request carries If-None-Match with the ETag of the same page
// in last, so that an unchanged page costs no rate limit and is taken from last. It reports
// whether a page changed, and whether the listing stopped at MaxPages (or at a next page that is
// no later page, or at a page that failed: the pages before it come with the error).
func listPages[T, R any](c *Client, ctx context.Context, owner, repo, path string, last []Page[T], convert func(*R) (T, bool)) (pages []Page[T], changed, partial bool, rate Rate, err error) {
	if err := c.check(owner, repo); err != nil {
		return nil, false, false, Rate{}, err
	}
	for page := 1; page != 0; {
		if page > MaxPages {
			return pages, changed, true, rate, nil
		}
		u := "repos/" + owner + "/" + repo + "/" + path
		if page > 1 {
			u += "&page=" + strconv.Itoa(page)
		}
		req, err := c.gh.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			return nil, false, false, rate, err
		}
		var known *Page[T]
		if page <= len(last) && last[page-1].ETag != "" {
			known = &last[page-1]
			req.Header.Set("If-None-Match", known.ETag)
		}
		var list []*R
		resp, err := c.gh.Do(ctx, req, &list)
		rate = rateOf(resp)
		switch {
		case known != nil && notModified(resp):
			// A 304 carries no Link header: the pages after it are those of the last listing.
			// A full last page may be followed by a new one, which is asked for.
			pages = append(pages, *known)
			if page++; page > len(last) && !known.Full {
				page = 0
			}
			continue
		case err != nil:
			// The pages read so far are returned too, as a partial listing.
			return pages, changed, true, rate, c.apiError(err, resp, "repository "+owner+"/"+repo+" not found or the token cannot see it", "")
		}
		listed := Page[T]{ETag: resp.Header.Get("ETag"), Items: make([]T, 0, len(list)), Full: len(list) >= PageSize}
		for _, r := range list {
			if item, ok := convert(r); ok {
				listed.Items = append(listed.Items, item)
			}
		}
		pages, changed = append(pages, listed), true
		if resp.NextPage != 0 && resp.NextPage <= page {
			return pages, changed, true, rate, nil // a Link back: GitHub's listing is not to be trusted whole
		}
		page = resp.NextPage
	}
	return pages, changed, false, rate, nil
}
