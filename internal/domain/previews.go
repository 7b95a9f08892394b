package domain

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/store"
	"github.com/miaobu/miaobu/internal/trigger"
)

// ApproveLabel is the label whose addition to a fork's pull request approves its head commit.
const ApproveLabel = "miaobu:preview"

// previewRemoved is the error of the deployments a preview's removal cancels.
const previewRemoved = "preview removed"

// Previews returns the project ref names and its previews, removed ones included.
func (s *Service) Previews(ref string) (*store.Project, []*store.Preview, error) {
	p, err := s.Project(ref)
	if err != nil {
		return nil, nil, err
	}
	previews, err := s.store.Previews(p.ID)
	return p, previews, storeError(err, fmt.Sprintf("Project %s not found", ref))
}

// PreviewURL is where a preview is served: by the agent's own site server at the preview's host
// label, whatever the project's target.
func (s *Service) PreviewURL(p *store.Project, alias string, pullRequest int, branch string) string {
	local, err := s.targets.For("local")
	if err != nil {
		return ""
	}
	label := trigger.HostLabel(p.Slug, alias, pullRequest, branch)
	return local.URL(p.Slug, strings.TrimPrefix(label, p.Slug+"--"))
}

// IsLive reports whether deployment d of p is the live one of its alias; a removed preview has none.
func (s *Service) IsLive(p *store.Project, d *store.Deployment) bool {
	if d.Alias == "" {
		return p.ActiveDeploymentID == d.ID
	}
	pv, err := s.store.Preview(p.ID, d.Alias)
	return err == nil && !pv.Removed() && pv.ActiveDeploymentID == d.ID
}

// AwaitingApproval reports whether a preview's head commit waits for an approval before it builds.
func AwaitingApproval(p *store.Project, pv *store.Preview) bool {
	return pv.Fork && !pv.Removed() && p.ForkPreviews == trigger.ForkPreviewsApprove && pv.ApprovedSHA != pv.HeadSHA
}

// ApprovePreview approves the head commit of the fork's pull request whose preview is alias
// (pr-<n>) in the project ref names, and queues its build unless it is queued, running or live
// already. With commit set, the approval applies only if the head is still that commit (the one
// the reviewer looked at); otherwise it is a Conflict naming the current head.
func (s *Service) ApprovePreview(ref, alias, commit string) (Receipt, error) {
	sha := strings.ToLower(commit)
	if sha != "" && !github.ValidSHA(sha) {
		return Receipt{}, Errorf(Invalid, "%q is not a full commit SHA (40 hex characters)", commit)
	}
	p, err := s.Project(ref)
	if err != nil {
		return Receipt{}, err
	}
	pv, err := s.store.Preview(p.ID, alias)
	if err != nil {
		return Receipt{}, storeError(err, fmt.Sprintf("Project %s has no preview %s", p.Slug, alias))
	}
	switch {
	case pv.PullRequest == 0:
		return Receipt{}, Errorf(Invalid, "%s is a branch's preview: only pull requests from forks need an approval", alias)
	case pv.Removed():
		return Receipt{}, Errorf(Conflict, "PR #%d is closed: its preview was removed", pv.PullRequest)
	case !pv.Fork:
		return Receipt{}, Errorf(Conflict, "PR #%d is not from a fork: it needs no approval", pv.PullRequest)
	case p.ForkPreviews == trigger.ForkPreviewsOff:
		return Receipt{}, Errorf(Conflict, "Previews of pull requests from forks are off for %s: set --fork-previews approve first", p.Slug)
	case sha != "" && sha != pv.HeadSHA:
		return Receipt{}, headMoved(pv, sha)
	}
	res, err := s.store.ApprovePreview(store.Push{ProjectID: p.ID, CommitSHA: pv.HeadSHA, Branch: pv.Branch,
		Alias: alias, PullRequest: pv.PullRequest, Fork: true})
	if errors.Is(err, store.ErrHeadMoved) {
		// The pull request moved on between the check and the approval: the new head is unreviewed.
		if pv, err = s.store.Preview(p.ID, alias); err == nil {
			return Receipt{}, headMoved(pv, sha)
		}
	}
	if err != nil {
		return Receipt{}, storeError(err, fmt.Sprintf("Project %s not found", ref))
	}
	if res.Closed {
		return Receipt{}, Errorf(Conflict, "PR #%d is closed: its preview was removed", pv.PullRequest)
	}
	s.log.Info("fork preview approved", "project", p.ID, "alias", alias, "commit", pv.HeadSHA[:7], "deployment", res.DeploymentID)
	return s.previewReceipt(p, pv.PullRequest, store.Push{CommitSHA: pv.HeadSHA, Branch: pv.Branch}, res), nil
}

