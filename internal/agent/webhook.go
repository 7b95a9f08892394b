package agent

import (
	"errors"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/domain"
	"github.com/miaobu/miaobu/internal/github"
)

// MaxWebhookBody is the largest webhook body accepted: GitHub's 25 MB cap plus room for form encoding.
const MaxWebhookBody = 32 << 20

// handleWebhook answers POST /api/v1/webhooks/github/{project_id} by the table of contract sections
// 5 and 7 and records the delivery's outcome, in the metrics and one log line, exactly once.
func (a *Agent) handleWebhook(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	guid, event := deliveryToken(r.Header.Get("X-GitHub-Delivery")), deliveryToken(r.Header.Get("X-GitHub-Event"))
	remote := clientAddr(r, a.trustedProxies)
	log := a.log.With("delivery", guid, "event", event, "remote_addr", remote)
	receipt, err := a.receiveWebhook(w, r, domain.Delivery{GUID: guid, Event: event, RemoteAddr: remote})
	a.webhookDone(log, start, event, receipt)
	if err != nil {
		a.writeFailure(w, r, err)
		return
	}
	answer := api.WebhookAnswer{Status: receipt.Status, Message: receipt.Message, DeploymentID: receipt.DeploymentID}
	switch receipt.Outcome {
	case domain.OutcomePing:
		answer.ProjectID = receipt.ProjectID
	case domain.OutcomeSuccess:
		answer.CommitSHA, answer.CommitMessage, answer.Branch = receipt.CommitSHA, receipt.CommitMessage, receipt.Branch
	}
	_ = writeJSON(w, http.StatusOK, answer)
}

// maxDeliveryToken is the longest X-GitHub-Delivery or X-GitHub-Event kept.
const maxDeliveryToken = 64

// deliveryToken bounds an unsigned header that is logged and stored with a delivery: its first
// maxDeliveryToken bytes, each outside [A-Za-z0-9_-] replaced by '-'. GitHub, Gitea and Forgejo
// send a 36-character UUID as the delivery and a snake_case event name of at most about 30
// characters, which pass unchanged: no real delivery is refused or altered, while a replayed one
// cannot make the store or the log hold a header of any size or any bytes.
func deliveryToken(s string) string {
	b := []byte(s[:min(len(s), maxDeliveryToken)])
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	return string(b)
}

// receiveWebhook runs the checks of delivery d in the contract's order: the project, the body (its
// size, and room for it in memory, in time), the domain's checks of the signed body, and, once the
// body is let go, the domain's record of the delivery.
func (a *Agent) receiveWebhook(w http.ResponseWriter, r *http.Request, d domain.Delivery) (domain.Receipt, error) {
	project, refusal, err := a.domain.WebhookProject(r.PathValue("project_id"))
	if err != nil {
		return refusal, err
	}
	refused := func(outcome domain.Outcome, err error) (domain.Receipt, error) {
		return domain.Receipt{Outcome: outcome, ProjectID: project.ID}, err
	}
	// Bodies are held in memory before anyone knows they are signed: the budget bounds how many
	// bytes strangers can make the agent hold, and the deadline how long a body that trickles in
	// holds its room. The deadline is lifted once the body is read, as the server's own read after
	// the body would otherwise end the request's context.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(a.webhookBodies.readTimeout))
	held, err := a.webhookBodies.read(r.Context(), r.Body, r.ContentLength, MaxWebhookBody)
	_ = rc.SetReadDeadline(time.Time{})
	defer held.release()
	switch {
	case errors.Is(err, errBodyTooLarge):
		w.Header().Set("Connection", "close") // rather than read the rest of a body that is refused
		return refused(domain.OutcomeTooLarge, domain.Errorf(domain.TooLarge, "Payload too large"))
	case errors.Is(err, errBusy):
		w.Header().Set("Connection", "close")
		w.Header().Set("Retry-After", strconv.Itoa(int(webhookBusyWait/time.Second)))
		return refused(domain.OutcomeBusy, domain.Errorf(domain.Unavailable, "Busy, retry later"))
	case errors.Is(err, os.ErrDeadlineExceeded):
		w.Header().Set("Connection", "close")
		return refused(domain.OutcomeTimeout, domain.Errorf(domain.TooSlow, "Request body not received in time"))
	case err != nil:
		return refused(domain.OutcomeUnreadable, domain.Errorf(domain.Invalid, "Could not read the request body"))
	}
	d.Signature, d.ContentType, d.Body = r.Header.Get("X-Hub-Signature-256"), r.Header.Get("Content-Type"), held.data
	verified, refusal, err := a.domain.Verify(project, d)
	if err != nil {
		return refusal, err
	}
	// What is left waits on the disk, not on the body: its room goes to the next delivery now.
	held.release()
	return a.domain.Receive(r.Context(), project, verified)
}

// webhookMethodNotAllowed answers any other method than POST on the webhook path, which would
// otherwise fall through to the admin API.
func webhookMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", http.MethodPost)
	writeError(w, http.StatusMethodNotAllowed, "Method not allowed")
}

// webhookDone counts a delivery's outcome and logs it with the project, deployment and commit it concerns.
func (a *Agent) webhookDone(log *slog.Logger, start time.Time, event string, receipt domain.Receipt) {
	elapsed := time.Since(start)
	if receipt.Outcome == domain.OutcomeBadSignature {
		a.metrics.signatureFailures.Inc()
	}
	a.metrics.webhookLatency.Observe(elapsed.Seconds())
	a.metrics.deliveries.WithLabelValues(eventLabel(event), string(receipt.Outcome)).Inc()
	if receipt.ProjectID != 0 {
		log = log.With("project", receipt.ProjectID)
	}
	if receipt.DeploymentID != 0 {
		log = log.With("deployment", receipt.DeploymentID)
	}
	if receipt.CommitSHA != "" {
		log = log.With("commit", receipt.CommitSHA[:7])
	}
	if receipt.Reason != "" {
		log = log.With("reason", receipt.Reason)
	}
	log.Info("webhook", "outcome", receipt.Outcome, "duration_ms", float64(elapsed.Microseconds())/1000)
}

// eventLabels are the values of the metrics' event label: the events hooks subscribe to, ping and other.
var eventLabels = append([]string{"ping", "other"}, github.HookEvents...)

// eventLabel keeps the metrics' event label to eventLabels whatever a client sends.
func eventLabel(event string) string {
	if slices.Contains(eventLabels, event) {
		return event
	}
	return "other"
}

// listDeliveries answers GET /api/v1/webhooks/deliveries?project_id=&limit=: the recorded deliveries,
// newest first, like GitHub's "Recent Deliveries" seen from the agent's side.
func (a *Agent) listDeliveries(w http.ResponseWriter, r *http.Request) error {
	project, limit, err := listQuery(r)
	if err != nil {
		return err
	}
	deliveries, err := a.domain.Deliveries(project, limit)
	if err != nil {
		return err
	}
	out := make([]api.Delivery, 0, len(deliveries))
	for _, d := range deliveries {
		out = append(out, api.Delivery(d))
	}
	return writeJSON(w, http.StatusOK, out)
}
