package domain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/miaobu/miaobu/internal/store"
	"github.com/miaobu/miaobu/internal/trigger"
)

// Head is the commit at the head of a project's branch or open pull request, found by the agent itself.
type Head struct {
	ProjectID                    int64
	Branch, SHA, Message, Author string
	// MessageUnknown says Message could not be read: the build reads the commit's skip markers.
	MessageUnknown bool
	// PullRequest is the number of the open pull request whose head this is, 0 for a branch; Fork
	// says the head comes from another repository than the base.
	PullRequest int
	Fork        bool
	// Before is the commit the agent last saw at this head, "" when it saw none: a head that moved
	// from it is deployed as a push whose before it is (see Moved).
	Before string
	// Trigger is store.TriggerPoll or store.TriggerReconcile.
	Trigger store.Trigger
}

// Moved reports whether polling saw h move from Before to its commit, as a push would: it is then
// deployed by the push's rules (unless the commit is queued, running or live), also back to a
// commit a user's chosen deployment or a failed build replaced; at start, or for a reconciliation,
// the rules of HeadMissing keep a user's choice and do not retry what failed.
func (h Head) Moved() bool {
	return h.Trigger == store.TriggerPoll && h.Before != "" && h.Before != h.SHA
}

// alias returns the preview alias head h of project p deploys to, "" for production, and whether
// it deploys at all (a branch matching neither the default branch nor the preview branches does not).
func (h Head) alias(p *store.Project) (string, bool) {
	if h.PullRequest != 0 {
		return trigger.PullRequestAlias(h.PullRequest), p.PRPreviews
	}
	return trigger.Environment(h.Branch, p.DefaultBranch, p.PreviewBranches)
}

// HeadMissing reports whether a head needs a deployment. A head that Moved needs one unless its
// commit is queued, running or live where it deploys, as a push would. Otherwise, for production:
// nothing of its commit is queued, running or live, and its branch's newest deployment is not of
// it (see store.Store.HeadMissing); for a preview: it is not a fork's head that waits for approval,
// and neither the alias's live deployment nor its newest is of the commit (the newest was tried; a
// push retries it), or the preview was taken down because its branch or pull request was gone and
// the head is back.
func (s *Service) HeadMissing(h Head) (bool, error) {
	p, err := s.store.Project(h.ProjectID)
	if err != nil {
		return false, err
	}
	alias, deploys := h.alias(p)
	switch {
	case !deploys:
		return false, nil
	case h.Moved() && alias == "":
		live, err := s.lastDeployedCommit(p, alias)
		return live != h.SHA, err
	case alias == "":
		return s.store.HeadMissing(h.ProjectID, h.Branch, h.SHA)
	}
	pv, err := s.store.Preview(p.ID, alias)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return true, nil
	case err != nil:
		return false, err
	case pv.HeadSHA == h.SHA && AwaitingApproval(p, pv):
		return false, nil
	case pv.Removed():
		// Back after its branch or pull request was gone (restored, reopened); a preview removed
		// by hand stays down until a new commit, as with webhooks.
		return pv.RemovedReason != previewRemoved || pv.HeadSHA != h.SHA, nil
	}
	live, err := s.lastDeployedCommit(p, alias)
	if err != nil || live == h.SHA {
		return false, err
	}
	newest, err := s.store.DeploymentsWhere(p.ID, 1, func(d *store.Deployment) bool { return d.Alias == alias })
	if err != nil {
		return false, err
	}
	return len(newest) == 0 || newest[0].CommitSHA != h.SHA, nil
}

// DeployHead queues a deployment of a head found by polling or reconciliation unless it is no
// longer missing, checked again as it is stored; it returns the deployment, nil when none was made.
// A preview's head is recorded as the push or pull request update it stands for, by the same rules
// (alias ownership, fork approval, the stale rule, a closed pull request's preview).
func (s *Service) DeployHead(ctx context.Context, h Head) (*store.Deployment, error) {
	p, err := s.store.Project(h.ProjectID)
	if err != nil {
		return nil, err
	}
	alias, deploys := h.alias(p)
	if !deploys {
		return nil, nil
	}
	log := s.log.With("project", p.ID, "branch", h.Branch, "commit", h.SHA[:7], "trigger", h.Trigger)
	if alias != "" || h.Moved() {
		return s.deployPushedHead(ctx, log, p, h, alias)
	}
	d := &store.Deployment{ProjectID: h.ProjectID, CommitSHA: h.SHA, CommitMessage: h.Message, CommitAuthor: h.Author,
		Branch: h.Branch, Trigger: h.Trigger, SkipMarkers: h.MessageUnknown}
	created, err := s.store.DeployHead(ctx, d)
	if err != nil || !created {
		return nil, err
	}
	s.builds.Wake()
	log.Info("deployment queued", "deployment", d.ID)
	return d, nil
}

