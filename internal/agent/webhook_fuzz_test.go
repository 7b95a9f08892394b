package agent_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/github"
)

// FuzzWebhook sends arbitrary events, content types, signatures and bodies: the handler never panics,
// never answers 5xx, and never creates a deployment without a valid signature, or from another event
// than a push or a deployment.
func FuzzWebhook(f *testing.F) {
	ta := agenttest.StartWith(f, agenttest.Config(f), agenttest.Options{APIOnly: true})
	p := ta.AddProject(f, remoteProject("site", "master"))
	path := api.PathWebhookPrefix + strconv.FormatInt(p.ID, 10)
	for _, name := range []string{"push.with-new-branch.payload.json", "push.payload.json", "ping.payload.json"} {
		body := fixture(f, name)
		f.Add("push", "application/json", true, body)
		f.Add("ping", "application/json", false, body)
		f.Add("push", "application/x-www-form-urlencoded", true, []byte("payload="+url.QueryEscape(string(body))))
	}
	f.Add("push", "application/json", true, []byte(`{"ref":"refs/heads/master","after":"zz","head_commit":null}`))
	f.Add("push", "application/json", true, []byte(`{"ref":"refs/heads/master","deleted":true}`))
	f.Add("", "", false, []byte{})
	f.Add("push", "application/x-www-form-urlencoded", true, []byte("payload=%zz"))
	f.Add("deployment", "application/json", true, fixture(f, "deployment.payload.json"))
	f.Add("deployment", "application/json", true, []byte(`{"deployment":{"id":1,"sha":"`+tipSHA+`","environment":"production","payload":{"miaobu":{}}}}`))

	handler := ta.Handler()
	f.Fuzz(func(t *testing.T, event, contentType string, signed bool, body []byte) {
		before := deploymentCount(t, ta)
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("X-GitHub-Event", event)
		req.Header.Set("Content-Type", contentType)
		if signed {
			req.Header.Set("X-Hub-Signature-256", github.Sign([]byte(p.WebhookSecret), body))
		} else {
			req.Header.Set("X-Hub-Signature-256", github.Sign([]byte("wrong"), body))
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for event %q body %q: %s", rec.Code, event, body, rec.Body)
		}
		after := deploymentCount(t, ta)
		if !signed && (after != before || rec.Code != http.StatusUnauthorized) {
			t.Fatalf("unsigned delivery answered %d and changed deployments %d → %d", rec.Code, before, after)
		}
		if after > before && ((event != "push" && event != "deployment") || rec.Code != http.StatusOK) {
			t.Fatalf("deployment created by event %q answered %d", event, rec.Code)
		}
	})
}
