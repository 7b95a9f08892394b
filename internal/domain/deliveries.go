package domain

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/store"
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
)

// Outcomes lists every Outcome, for the metrics to export each from the start.
var Outcomes = []Outcome{OutcomeNotFound, OutcomeTooLarge, OutcomeUnreadable, OutcomeTimeout, OutcomeNotConfigured,
	OutcomeBadSignature, OutcomeInvalidPayload, OutcomeBusy, OutcomeUnavailable, OutcomePing, OutcomeIgnored,
	OutcomeStale, OutcomeSkipped, OutcomeSuccess}

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

// Verified is a delivery whose signature checked out, its push or deployment parsed: recording it
// needs no body.
type Verified struct {
	GUID, Event, RemoteAddr string
	// Push is the payload of a push event, nil for another event.
	Push *github.Push
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
	case "deployment":
		return s.receiveDeployment(ctx, p, v)
	}
	return s.ignore(ctx, p, v, fmt.Sprintf("Event type '%s' is not handled", v.Event))
}

// receivePush records a verified push: a branch other than the production one is ignored, so is a
// replayed old delivery, and the pushed commit is deployed unless a deployment of it is queued,
// running or live.
func (s *Service) receivePush(ctx context.Context, p *store.Project, v Verified) (Receipt, error) {
	push := v.Push
	branch, isBranch := push.Branch()
	switch {
	case !isBranch:
		return s.ignore(ctx, p, v, fmt.Sprintf("Push to '%s' ignored (not a branch)", push.Ref))
	case push.IsDeletion():
		return s.ignore(ctx, p, v, fmt.Sprintf("Deletion of branch '%s' ignored", branch))
	case branch != p.DefaultBranch:
		return s.ignore(ctx, p, v, fmt.Sprintf("Push to '%s' ignored (only '%s' triggers deployment)", branch, p.DefaultBranch))
	}
	sha, message, author := push.Commit()
	if !github.ValidSHA(sha) {
		return refused(p, OutcomeInvalidPayload, Invalid, "Invalid JSON payload")
	}
	res, err := s.store.RecordPush(ctx, store.Push{ProjectID: p.ID, DeliveryID: v.GUID, CommitSHA: sha,
		CommitMessage: message, CommitAuthor: author, Branch: branch, Before: push.Before, RemoteAddr: v.RemoteAddr})
	switch {
	case err != nil:
		return recordFailed(p, err)
	case res.Stale:
		// A replayed old delivery (its signature stays valid forever) must not roll the site back.
		return Receipt{Outcome: OutcomeStale, Status: "ignored", Message: fmt.Sprintf("Stale delivery: branch '%s' has moved on", branch),
			ProjectID: p.ID, CommitSHA: sha}, nil
	case res.Duplicate:
		return Receipt{Outcome: OutcomeSkipped, Status: "skipped", Message: fmt.Sprintf("Deployment for commit %s already exists", sha[:7]),
			ProjectID: p.ID, DeploymentID: res.DeploymentID, CommitSHA: sha}, nil
	}
	s.builds.Wake()
	return Receipt{Outcome: OutcomeSuccess, Status: "success", Message: fmt.Sprintf("Deployment triggered for commit %s", sha[:7]),
		ProjectID: p.ID, DeploymentID: res.DeploymentID, CommitSHA: sha, CommitMessage: store.LimitCommitMessage(message), Branch: branch}, nil
}

// ignore durably records a delivery that is ignored and answers why.
func (s *Service) ignore(ctx context.Context, p *store.Project, v Verified, message string) (Receipt, error) {
	return s.record(ctx, p, v, store.OutcomeIgnored, Receipt{Outcome: OutcomeIgnored, Status: "ignored", Message: message})
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
