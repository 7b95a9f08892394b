package domain

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/store"
	"github.com/miaobu/miaobu/internal/trigger"
)

// Outcome names what became of a webhook delivery, in the agent's metrics and log.
type Outcome string

// Outcomes of a delivery.
const (
	OutcomeNotFound       Outcome = "not_found"
	OutcomeTooLarge       Outcome = "too_large"
	OutcomeUnreadable     Outcome = "unreadable"
	OutcomeTimeout        Outcome = "timeout"
	OutcomeNotConfigured  Outcome = "not_configured"
	OutcomeBadSignature   Outcome = "bad_signature"
	OutcomeInvalidPayload Outcome = "invalid_payload"
	OutcomeBusy           Outcome = "busy"
	OutcomeUnavailable    Outcome = "unavailable"
	OutcomePing           Outcome = "ping"
	OutcomeIgnored        Outcome = "ignored"
	OutcomeStale          Outcome = "stale"
	OutcomeSkipped        Outcome = "skipped"
	OutcomeSuccess        Outcome = "success"
	OutcomeRemoved        Outcome = "removed"
)

// Outcomes lists every Outcome, for the metrics to export each from the start.
var Outcomes = []Outcome{OutcomeNotFound, OutcomeTooLarge, OutcomeUnreadable, OutcomeTimeout, OutcomeNotConfigured,
	OutcomeBadSignature, OutcomeInvalidPayload, OutcomeBusy, OutcomeUnavailable, OutcomePing, OutcomeIgnored,
	OutcomeStale, OutcomeSkipped, OutcomeSuccess, OutcomeRemoved}

// Delivery is one webhook request addressed to a project, its body read.
type Delivery struct {
	// GUID is X-GitHub-Delivery, recorded for the history; Event is X-GitHub-Event.
	GUID, Event string
	// RemoteAddr is the client's address, recorded with the delivery.
	RemoteAddr string
	// Signature is X-Hub-Signature-256; ContentType says whether Body is JSON or a form.
	Signature, ContentType string
	Body                   []byte
}

// Verified is a delivery whose signature checked out, its push, pull request or deployment parsed:
// recording it needs no body.
type Verified struct {
	GUID, Event, RemoteAddr string
	// Push is the payload of a push event, nil for another event.
	Push *github.Push
	// PullRequest is the payload of a pull_request event, nil for another event.
	PullRequest *github.PullRequest
	// Deployment is the payload of a deployment event, nil for another event.
	Deployment *github.DeploymentEvent
}

// Receipt is what became of a delivery. Outcome is always set; the other fields make the answer
// of an accepted delivery.
type Receipt struct {
	Outcome Outcome
	// Status is the answer's status: ok, ignored, skipped or success.
	Status  string
	Message string
	// ProjectID is the project's, once it is known.
	ProjectID int64
	// DeploymentID is the deployment created, or the existing one of the same commit.
	DeploymentID int64
	// CommitSHA is the pushed commit, once the push is valid; CommitMessage and Branch are set with
	// it for a success.
	CommitSHA, CommitMessage, Branch string
	// Reason says, for the log, why the delivery was ignored or skipped, or why it builds although
	// the project watches paths.
	Reason string
}

// refused is the Receipt and error of a delivery to p refused with outcome.
func refused(p *store.Project, outcome Outcome, kind Kind, detail string) (Receipt, error) {
	return Receipt{Outcome: outcome, ProjectID: p.ID}, &Error{Kind: kind, Detail: detail}
}

// WebhookProject finds the project a delivery is addressed to by its numeric id; when it cannot,
// it returns the refusal's Receipt with the error. A store failure is Unavailable, for GitHub to
// show and the user to redeliver.
func (s *Service) WebhookProject(rawID string) (*store.Project, Receipt, error) {
	id, err := strconv.ParseInt(rawID, 10, 64)
	var p *store.Project
	if err == nil {
		p, err = s.store.Project(id)
	}
	switch {
	case err == nil:
		return p, Receipt{}, nil
	case errors.Is(err, store.ErrNotFound), errors.Is(err, strconv.ErrSyntax), errors.Is(err, strconv.ErrRange):
		return nil, Receipt{Outcome: OutcomeNotFound}, Errorf(NotFound, "Project %s not found", rawID)
	}
	return nil, Receipt{Outcome: OutcomeUnavailable}, &Error{Kind: Unavailable, Detail: "Store unavailable, retry later", Err: err}
}

