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

// PullRequestPage is how many pull requests one page of the listing holds, GitHub's most.
const PullRequestPage = 100

// OpenPullRequests lists the open pull requests of owner/repo (GET /repos/{o}/{r}/pulls). With
// etag, the ETag of the caller's last listing, the first page's request carries If-None-Match and
// an unchanged listing costs no rate limit: OpenPullRequests then returns changed false and no
// pull requests. Otherwise it returns every page and the new ETag to keep.
func (c *Client) OpenPullRequests(ctx context.Context, owner, repo, etag string) (prs []OpenPullRequest, newETag string, changed bool, rate Rate, err error) {
	if err := c.check(owner, repo); err != nil {
		return nil, "", false, Rate{}, err
	}
	for page := 1; page != 0; {
		u := "repos/" + owner + "/" + repo + "/pulls?state=open&per_page=" + strconv.Itoa(PullRequestPage)
		if page > 1 {
			u += "&page=" + strconv.Itoa(page)
		}
		req, err := c.gh.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			return nil, "", false, rate, err
		}
		if page == 1 && etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		var list []*gogithub.PullRequest
		resp, err := c.gh.Do(ctx, req, &list)
		rate = rateOf(resp)
		switch {
		case page == 1 && notModified(resp) && etag != "":
			return nil, etag, false, rate, nil
		case err != nil:
			return nil, "", false, rate, c.apiError(err, resp, "repository "+owner+"/"+repo+" not found or the token cannot see it", "")
		}
		if page == 1 {
			newETag = resp.Header.Get("ETag")
		}
		for _, p := range list {
			prs = append(prs, OpenPullRequest{Number: p.GetNumber(), HeadSHA: p.GetHead().GetSHA(), HeadRef: p.GetHead().GetRef(),
				HeadRepo: p.GetHead().GetRepo().GetFullName(), BaseRepo: p.GetBase().GetRepo().GetFullName()})
		}
		page = resp.NextPage
	}
	return prs, newETag, true, rate, nil
}

// BranchPage is one page of a repository's branch listing, with the ETag that asks GitHub whether
// it changed.
type BranchPage struct {
	ETag string
	// Heads are the SHAs at the heads of the page's branches, by branch name.
	Heads map[string]string
}

// BranchPageSize is how many branches one page of the listing holds, GitHub's most.
const BranchPageSize = 100

// MaxBranchPages bounds the listing: a repository with more branches is read in part.
const MaxBranchPages = 10

// Branches lists the branches of owner/repo and their heads (GET /repos/{o}/{r}/branches), page by
// page. Each page's request carries If-None-Match with the ETag of the same page in last, the
// caller's previous listing, so that an unchanged page costs no rate limit and is taken from last.
// It reports whether a page changed, and whether the listing stopped at MaxBranchPages.
func (c *Client) Branches(ctx context.Context, owner, repo string, last []BranchPage) (pages []BranchPage, changed, partial bool, rate Rate, err error) {
	if err := c.check(owner, repo); err != nil {
		return nil, false, false, Rate{}, err
	}
	for page := 1; page != 0; {
		if page > MaxBranchPages {
			return pages, changed, true, rate, nil
		}
		u := "repos/" + owner + "/" + repo + "/branches?per_page=" + strconv.Itoa(BranchPageSize)
		if page > 1 {
			u += "&page=" + strconv.Itoa(page)
		}
		req, err := c.gh.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			return nil, false, false, rate, err
		}
		var known *BranchPage
		if page <= len(last) && last[page-1].ETag != "" {
			known = &last[page-1]
			req.Header.Set("If-None-Match", known.ETag)
		}
		var list []*gogithub.Branch
		resp, err := c.gh.Do(ctx, req, &list)
		rate = rateOf(resp)
		switch {
		case known != nil && notModified(resp):
			// A 304 carries no Link header: the pages after it are those of the last listing.
			pages = append(pages, *known)
			if page++; page > len(last) {
				page = 0
			}
			continue
		case err != nil:
			return nil, false, false, rate, c.apiError(err, resp, "repository "+owner+"/"+repo+" not found or the token cannot see it", "")
		}
		listed := BranchPage{ETag: resp.Header.Get("ETag"), Heads: make(map[string]string, len(list))}
		for _, b := range list {
			if sha := b.GetCommit().GetSHA(); ValidSHA(sha) {
				listed.Heads[b.GetName()] = sha
			}
		}
		pages, changed = append(pages, listed), true
		page = resp.NextPage
	}
	return pages, changed, false, rate, nil
}