// deployPushedHead records head h of p as a push to its alias ("" for production), as receivePush
// and receivePullRequest do for a delivery, and returns the deployment it queued, nil when none.
func (s *Service) deployPushedHead(ctx context.Context, log *slog.Logger, p *store.Project, h Head, alias string) (*store.Deployment, error) {
	hold := false
	if h.PullRequest != 0 {
		var refusal string
		var err error
		if refusal, hold, err = s.forkRule(p, alias, h.PullRequest, h.SHA, h.Fork, false); err != nil || refusal != "" {
			if refusal != "" {
				log.Info("head not deployed: " + refusal)
			}
			return nil, err
		}
	}
	push := store.Push{ProjectID: p.ID, CommitSHA: h.SHA, CommitMessage: h.Message, CommitAuthor: h.Author, Branch: h.Branch,
		Before: h.Before, Alias: alias, PullRequest: h.PullRequest, Fork: h.Fork, Hold: hold, Reopen: true, Trigger: h.Trigger,
		SkipMarkers: h.MessageUnknown}
	res, err := s.store.RecordPush(ctx, push)
	switch {
	case err != nil:
		return nil, err
	case res.Stale || res.Closed:
		log.Info("head not deployed: its branch or pull request has moved on")
		return nil, nil
	case res.Taken != nil:
		log.Info(fmt.Sprintf("head not deployed: its preview URL belongs to branch '%s' (preview %s)", res.Taken.Branch, res.Taken.Alias))
		return nil, nil
	case hold:
		s.report(s.log.With("project", p.ID, "alias", alias), "a fork's pull request", s.reports.AwaitingApproval(p, h.PullRequest, alias, h.SHA))
		return nil, nil
	case res.Duplicate:
		return nil, nil
	}
	s.builds.Wake()
	log.Info("deployment queued", "deployment", res.DeploymentID, "alias", alias)
	return s.store.Deployment(res.DeploymentID)
}

// BranchGone takes down the preview alias of project projectID's branch, which the repository no
// longer has, as the branch's deletion does; last is the preview's head, the branch's last commit.
// A branch pushed again meanwhile, or an alias that another branch owns, is left alone.
func (s *Service) BranchGone(projectID int64, branch, last, alias string) error {
	p, err := s.store.Project(projectID)
	if err != nil {
		return err
	}
	if _, err := s.deleteBranch(p, branch, last, alias); !errors.Is(err, store.ErrStaleDeletion) {
		return err
	}
	s.log.Info("branch found gone, but it was pushed again meanwhile: its preview stays", "project", p.ID, "branch", branch)
	return nil
}

// forkRule applies fork_previews to pull request n's head sha (approval is a miaobu:preview
// label): it returns why the head is not deployed at all, or whether it waits for an approval.
func (s *Service) forkRule(p *store.Project, alias string, n int, sha string, fork, approval bool) (refusal string, hold bool, err error) {
	switch {
	case fork && p.ForkPreviews == trigger.ForkPreviewsOff:
		return fmt.Sprintf("PR #%d is from a fork, and previews of forks are off for this project", n), false, nil
	case !fork || approval || p.ForkPreviews != trigger.ForkPreviewsApprove:
		return "", false, nil
	}
	pv, err := s.store.Preview(p.ID, alias)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", false, err
	}
	return "", pv == nil || pv.ApprovedSHA != sha, nil
}

// ClosePullRequest takes down the preview of project projectID's pull request n, which is no
// longer among the open pull requests, if it has one.
func (s *Service) ClosePullRequest(projectID int64, n int) error {
	p, err := s.store.Project(projectID)
	if err != nil {
		return err
	}
	if _, err := s.takeDown(p, trigger.PullRequestAlias(n), "pull request closed"); !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// SkipHead reports to GitHub that commit sha, a head found by polling or reconciliation, is not
// deployed for reason, as a skipped push is reported, so that a required check does not wait for it.
func (s *Service) SkipHead(projectID int64, sha, reason string) error {
	p, err := s.store.Project(projectID)
	if err != nil {
		return err
	}
	s.report(s.log.With("project", p.ID, "commit", sha[:7]), "a skipped commit", s.reports.Skipped(p, sha, reason))
	return nil
}

// LastDeployed returns the commit live where head h deploys (production or its preview alias),
// "" when none is.
func (s *Service) LastDeployed(h Head) (string, error) {
	p, err := s.store.Project(h.ProjectID)
	if err != nil {
		return "", err
	}
	alias, _ := h.alias(p)
	return s.lastDeployedCommit(p, alias)
}