// Verify runs the checks of contract section 5 that need a delivery's body, in their order: the
// project's secret, the signature and, for a push or a deployment, the payload. A form body is
// decoded in place, so d.Body must not be used afterwards.
func (s *Service) Verify(p *store.Project, d Delivery) (Verified, Receipt, error) {
	if p.WebhookSecret == "" {
		receipt, err := refused(p, OutcomeNotConfigured, Invalid, "Webhook not configured for this project")
		return Verified{}, receipt, err
	}
	payload, verified := github.VerifyDelivery([]byte(p.WebhookSecret), d.Signature, d.ContentType, d.Body)
	if !verified {
		receipt, err := refused(p, OutcomeBadSignature, Unauthorized, "Invalid webhook signature")
		return Verified{}, receipt, err
	}
	v := Verified{GUID: d.GUID, Event: d.Event, RemoteAddr: d.RemoteAddr}
	var err error // both parsers refuse a nil payload, a form body that did not decode
	switch d.Event {
	case "push":
		v.Push, err = github.ParsePush(payload)
	case "deployment":
		v.Deployment, err = github.ParseDeployment(payload)
	case "pull_request":
		v.PullRequest, err = github.ParsePullRequest(payload)
	}
	if err != nil {
		receipt, err := refused(p, OutcomeInvalidPayload, Invalid, "Invalid JSON payload")
		return Verified{}, receipt, err
	}
	return v, Receipt{}, nil
}

// Receive records a verified delivery to p by the checks of contract sections 5 and 7 that
// follow: the event, the branch, the stale rule and the duplicate rule. A success is answered only
// once its deployment is durable.
func (s *Service) Receive(ctx context.Context, p *store.Project, v Verified) (Receipt, error) {
	switch v.Event {
	case "ping":
		return s.record(ctx, p, v, store.OutcomePing, Receipt{Outcome: OutcomePing, Status: "ok", Message: "Webhook received and verified"})
	case "push":
		return s.receivePush(ctx, p, v)
	case "pull_request":
		return s.receivePullRequest(ctx, p, v)
	case "deployment":
		return s.receiveDeployment(ctx, p, v)
	}
	return s.ignore(ctx, p, v, fmt.Sprintf("Event type '%s' is not handled", v.Event))
}