// headMoved is the Conflict of an approval of commit sha ("" for the head read before) of pull
// request preview pv, whose head is another commit now.
func headMoved(pv *store.Preview, sha string) error {
	if sha == "" {
		return Errorf(Conflict, "PR #%d's head moved to %s while it was approved: nothing was approved; review it, then approve it with --commit %s",
			pv.PullRequest, pv.HeadSHA, pv.HeadSHA)
	}
	return Errorf(Conflict, "PR #%d's head is %s, not %s: nothing was approved; review it, then approve it with --commit %s",
		pv.PullRequest, pv.HeadSHA, sha, pv.HeadSHA)
}

// previewReceipt is the answer to the head commit of pull request n, pushed as push and recorded
// as res.
func (s *Service) previewReceipt(p *store.Project, n int, push store.Push, res store.PushResult) Receipt {
	sha := push.CommitSHA
	if res.Duplicate {
		return Receipt{Outcome: OutcomeSkipped, Status: "skipped", Message: fmt.Sprintf("Deployment for commit %s already exists", sha[:7]),
			ProjectID: p.ID, DeploymentID: res.DeploymentID, CommitSHA: sha}
	}
	s.builds.Wake()
	return Receipt{Outcome: OutcomeSuccess, Status: "success", Message: fmt.Sprintf("Preview deployment triggered for PR #%d", n),
		ProjectID: p.ID, DeploymentID: res.DeploymentID, CommitSHA: sha, CommitMessage: store.LimitCommitMessage(push.CommitMessage),
		Branch: push.Branch}
}

// RemovePreview takes the preview alias of the project ref names down now.
func (s *Service) RemovePreview(ref, alias string) (*store.Preview, error) {
	p, err := s.Project(ref)
	if err != nil {
		return nil, err
	}
	pv, err := s.takeDown(p, alias, previewRemoved)
	return pv, storeError(err, fmt.Sprintf("Project %s has no preview %s", p.Slug, alias))
}

// takeDown removes a preview of p at once: its host answers 404 from now on and its unfinished
// builds stop; its files stay until retention.previews has passed. It returns the preview.
func (s *Service) takeDown(p *store.Project, alias, reason string) (*store.Preview, error) {
	pv, cancelled, err := s.store.RemovePreview(p.ID, alias, reason)
	if err != nil {
		return nil, err
	}
	s.previewDown(p, pv, cancelled, reason)
	return pv, nil
}

// previewDown stops the builds of the deployments cancelled by taking preview pv of p down for
// reason, and reports the removal to GitHub; pv is the preview as it was before, and nothing is
// done when it was down already.
func (s *Service) previewDown(p *store.Project, pv *store.Preview, cancelled []*store.Deployment, reason string) {
	alias := pv.Alias
	for _, d := range cancelled {
		s.builds.Stop(d.ID)
	}
	if pv.Removed() {
		return
	}
	log := s.log.With("project", p.ID, "alias", alias)
	log.Info("preview removed", "reason", reason, "cancelled", len(cancelled))
	if pv.ActiveDeploymentID != 0 {
		if d, err := s.store.Deployment(pv.ActiveDeploymentID); err == nil {
			s.report(log, "a removed preview", s.reports.Inactive(p, d, alias))
		}
	}
	if pv.PullRequest != 0 {
		s.report(log, "a removed preview", s.reports.Removed(p, pv.PullRequest, alias, pv.HeadSHA))
	}
}

// PurgeRemovedPreviews deletes the previews taken down more than retention.previews before now,
// with their deployments' files and logs.
func (s *Service) PurgeRemovedPreviews(now time.Time) error {
	gone, err := s.store.PurgeRemovedPreviews(now.Add(-s.cfg.Retention.Previews))
	if err != nil {
		return err
	}
	slugs := map[int64]string{}
	for _, d := range gone {
		slug, ok := slugs[d.ProjectID]
		if !ok {
			p, err := s.store.Project(d.ProjectID)
			if errors.Is(err, store.ErrNotFound) {
				continue // deleted since, with its files
			}
			if err != nil {
				return err
			}
			slug, slugs[d.ProjectID] = p.Slug, p.Slug
		}
		if err := os.RemoveAll(s.SiteDir(slug, d.ID)); err != nil {
			s.log.Warn("removing a removed preview's files", "project", d.ProjectID, "deployment", d.ID, "err", err)
		}
		_ = os.Remove(s.LogPath(d.ID))
	}
	if len(gone) > 0 {
		s.log.Info("purged removed previews", "deployments", len(gone))
	}
	return nil
}

// RunPurges purges removed previews and sweeps the local files of what the store no longer has
// (see SweepLocalFiles), now and then every interval until ctx ends.
func (s *Service) RunPurges(ctx context.Context, interval time.Duration) {
	for {
		if err := s.PurgeRemovedPreviews(time.Now()); err != nil {
			s.log.Warn("purging removed previews", "err", err)
		}
		if err := s.SweepLocalFiles(); err != nil {
			s.log.Warn("removing the local files of deleted projects and deployments", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
