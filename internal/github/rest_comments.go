package github

import (
	"context"
	"errors"
	"fmt"
	"strings"

	gogithub "github.com/google/go-github/v60/github"
)

// commentRefused is the message of a comment GitHub refuses (403, or 404 where the pull request
// exists), naming the permission the token needs.
const commentRefused = "GitHub refused to comment on pull request #%d of %s: the token needs the repo scope (classic token; public_repo for a public repository) or Pull requests: write (fine-grained token)"

// PreviewMarker is the first line of miaobu's sticky comment about the previews of project slug:
// it tells miaobu's comment from any other, and one project's from another's.
func PreviewMarker(slug string) string {
	return "<!-- miaobu:preview:" + slug + " -->"
}

// UpsertComment makes body, which starts with marker, the text of miaobu's comment on pull request
// n of owner/repo, and returns the comment's id. It edits comment id (PATCH
// /repos/{o}/{r}/issues/comments/{id}) when there is one; when id is 0 or that comment is gone, it
// edits the comment of the token's user that starts with marker (GET /user, GET
// /repos/{o}/{r}/issues/{n}/comments), else creates one (POST /repos/{o}/{r}/issues/{n}/comments).
func (c *Client) UpsertComment(ctx context.Context, owner, repo string, n int, id int64, marker, body string) (int64, error) {
	if err := c.check(owner, repo); err != nil {
		return 0, err
	}
	if !strings.HasPrefix(body, marker) {
		return 0, fmt.Errorf("a sticky comment must start with its marker %q", marker)
	}
	refused := fmt.Sprintf(commentRefused, n, owner+"/"+repo)
	if id != 0 {
		err := c.editComment(ctx, owner, repo, id, body, refused)
		if !errors.Is(err, ErrNotFound) {
			return id, err
		}
	}
	found, err := c.findComment(ctx, owner, repo, n, marker, refused)
	if err != nil {
		return 0, err
	}
	if found != 0 {
		return found, c.editComment(ctx, owner, repo, found, body, refused)
	}
	created, resp, err := c.gh.Issues.CreateComment(ctx, owner, repo, n, &gogithub.IssueComment{Body: gogithub.String(body)})
	if err != nil {
		return 0, c.apiError(err, resp, refused, refused)
	}
	return created.GetID(), nil
}

// editComment replaces the text of comment id; a comment that is gone is an ErrNotFound.
func (c *Client) editComment(ctx context.Context, owner, repo string, id int64, body, refused string) error {
	_, resp, err := c.gh.Issues.EditComment(ctx, owner, repo, id, &gogithub.IssueComment{Body: gogithub.String(body)})
	if err != nil {
		return c.apiError(err, resp, fmt.Sprintf("comment %d is not on %s/%s any more", id, owner, repo), refused)
	}
	return nil
}

// findComment returns the id of the first comment on pull request n that the token's user wrote
// and that starts with marker, 0 when there is none.
func (c *Client) findComment(ctx context.Context, owner, repo string, n int, marker, refused string) (int64, error) {
	me, resp, err := c.gh.Users.Get(ctx, "")
	if err != nil {
		return 0, c.apiError(err, resp, "", "")
	}
	opts := &gogithub.IssueListCommentsOptions{ListOptions: gogithub.ListOptions{PerPage: 100}}
	for {
		comments, resp, err := c.gh.Issues.ListComments(ctx, owner, repo, n, opts)
		if err != nil {
			return 0, c.apiError(err, resp, refused, refused)
		}
		for _, comment := range comments {
			if comment.GetUser().GetLogin() == me.GetLogin() && strings.HasPrefix(comment.GetBody(), marker) {
				return comment.GetID(), nil
			}
		}
		if resp.NextPage == 0 {
			return 0, nil
		}
		opts.Page = resp.NextPage
	}
}