// receivePush records a verified push by the rows of contract sections 5 and 7: a branch that
// deploys neither to production nor to a preview is ignored, the deletion of a preview branch takes
// its preview down, a skip marker or a change outside the watched paths skips the push, so does a
// replayed old delivery, and the pushed commit is deployed to the branch's alias unless a
// deployment of it there is queued, running or live.
func (s *Service) receivePush(ctx context.Context, p *store.Project, v Verified) (Receipt, error) {
	push := v.Push
	branch, isBranch := push.Branch()
	if !isBranch {
		return s.ignore(ctx, p, v, fmt.Sprintf("Push to '%s' ignored (not a branch)", push.Ref))
	}
	alias, deploys := trigger.Environment(branch, p.DefaultBranch, p.PreviewBranches)
	switch {
	case push.IsDeletion() && alias != "":
		return s.branchDeleted(ctx, p, v, branch, alias)
	case push.IsDeletion():
		return s.ignore(ctx, p, v, fmt.Sprintf("Deletion of branch '%s' ignored", branch))
	case !deploys:
		return s.ignore(ctx, p, v, fmt.Sprintf("Push to '%s' ignored (only '%s' triggers deployment)", branch, p.DefaultBranch))
	}
	sha, message, author := push.Commit()
	if !github.ValidSHA(sha) {
		return refused(p, OutcomeInvalidPayload, Invalid, "Invalid JSON payload")
	}
	if marker, found := trigger.SkipMarker(message); found {
		return s.skip(ctx, p, v, sha, "commit message contains "+marker)
	}
	var why string
	if len(p.WatchPaths) > 0 {
		last, err := s.lastDeployedCommit(p, alias)
		if err != nil {
			return recordFailed(p, err)
		}
		decision := trigger.Watched(p.WatchPaths, trigger.Change{Before: push.Before, Forced: push.Forced,
			Commits: push.Commits, Files: push.Files}, last)
		if !decision.Build {
			return s.skip(ctx, p, v, sha, decision.Reason)
		}
		why = decision.Reason
	}
	res, err := s.store.RecordPush(ctx, store.Push{ProjectID: p.ID, DeliveryID: v.GUID, CommitSHA: sha,
		CommitMessage: message, CommitAuthor: author, Branch: branch, Before: push.Before, RemoteAddr: v.RemoteAddr, Alias: alias})
	switch {
	case err != nil:
		return recordFailed(p, err)
	case res.Stale:
		// A replayed old delivery (its signature stays valid forever) must not roll the site back.
		message := fmt.Sprintf("Stale delivery: branch '%s' has moved on", branch)
		return Receipt{Outcome: OutcomeStale, Status: "ignored", Message: message, ProjectID: p.ID, CommitSHA: sha, Reason: message}, nil
	case res.Taken != nil:
		message := fmt.Sprintf("Push to '%s' ignored: its preview URL belongs to branch '%s' (preview %s)", branch, res.Taken.Branch, res.Taken.Alias)
		return Receipt{Outcome: OutcomeIgnored, Status: "ignored", Message: message, ProjectID: p.ID, CommitSHA: sha, Reason: message}, nil
	case res.Duplicate:
		return Receipt{Outcome: OutcomeSkipped, Status: "skipped", Message: fmt.Sprintf("Deployment for commit %s already exists", sha[:7]),
			ProjectID: p.ID, DeploymentID: res.DeploymentID, CommitSHA: sha, Reason: why}, nil
	}
	s.builds.Wake()
	return Receipt{Outcome: OutcomeSuccess, Status: "success", Message: fmt.Sprintf("Deployment triggered for commit %s", sha[:7]),
		ProjectID: p.ID, DeploymentID: res.DeploymentID, CommitSHA: sha, CommitMessage: store.LimitCommitMessage(message), Branch: branch,
		Reason: why}, nil
}

// lastDeployedCommit is the commit live on a project's alias ("" for production), "" when none is.
func (s *Service) lastDeployedCommit(p *store.Project, alias string) (string, error) {
	live := p.ActiveDeploymentID
	if alias != "" {
		pv, err := s.store.Preview(p.ID, alias)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return "", nil
		case err != nil:
			return "", err
		case pv.Removed():
			return "", nil
		}
		live = pv.ActiveDeploymentID
	}
	if live == 0 {
		return "", nil
	}
	d, err := s.store.Deployment(live)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return d.CommitSHA, nil
}

