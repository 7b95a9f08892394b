package report

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/outbox"
	"github.com/miaobu/miaobu/internal/store"
)

// buildComment returns the report of a pull request preview's deployment d to its sticky comment:
// building when queued, then ready, failed, or skipped for a skip marker; nothing for the other
// steps, nor for a deployment cancelled otherwise (a newer one, or the preview's removal, says
// more). Each links the preview's URL, shown while the preview serves a build (see sendComment):
// the alias keeps serving the previous build while an update builds, fails or is skipped.
func (r *Reporter) buildComment(p *store.Project, d *store.Deployment) []outbox.Message {
	var state string
	switch d.Status {
	case store.StatusQueued:
		state = "⏳ Building"
	case store.StatusDeployed:
		state = "✅ Ready"
	case store.StatusFailed:
		state = "❌ " + failedDescription(d)
	case store.StatusCancelled:
		if !d.Skipped {
			return nil
		}
		state = "⏭️ " + d.ErrorMessage
	default:
		return nil
	}
	return r.comment(p, d.PullRequest, d.Alias, d.CommitSHA, d.ID, state, r.opts.DeploymentURL(p, d))
}

// AwaitingApproval returns the report to pull request n's sticky comment that its head commit sha,
// from a fork, waits for an approval.
func (r *Reporter) AwaitingApproval(p *store.Project, n int, alias, sha string) []outbox.Message {
	return r.comment(p, n, alias, sha, 0,
		fmt.Sprintf("🔒 Waiting for approval: this pull request comes from a fork. Run `miaobu preview approve %s %d --commit %s` once you have reviewed it, or add the `miaobu:preview` label", p.Slug, n, sha), "")
}

// Removed returns the report to the sticky comment of pull request n, whose preview alias was
// taken down, that the preview is gone.
func (r *Reporter) Removed(p *store.Project, n int, alias, sha string) []outbox.Message {
	return r.comment(p, n, alias, sha, 0, "🗑️ Removed", "")
}

// comment returns the report that makes pull request n's sticky comment say state, with the
// preview's url (empty: none), the commit and, for deployment id (0: none), its log.
func (r *Reporter) comment(p *store.Project, n int, alias, sha string, id int64, state, url string) []outbox.Message {
	if !r.reports(p, KindComment) {
		return nil
	}
	s := payload{ProjectID: p.ID, Slug: p.Slug, Repo: p.Repo, SHA: sha, DeploymentID: id, Description: state,
		EnvironmentURL: url, PullRequest: n, Alias: alias}
	if id != 0 {
		s.LogURL = r.page(&store.Deployment{ID: id})
	}
	return []outbox.Message{message(KindComment, fmt.Sprintf("%s:%d:%d", KindComment, p.ID, n), s)}
}

// commentBody is the text of a sticky comment: the marker, the preview's state, and a table of its
// URL, commit and log.
func commentBody(s payload) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n**miaobu** preview of `%s`: %s\n\n| | |\n| --- | --- |\n", github.PreviewMarker(s.Slug), s.Slug, s.Description)
	if s.EnvironmentURL != "" {
		fmt.Fprintf(&b, "| Preview | %s |\n", s.EnvironmentURL)
	}
	fmt.Fprintf(&b, "| Commit | `%s` |\n", s.SHA[:min(7, len(s.SHA))])
	if s.LogURL != "" {
		fmt.Fprintf(&b, "| Log | %s |\n", s.LogURL)
	}
	return b.String()
}

// sendComment writes a pull request's sticky comment: the one whose id its preview keeps, or the
// one GitHub finds by its marker, or a new one, whose id the preview then keeps. The preview's URL
// is left out while the preview serves no build.
func (r *Reporter) sendComment(ctx context.Context, m outbox.Message) error {
	s, owner, repo, err := decode(m)
	if err != nil {
		return err
	}
	if err := r.held(s, KindComment); err != nil {
		return err
	}
	pv, err := r.opts.Store.Preview(s.ProjectID, s.Alias)
	if errors.Is(err, store.ErrNotFound) {
		return nil // purged since, with its project perhaps: nothing left to say
	}
	if err != nil {
		return err
	}
	if pv.ActiveDeploymentID == 0 || pv.Removed() {
		s.EnvironmentURL = "" // the alias serves nothing yet, or no longer
	}
	id, err := r.opts.GitHub.UpsertComment(ctx, owner, repo, s.PullRequest, pv.CommentID, github.PreviewMarker(s.Slug), commentBody(s))
	if err != nil {
		return r.outcome(s, KindComment, err)
	}
	if id != pv.CommentID {
		if err := r.opts.Store.SetPreviewComment(s.ProjectID, s.Alias, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}
