package report_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/github/githubtest"
	"github.com/miaobu/miaobu/internal/store"
)

// comment waits until pull request 12 has one comment edited edits times, and returns it.
func (e *env) comment(t *testing.T, edits int) githubtest.Comment {
	t.Helper()
	var got []githubtest.Comment
	waitFor(t, fmt.Sprintf("a comment edited %d times", edits), func() bool {
		got = e.gh.Comments("acme/site")
		return len(got) > 0 && got[len(got)-1].Edits >= edits
	})
	if len(got) != 1 {
		t.Fatalf("comments %+v, want one", got)
	}
	return got[0]
}

// TestStickyPreviewComment follows pull request 12's preview on GitHub: one comment, marked as
// miaobu's, created when the build is queued and edited as it goes live, with a GitHub Deployment
// in the preview's transient environment, and then when the preview is removed.
func TestStickyPreviewComment(t *testing.T) {
	e := newEnv(t, options{deployments: true})
	e.start()
	res, err := e.store.RecordPush(context.Background(), store.Push{ProjectID: e.project.ID, DeliveryID: "pr", CommitSHA: sha("a"),
		Branch: "feature", Alias: "pr-12", PullRequest: 12})
	if err != nil {
		t.Fatal(err)
	}
	id := res.DeploymentID
	marker := github.PreviewMarker("site")
	building := e.comment(t, 0)
	if !strings.HasPrefix(building.Body, marker+"\n") || !strings.Contains(building.Body, "⏳ Building") ||
		!strings.Contains(building.Body, "| Commit | `aaaaaaa` |") || !strings.Contains(building.Body, "| Log | "+logURL(id)+" |") ||
		building.PullRequest != 12 || building.Login != githubtest.Login {
		t.Errorf("first comment %+v", building)
	}

	e.claim(t)
	if _, err := e.store.Complete(id); err != nil {
		t.Fatal(err)
	}
	ready := e.comment(t, 1)
	if !strings.Contains(ready.Body, "✅ Ready") || !strings.Contains(ready.Body, "| Preview | https://site--pr-12.example.com/ |") {
		t.Errorf("comment once live: %+v", ready)
	}
	if pv, err := e.store.Preview(e.project.ID, "pr-12"); err != nil || pv.CommentID != ready.ID {
		t.Errorf("the preview keeps comment %d, want %d (%v)", pv.CommentID, ready.ID, err)
	}
	deployments := e.deployments(t, 1, 2)
	if d := deployments[0]; d.Environment != "preview/pr-12" || d.Production || !d.Transient || d.Statuses[1].State != "success" {
		t.Errorf("GitHub Deployment of the preview %+v", d)
	}

	pv, _, err := e.store.RemovePreview(e.project.ID, "pr-12", "pull request closed")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := e.store.Deployment(id)
	e.enqueue(t, append(e.reporter.Inactive(e.project, d, "pr-12"), e.reporter.Removed(e.project, 12, "pr-12", pv.HeadSHA)...))
	if removed := e.comment(t, 2); !strings.Contains(removed.Body, "🗑️ Removed") || strings.Contains(removed.Body, "| Preview |") {
		t.Errorf("comment once removed: %+v", removed)
	}
	if got := e.deployments(t, 1, 3)[0].Statuses[2]; got.State != "inactive" {
		t.Errorf("GitHub Deployment once removed: %+v", got)
	}
}

// TestCommentFoundAgain: a preview that lost its comment's id edits its own comment, found by the
// marker, rather than adding a second; someone else's comment with the marker is left alone.
func TestCommentFoundAgain(t *testing.T) {
	e := newEnv(t, options{})
	e.gh.AddComment("acme/site", 7, "mallory", github.PreviewMarker("site")+"\nnot miaobu's")
	own := e.gh.AddComment("acme/site", 7, githubtest.Login, github.PreviewMarker("site")+"\nold")
	if _, err := e.store.RecordPush(context.Background(), store.Push{ProjectID: e.project.ID, DeliveryID: "fork", CommitSHA: sha("f"),
		Branch: "patch-1", Alias: "pr-7", PullRequest: 7, Fork: true, Hold: true}); err != nil {
		t.Fatal(err)
	}
	e.enqueue(t, e.reporter.AwaitingApproval(e.project, 7, "pr-7", sha("f")))
	e.start()
	// The comment's id is saved once GitHub has answered the edit: wait for both.
	waitFor(t, "the comment edited and its id kept", func() bool {
		comments := e.gh.Comments("acme/site")
		pv, _ := e.store.Preview(e.project.ID, "pr-7")
		return len(comments) == 2 && comments[1].Edits == 1 && pv != nil && pv.CommentID != 0
	})
	comments := e.gh.Comments("acme/site")
	if comments[0].Edits != 0 || comments[1].ID != own || !strings.Contains(comments[1].Body, "🔒 Waiting for approval") ||
		!strings.Contains(comments[1].Body, "miaobu preview approve site 7 --commit "+sha("f")) {
		t.Errorf("comments %+v", comments)
	}
	if pv, _ := e.store.Preview(e.project.ID, "pr-7"); pv.CommentID != own {
		t.Errorf("the preview keeps comment %d, want %d", pv.CommentID, own)
	}
}

// TestCommentRefusalShowsInSummary refuses a pull request's comment: the project's summary says
// that comments are paused, as it does for the other kinds.
func TestCommentRefusalShowsInSummary(t *testing.T) {
	e := newEnv(t, options{statuses: true, deployments: true})
	e.gh.Fail("POST /repos/acme/site/issues/12/comments", 403, "Resource not accessible by personal access token")
	e.start()
	if _, err := e.store.RecordPush(context.Background(), store.Push{ProjectID: e.project.ID, DeliveryID: "pr", CommitSHA: sha("a"),
		Branch: "feature", Alias: "pr-12", PullRequest: 12}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "comments paused", func() bool { return strings.Contains(e.log.String(), "paused") })
	s := e.reporter.Summary(e.project)
	if !s.Statuses || !s.Deployments || !strings.Contains(s.Note, "pull request comments paused") || !strings.Contains(s.Note, "miaobu webhook setup site") {
		t.Errorf("Summary with comments paused = %+v", s)
	}
}

// TestSkippedUpdateKeepsThePreviewLink skips pull request 12's second head for a skip marker: the
// comment says so, and still links the preview, which serves the first head's build.
func TestSkippedUpdateKeepsThePreviewLink(t *testing.T) {
	e := newEnv(t, options{})
	e.start()
	update := func(c string) int64 {
		t.Helper()
		res, err := e.store.RecordPush(context.Background(), store.Push{ProjectID: e.project.ID, DeliveryID: "pr-" + c, CommitSHA: sha(c),
			Branch: "feature", Alias: "pr-12", PullRequest: 12})
		if err != nil {
			t.Fatal(err)
		}
		e.claim(t)
		return res.DeploymentID
	}
	if _, err := e.store.Complete(update("a")); err != nil {
		t.Fatal(err)
	}
	e.comment(t, 1)
	if err := e.store.Skip(update("b"), "Skipped: commit message contains [skip ci]"); err != nil {
		t.Fatal(err)
	}
	const link = "| Preview | https://site--pr-12.example.com/ |"
	if skipped := e.comment(t, 3); !strings.Contains(skipped.Body, "⏭️ Skipped: commit message contains [skip ci]") ||
		!strings.Contains(skipped.Body, link) || !strings.Contains(skipped.Body, "| Commit | `bbbbbbb` |") {
		t.Errorf("comment of the skipped update:\n%s", skipped.Body)
	}
}