// receivePullRequest records a verified pull_request delivery by the rows of contract section 7:
// closed takes the preview down; opened, reopened and synchronize deploy the head commit as the
// preview pr-<n> unless previews are off, it is a fork's that waits for approval, or its message
// has a skip marker; the label miaobu:preview approves a fork's head commit; the rest is ignored.
func (s *Service) receivePullRequest(ctx context.Context, p *store.Project, v Verified) (Receipt, error) {
	pr := v.PullRequest
	alias := trigger.PullRequestAlias(pr.Number)
	approval := false
	switch pr.Action {
	case "closed":
		return s.previewGone(ctx, p, v, alias, "pull request closed", fmt.Sprintf("Preview for PR #%d removed", pr.Number))
	case "opened", "reopened", "synchronize":
	case "labeled":
		if pr.Label != ApproveLabel {
			return s.ignore(ctx, p, v, fmt.Sprintf("Label '%s' ignored (only '%s' approves a fork's preview)", pr.Label, ApproveLabel))
		}
		approval = true
	default:
		return s.ignore(ctx, p, v, fmt.Sprintf("Pull request action '%s' ignored", pr.Action))
	}
	if !p.PRPreviews {
		return s.ignore(ctx, p, v, "Pull request previews are off for this project")
	}
	if !github.ValidSHA(pr.HeadSHA) {
		return refused(p, OutcomeInvalidPayload, Invalid, "Invalid JSON payload")
	}
	fork := pr.IsFork()
	if approval && (!fork || p.ForkPreviews != trigger.ForkPreviewsApprove) {
		return s.ignore(ctx, p, v, fmt.Sprintf("Label '%s' ignored: PR #%d needs no approval", pr.Label, pr.Number))
	}
	refusal, hold, err := s.forkRule(p, alias, pr.Number, pr.HeadSHA, fork, approval)
	switch {
	case err != nil:
		return recordFailed(p, err)
	case refusal != "":
		return s.ignore(ctx, p, v, refusal)
	}
	// An approval, like a manual deployment, ignores markers.
	message, author, known := s.headCommit(ctx, p, pr.HeadSHA)
	if marker, found := trigger.SkipMarker(message); found && !approval {
		return s.skip(ctx, p, v, pr.HeadSHA, "commit message contains "+marker)
	}
	// A message GitHub did not tell is read by the build from the clone, which cancels the
	// deployment on a skip marker: the update is not lost to a slow GitHub, nor its marker to a
	// project without GitHub access.
	push := store.Push{ProjectID: p.ID, DeliveryID: v.GUID, CommitSHA: pr.HeadSHA,
		CommitMessage: message, CommitAuthor: author, Branch: pr.HeadRef, Before: pr.Before, RemoteAddr: v.RemoteAddr,
		Alias: alias, PullRequest: pr.Number, Fork: fork, Hold: hold, Approve: approval,
		Reopen: pr.Action == "reopened", SkipMarkers: !known && !approval}
	res, err := s.store.RecordPush(ctx, push)
	switch {
	case err != nil:
		return recordFailed(p, err)
	case res.Closed:
		// A late update of a closed pull request must not bring its removed preview back.
		message := fmt.Sprintf("PR #%d is closed", pr.Number)
		return Receipt{Outcome: OutcomeIgnored, Status: "ignored", Message: message, ProjectID: p.ID, CommitSHA: pr.HeadSHA, Reason: message}, nil
	case res.Stale:
		message := fmt.Sprintf("Stale delivery: PR #%d has moved on", pr.Number)
		return Receipt{Outcome: OutcomeStale, Status: "ignored", Message: message, ProjectID: p.ID, CommitSHA: pr.HeadSHA, Reason: message}, nil
	case hold:
		s.report(s.log.With("project", p.ID, "alias", alias), "a fork's pull request", s.reports.AwaitingApproval(p, pr.Number, alias, pr.HeadSHA))
		message := fmt.Sprintf("PR #%d is from a fork: approve it with 'miaobu preview approve' or the %s label", pr.Number, ApproveLabel)
		return Receipt{Outcome: OutcomeIgnored, Status: "ignored", Message: message, ProjectID: p.ID, CommitSHA: pr.HeadSHA, Reason: message}, nil
	}
	return s.previewReceipt(p, pr.Number, push, res), nil
}

// headCommitTimeout bounds asking GitHub for a pull request's head commit while GitHub waits for
// the webhook's answer.
const headCommitTimeout = 5 * time.Second

// headCommit asks GitHub for the message and author of a pull request's head commit, which its
// payload lacks, and reports whether it got them. Without an answer (a project without a GitHub
// repository or token, an error, no answer within s.headCommitTimeout) both are empty: the build
// reads them from the clone.
func (s *Service) headCommit(ctx context.Context, p *store.Project, sha string) (message, author string, known bool) {
	if p.Repo == "" || s.github == nil {
		return "", "", false
	}
	ctx, cancel := context.WithTimeout(ctx, s.headCommitTimeout)
	defer cancel()
	owner, name := splitRepo(p.Repo)
	c, err := s.github.CommitInfo(ctx, owner, name, sha)
	if err != nil {
		if !errors.Is(err, github.ErrNoToken) {
			s.log.Warn("reading a pull request's head commit: its build checks its skip markers", "project", p.ID, "commit", sha[:7], "err", err)
		}
		return "", "", false
	}
	return c.Message, c.Author, true
}

