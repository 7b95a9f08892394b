package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/store"
)

// MaxWebhookBody is the largest webhook body accepted: GitHub's 25 MB cap plus room for form encoding.
const MaxWebhookBody = 32 << 20

// handleWebhook answers POST /api/v1/webhooks/github/{project_id} with the checks of contract section 5,
// in its order. It answers success only once the deployment is durable.
func (a *Agent) handleWebhook(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	event, delivery := r.Header.Get("X-GitHub-Event"), r.Header.Get("X-GitHub-Delivery")
	remote := clientAddr(r, a.trustedProxies)
	log := a.log.With("delivery", delivery, "event", event, "remote_addr", remote)
	rawID := r.PathValue("project_id")
	id, err := strconv.ParseInt(rawID, 10, 64)
	var project *store.Project
	if err == nil {
		project, err = a.store.Project(id)
	}
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, strconv.ErrSyntax) && !errors.Is(err, strconv.ErrRange) {
			log.Error("webhook: reading project", "project", rawID, "err", err)
			writeError(w, http.StatusServiceUnavailable, "Store unavailable, retry later")
			return
		}
		a.webhookDone(log, start, event, "not_found")
		writeError(w, http.StatusNotFound, fmt.Sprintf("Project %s not found", rawID))
		return
	}
	log = log.With("project", id)
	record := store.Delivery{GUID: delivery, Event: event, ProjectID: id, RemoteAddr: remote}

	// Bodies are held in memory before anyone knows they are signed: the budget bounds how many
	// bytes strangers can make the agent hold.
	held, err := a.webhookBodies.read(r.Context(), r.Body, r.ContentLength, MaxWebhookBody)
	defer held.release()
	switch {
	case errors.Is(err, errBodyTooLarge):
		a.webhookDone(log, start, event, "too_large")
		w.Header().Set("Connection", "close") // rather than read the rest of a body that is refused
		writeError(w, http.StatusRequestEntityTooLarge, "Payload too large")
		return
	case errors.Is(err, errBusy):
		a.webhookDone(log, start, event, "busy")
		w.Header().Set("Connection", "close")
		w.Header().Set("Retry-After", strconv.Itoa(int(webhookBusyWait/time.Second)))
		writeError(w, http.StatusServiceUnavailable, "Busy, retry later")
		return
	case err != nil:
		a.webhookDone(log, start, event, "unreadable")
		writeError(w, http.StatusBadRequest, "Could not read the request body")
		return
	}
	body := held.data
	if project.WebhookSecret == "" {
		a.webhookDone(log, start, event, "not_configured")
		writeError(w, http.StatusBadRequest, "Webhook not configured for this project")
		return
	}
	secret := []byte(project.WebhookSecret)
	signature := r.Header.Get("X-Hub-Signature-256")
	signed := github.VerifySignature(secret, signature, body)
	payload := body
	if github.IsFormContentType(r.Header.Get("Content-Type")) {
		// GitHub signs the raw form body, Gitea and Forgejo the JSON inside payload=: accept either.
		// The raw body is checked first, as decoding overwrites it (a second copy of a large body
		// would be memory outside the budget).
		if payload, err = github.DecodeFormPayload(body); err != nil {
			payload = nil
		}
		signed = signed || (payload != nil && github.VerifySignature(secret, signature, payload))
	}
	if !signed {
		a.metrics.signatureFailures.Inc()
		a.webhookDone(log, start, event, "bad_signature")
		writeError(w, http.StatusUnauthorized, "Invalid webhook signature")
		return
	}

	var push *github.Push
	if event == "push" && payload != nil {
		push, err = github.ParsePush(payload)
	}
	// What is left waits on the disk, not on the body: its room goes to the next delivery now.
	held.release()

	switch event {
	case "ping":
		record.Outcome = store.OutcomePing
		if !a.recordDelivery(w, r, log, record) {
			return
		}
		a.webhookDone(log, start, event, "ping")
		writeJSON(w, http.StatusOK, api.WebhookAnswer{Status: "ok", Message: "Webhook received and verified", ProjectID: id})
		return
	case "push":
	default:
		record.Outcome = store.OutcomeIgnored
		if !a.recordDelivery(w, r, log, record) {
			return
		}
		a.webhookDone(log, start, event, "ignored")
		writeJSON(w, http.StatusOK, api.WebhookAnswer{Status: "ignored", Message: fmt.Sprintf("Event type '%s' is not handled", event)})
		return
	}

	if push == nil || err != nil {
		a.webhookDone(log, start, event, "invalid_payload")
		writeError(w, http.StatusBadRequest, "Invalid JSON payload")
		return
	}
	ignore := func(message string) {
		record.Outcome = store.OutcomeIgnored
		if !a.recordDelivery(w, r, log, record) {
			return
		}
		a.webhookDone(log, start, event, "ignored")
		writeJSON(w, http.StatusOK, api.WebhookAnswer{Status: "ignored", Message: message})
	}
	branch, isBranch := push.Branch()
	switch {
	case !isBranch:
		ignore(fmt.Sprintf("Push to '%s' ignored (not a branch)", push.Ref))
		return
	case push.IsDeletion():
		ignore(fmt.Sprintf("Deletion of branch '%s' ignored", branch))
		return
	case branch != project.DefaultBranch:
		ignore(fmt.Sprintf("Push to '%s' ignored (only '%s' triggers deployment)", branch, project.DefaultBranch))
		return
	}
	sha, message, author := push.Commit()
	if !github.ValidSHA(sha) {
		a.webhookDone(log, start, event, "invalid_payload")
		writeError(w, http.StatusBadRequest, "Invalid JSON payload")
		return
	}
	res, err := a.store.RecordPush(r.Context(), store.Push{ProjectID: id, DeliveryID: delivery, CommitSHA: sha,
		CommitMessage: message, CommitAuthor: author, Branch: branch, Before: push.Before, RemoteAddr: remote})
	if err != nil {
		a.storeFailed(w, r, log, err)
		return
	}
	if res.Stale {
		// A replayed old delivery (its signature stays valid forever) must not roll the site back.
		a.webhookDone(log.With("commit", sha[:7]), start, event, "stale")
		writeJSON(w, http.StatusOK, api.WebhookAnswer{Status: "ignored", Message: fmt.Sprintf("Stale delivery: branch '%s' has moved on", branch)})
		return
	}
	log = log.With("deployment", res.DeploymentID, "commit", sha[:7])
	if res.Duplicate {
		a.webhookDone(log, start, event, "skipped")
		writeJSON(w, http.StatusOK, api.WebhookAnswer{Status: "skipped",
			Message: fmt.Sprintf("Deployment for commit %s already exists", sha[:7]), DeploymentID: res.DeploymentID})
		return
	}
	a.wakeWorkers()
	a.webhookDone(log, start, event, "success")
	writeJSON(w, http.StatusOK, api.WebhookAnswer{Status: "success", Message: fmt.Sprintf("Deployment triggered for commit %s", sha[:7]),
		DeploymentID: res.DeploymentID, CommitSHA: sha, CommitMessage: store.LimitCommitMessage(message), Branch: branch})
}

