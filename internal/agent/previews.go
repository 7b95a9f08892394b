package agent

import (
	"fmt"
	"net/http"

	"github.com/miaobu/miaobu/internal/api"
)

// listPreviews answers GET /api/v1/projects/{id}/previews: each alias, its live deployment and URL.
func (a *Agent) listPreviews(w http.ResponseWriter, r *http.Request) error {
	p, previews, err := a.domain.Previews(r.PathValue("id"))
	if err != nil {
		return err
	}
	out := make([]api.Preview, 0, len(previews))
	for _, pv := range previews {
		out = append(out, a.previewView(p, pv))
	}
	return writeJSON(w, http.StatusOK, out)
}

// approvePreview answers POST /api/v1/projects/{id}/previews/pr-{n}/approve: the fork's current
// head commit, or the one the body names if it is still the head, is built.
func (a *Agent) approvePreview(w http.ResponseWriter, r *http.Request) error {
	var req api.ApproveRequest
	if err := decodeOptionalBody(w, r, &req); err != nil {
		return err
	}
	receipt, err := a.domain.ApprovePreview(r.PathValue("id"), r.PathValue("alias"), req.CommitSHA)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, api.WebhookAnswer{Status: receipt.Status, Message: receipt.Message,
		DeploymentID: receipt.DeploymentID, CommitSHA: receipt.CommitSHA})
}

// removePreview answers DELETE /api/v1/projects/{id}/previews/{alias}: the alias is taken down now.
func (a *Agent) removePreview(w http.ResponseWriter, r *http.Request) error {
	pv, err := a.domain.RemovePreview(r.PathValue("id"), r.PathValue("alias"))
	if err != nil {
		return err
	}
	message := fmt.Sprintf("Preview %s removed", pv.Alias)
	if pv.Removed() {
		message = fmt.Sprintf("Preview %s was removed already", pv.Alias)
	}
	return writeJSON(w, http.StatusOK, api.WebhookAnswer{Status: "ok", Message: message})
}