// branchDeleted records the deletion of a preview branch of p, so that replays of its older pushes
// are stale, and takes its preview alias down when the branch owns it; the replay of a deletion
// from before the branch was pushed again is stale.
func (s *Service) branchDeleted(ctx context.Context, p *store.Project, v Verified, branch, alias string) (Receipt, error) {
	pv, err := s.deleteBranch(p, branch, v.Push.Before, alias)
	switch {
	case errors.Is(err, store.ErrStaleDeletion):
		message := fmt.Sprintf("Stale delivery: branch '%s' has moved on", branch)
		return s.record(ctx, p, v, store.OutcomeIgnored, Receipt{Outcome: OutcomeStale, Status: "ignored", Message: message, Reason: message})
	case err != nil:
		return recordFailed(p, err)
	case pv == nil:
		return s.ignore(ctx, p, v, fmt.Sprintf("%s has no preview: nothing to remove", alias))
	case pv.Branch != branch || pv.PullRequest != 0:
		return s.ignore(ctx, p, v, fmt.Sprintf("Deletion of branch '%s' ignored: preview %s belongs to branch '%s'", branch, alias, pv.Branch))
	}
	return s.record(ctx, p, v, store.OutcomeRemoved, Receipt{Outcome: OutcomeRemoved, Status: "ok",
		Message: fmt.Sprintf("Preview for branch '%s' removed", branch), Reason: "branch deleted"})
}

// deleteBranch records the deletion of preview branch branch of p at commit last, so that replays
// of its older pushes are stale, and takes its preview alias down when the branch owns it. It
// returns the preview as it was, nil when the alias has none, and store.ErrStaleDeletion for a
// deletion from before the branch was pushed again.
func (s *Service) deleteBranch(p *store.Project, branch, last, alias string) (*store.Preview, error) {
	pv, cancelled, err := s.store.DeleteBranch(p.ID, branch, last, alias, "branch deleted")
	if err == nil && pv != nil && pv.Branch == branch && pv.PullRequest == 0 {
		s.previewDown(p, pv, cancelled, "branch deleted")
	}
	return pv, err
}

// previewGone takes the preview alias of p down for a delivery (a closed pull request, a deleted
// branch) and answers with done; a delivery for an alias that has no preview is ignored.
func (s *Service) previewGone(ctx context.Context, p *store.Project, v Verified, alias, reason, done string) (Receipt, error) {
	if _, err := s.takeDown(p, alias, reason); errors.Is(err, store.ErrNotFound) {
		return s.ignore(ctx, p, v, fmt.Sprintf("%s has no preview: nothing to remove", alias))
	} else if err != nil {
		return recordFailed(p, err)
	}
	return s.record(ctx, p, v, store.OutcomeRemoved, Receipt{Outcome: OutcomeRemoved, Status: "ok", Message: done, Reason: reason})
}

// skip records a delivery whose commit sha is not deployed for reason, answers why, and tells GitHub
// so, so that a required check does not wait for it forever.
func (s *Service) skip(ctx context.Context, p *store.Project, v Verified, sha, reason string) (Receipt, error) {
	receipt, err := s.ignore(ctx, p, v, "Skipped: "+reason)
	if err == nil {
		receipt.CommitSHA = sha
		s.report(s.log.With("project", p.ID, "commit", sha[:7]), "a skipped commit", s.reports.Skipped(p, sha, reason))
	}
	return receipt, err
}

// ignore durably records a delivery that is ignored and answers why.
func (s *Service) ignore(ctx context.Context, p *store.Project, v Verified, message string) (Receipt, error) {
	return s.record(ctx, p, v, store.OutcomeIgnored, Receipt{Outcome: OutcomeIgnored, Status: "ignored", Message: message, Reason: message})
}

// record durably records a delivery to p that creates no deployment, with the deployment of
// receipt if it names one, then returns receipt.
func (s *Service) record(ctx context.Context, p *store.Project, v Verified, outcome string, receipt Receipt) (Receipt, error) {
	err := s.store.RecordDelivery(ctx, store.Delivery{GUID: v.GUID, Event: v.Event, ProjectID: p.ID, Outcome: outcome,
		DeploymentID: receipt.DeploymentID, RemoteAddr: v.RemoteAddr})
	if err != nil {
		return recordFailed(p, err)
	}
	receipt.ProjectID = p.ID
	return receipt, nil
}

// recordFailed answers a delivery whose record could not be stored: GitHub shows the failure and
// the user can redeliver.
func recordFailed(p *store.Project, err error) (Receipt, error) {
	if errors.Is(err, store.ErrNotFound) {
		return refused(p, OutcomeNotFound, NotFound, fmt.Sprintf("Project %d not found", p.ID))
	}
	return Receipt{Outcome: OutcomeUnavailable, ProjectID: p.ID}, &Error{Kind: Unavailable, Detail: "Could not record the delivery, redeliver it later", Err: err}
}