// webhookMethodNotAllowed answers any other method than POST on the webhook path, which would
// otherwise fall through to the admin API.
func webhookMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", http.MethodPost)
	writeError(w, http.StatusMethodNotAllowed, "Method not allowed")
}

// recordDelivery durably records a delivery that created no deployment, answering the error itself
// and returning false when that fails.
func (a *Agent) recordDelivery(w http.ResponseWriter, r *http.Request, log *slog.Logger, d store.Delivery) bool {
	if err := a.store.RecordDelivery(r.Context(), d); err != nil {
		a.storeFailed(w, r, log, err)
		return false
	}
	return true
}

// storeFailed answers a webhook whose record could not be stored: GitHub shows the failure and the
// user can redeliver.
func (a *Agent) storeFailed(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Project %s not found", r.PathValue("project_id")))
		return
	}
	log.Error("webhook: recording delivery", "err", err)
	writeError(w, http.StatusServiceUnavailable, "Could not record the delivery, redeliver it later")
}

// webhookDone logs and counts a webhook answer.
func (a *Agent) webhookDone(log *slog.Logger, start time.Time, event, outcome string) {
	elapsed := time.Since(start)
	a.metrics.webhookLatency.Observe(elapsed.Seconds())
	a.metrics.deliveries.WithLabelValues(eventLabel(event), outcome).Inc()
	log.Info("webhook", "outcome", outcome, "duration_ms", float64(elapsed.Microseconds())/1000)
}

// eventLabel keeps the metrics' event label to a few values whatever a client sends.
func eventLabel(event string) string {
	switch event {
	case "push", "ping":
		return event
	}
	return "other"
}

// listDeliveries answers GET /api/v1/webhooks/deliveries?project_id=&limit=: the recorded deliveries,
// newest first, like GitHub's "Recent Deliveries" seen from the agent's side.
func (a *Agent) listDeliveries(w http.ResponseWriter, r *http.Request) {
	projectID, limit, ok := a.listQuery(w, r)
	if !ok {
		return
	}
	deliveries, err := a.store.Deliveries(projectID, limit)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	out := make([]api.Delivery, 0, len(deliveries))
	for _, d := range deliveries {
		out = append(out, api.Delivery(d))
	}
	writeJSON(w, http.StatusOK, out)
}
