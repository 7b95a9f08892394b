package github_test

import (
	"testing"

	"github.com/miaobu/miaobu/internal/github"
)

const (
	marker      = "<!-- miaobu:preview:site -->"
	commentBody = marker + "\nPreview ready"
	commentJSON = `{"body":"` + marker + `\nPreview ready"}`
)

func TestPreviewMarker(t *testing.T) {
	if got := github.PreviewMarker("site"); got != marker {
		t.Fatalf("PreviewMarker = %q", got)
	}
}

func TestUpsertCommentEditsTheKnownComment(t *testing.T) {
	c := fakeGitHub(t, "/", call{method: "PATCH", path: "/repos/acme/site/issues/comments/55", body: commentJSON, reply: `{"id":55}`})
	id, err := c.UpsertComment(ctx, "acme", "site", 12, 55, marker, commentBody)
	if err != nil || id != 55 {
		t.Fatalf("UpsertComment = %d, %v", id, err)
	}
}

// TestUpsertCommentFindsItsLostComment: the known comment was deleted; the token's own comment with
// the marker, on the second page, is edited instead of adding a second one.
func TestUpsertCommentFindsItsLostComment(t *testing.T) {
	c := fakeGitHub(t, "/",
		call{method: "PATCH", path: "/repos/acme/site/issues/comments/55", body: commentJSON, status: 404, reply: `{"message":"Not Found"}`},
		call{method: "GET", path: "/user", reply: `{"login":"miaobu-bot"}`},
		call{method: "GET", path: "/repos/acme/site/issues/12/comments", query: "per_page=100",
			header: map[string]string{"Link": `<{server}/repos/acme/site/issues/12/comments?page=2&per_page=100>; rel="next"`},
			reply: `[{"id":60,"body":"` + marker + ` copied by someone else","user":{"login":"mallory"}},
				{"id":61,"body":"<!-- miaobu:preview:other -->","user":{"login":"miaobu-bot"}}]`},
		call{method: "GET", path: "/repos/acme/site/issues/12/comments", query: "page=2&per_page=100",
			reply: `[{"id":62,"body":"` + marker + `\nBuilding","user":{"login":"miaobu-bot"}}]`},
		call{method: "PATCH", path: "/repos/acme/site/issues/comments/62", body: commentJSON, reply: `{"id":62}`},
	)
	id, err := c.UpsertComment(ctx, "acme", "site", 12, 55, marker, commentBody)
	if err != nil || id != 62 {
		t.Fatalf("UpsertComment = %d, %v", id, err)
	}
}

func TestUpsertCommentCreatesTheFirst(t *testing.T) {
	c := fakeGitHub(t, "/",
		call{method: "GET", path: "/user", reply: `{"login":"miaobu-bot"}`},
		call{method: "GET", path: "/repos/acme/site/issues/12/comments", query: "per_page=100", reply: `[]`},
		call{method: "POST", path: "/repos/acme/site/issues/12/comments", body: commentJSON, status: 201, reply: `{"id":70}`},
	)
	id, err := c.UpsertComment(ctx, "acme", "site", 12, 0, marker, commentBody)
	if err != nil || id != 70 {
		t.Fatalf("UpsertComment = %d, %v", id, err)
	}
}

func TestUpsertCommentRefused(t *testing.T) {
	c := fakeGitHub(t, "/",
		call{method: "PATCH", path: "/repos/acme/site/issues/comments/55", body: commentJSON, status: 403,
			reply: `{"message":"Resource not accessible by personal access token"}`})
	_, err := c.UpsertComment(ctx, "acme", "site", 12, 55, marker, commentBody)
	checkError(t, err, github.ErrForbidden, "GitHub refused to comment on pull request #12 of acme/site: the token needs the repo scope (classic token; public_repo for a public repository) or Pull requests: write (fine-grained token)")

	c = fakeGitHub(t, "/")
	if _, err := c.UpsertComment(ctx, "acme", "site", 12, 0, marker, "no marker first\n"+marker); err == nil {
		t.Fatal("a body that does not start with its marker was sent")
	}
}

func TestCommitInfo(t *testing.T) {
	const sha = "abc123def4567890abc123def4567890abc123de"
	c := fakeGitHub(t, "/",
		call{method: "GET", path: "/repos/acme/site/commits/" + sha,
			reply: `{"sha":"` + sha + `","commit":{"message":"Tweak the hero [skip ci]","author":{"name":""}},"author":{"login":"octocat"}}`},
		call{method: "GET", path: "/repos/acme/site/commits/" + sha, status: 404, reply: `{"message":"No commit found for SHA"}`})
	got, err := c.CommitInfo(ctx, "acme", "site", sha)
	if want := (github.Commit{SHA: sha, Message: "Tweak the hero [skip ci]", Author: "octocat"}); err != nil || got != want {
		t.Fatalf("CommitInfo = %+v, %v; want %+v", got, err, want)
	}
	_, err = c.CommitInfo(ctx, "acme", "site", sha)
	checkError(t, err, github.ErrNotFound, "commit abc123d not found in acme/site, or the token cannot see the repository")
	if _, err := c.CommitInfo(ctx, "acme", "site", "HEAD"); err == nil {
		t.Fatal("CommitInfo asked for a ref that is not a SHA")
	}
}
