package agent

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/domain"
)

// MaxWebhookBody is the largest webhook body accepted: GitHub's 25 MB cap plus room for form encoding.
const MaxWebhookBody = 32 << 20

// handleWebhook answers POST /api/v1/webhooks/github/{project_id} by the table of contract sections
// 5 and 7 and records the delivery's outcome, in the metrics and one log line, exactly once.
func (a *Agent) handleWebhook(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	event, remote := r.Header.Get("X-GitHub-Event"), clientAddr(r, a.trustedProxies)
	log := a.log.With("delivery", r.Header.Get("X-GitHub-Delivery"), "event", event, "remote_addr", remote)
	receipt, err := a.receiveWebhook(w, r, remote)
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

// receiveWebhook runs the checks of a delivery in the contract's order: the project, the body
// (its size, and room for it in memory), the domain's checks of the signed body, and, once the body
// is let go, the domain's record of the delivery.
func (a *Agent) receiveWebhook(w http.ResponseWriter, r *http.Request, remote string) (domain.Receipt, error) {
	project, refusal, err := a.domain.WebhookProject(r.PathValue("project_id"))
	if err != nil {
		return refusal, err
	}
	refused := func(outcome domain.Outcome, err error) (domain.Receipt, error) {
		return domain.Receipt{Outcome: outcome, ProjectID: project.ID}, err
	}
	// Bodies are held in memory before anyone knows they are signed: the budget bounds how many
	// bytes strangers can make the agent hold.
	held, err := a.webhookBodies.read(r.Context(), r.Body, r.ContentLength, MaxWebhookBody)
	defer held.release()
	switch {
	case errors.Is(err, errBodyTooLarge):
		w.Header().Set("Connection", "close") // rather than read the rest of a body that is refused
		return refused(domain.OutcomeTooLarge, domain.Errorf(domain.TooLarge, "Payload too large"))
	case errors.Is(err, errBusy):
		w.Header().Set("Connection", "close")
		w.Header().Set("Retry-After", strconv.Itoa(int(webhookBusyWait/time.Second)))
		return refused(domain.OutcomeBusy, domain.Errorf(domain.Unavailable, "Busy, retry later"))
	case err != nil:
		return refused(domain.OutcomeUnreadable, domain.Errorf(domain.Invalid, "Could not read the request body"))
	}
	verified, refusal, err := a.domain.Verify(project, domain.Delivery{GUID: r.Header.Get("X-GitHub-Delivery"),
		Event: r.Header.Get("X-GitHub-Event"), RemoteAddr: remote, Signature: r.Header.Get("X-Hub-Signature-256"),
		ContentType: r.Header.Get("Content-Type"), Body: held.data})
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
	log.Info("webhook", "outcome", receipt.Outcome, "duration_ms", float64(elapsed.Microseconds())/1000)
}

// eventLabel keeps the metrics' event label to a few values whatever a client sends.
func eventLabel(event string) string {
	switch event {
	case "push", "ping", "deployment":
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
