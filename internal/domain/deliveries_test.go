package domain

import (
	"context"
	"fmt"
	"testing"

	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/store"
)

// receive verifies a delivery and, when it is signed, records it.
func (f *fixture) receive(p *store.Project, d Delivery) (Receipt, error) {
	v, refusal, err := f.svc.Verify(p, d)
	if err != nil {
		return refusal, err
	}
	return f.svc.Receive(context.Background(), p, v)
}

func TestReceive(t *testing.T) {
	f := newFixture(t, nil)
	p := f.addProject(t, "blog")
	push := func(ref, sha string) string {
		return fmt.Sprintf(`{"ref":%q,"after":%q,"head_commit":{"id":%q,"message":"Fix","author":{"name":"Ada"}}}`, ref, sha, sha)
	}
	main := push("refs/heads/main", tipSHA)
	tests := []struct {
		name, event, body, secret string
		outcome                   Outcome
		status, message           string
		kind                      Kind
	}{
		{"wrong signature", "push", main, "other", OutcomeBadSignature, "", "Invalid webhook signature", Unauthorized},
		{"ping", "ping", `{"zen":"x"}`, p.WebhookSecret, OutcomePing, "ok", "Webhook received and verified", 0},
		{"other event", "issues", `{}`, p.WebhookSecret, OutcomeIgnored, "ignored", "Event type 'issues' is not handled", 0},
		{"not JSON", "push", `{"ref":`, p.WebhookSecret, OutcomeInvalidPayload, "", "Invalid JSON payload", Invalid},
		{"short SHA", "push", push("refs/heads/main", "abc"), p.WebhookSecret, OutcomeInvalidPayload, "", "Invalid JSON payload", Invalid},
		{"tag", "push", push("refs/tags/v1", tipSHA), p.WebhookSecret, OutcomeIgnored, "ignored", "Push to 'refs/tags/v1' ignored (not a branch)", 0},
		{"other branch", "push", push("refs/heads/dev", tipSHA), p.WebhookSecret, OutcomeIgnored, "ignored",
			"Push to 'dev' ignored (only 'main' triggers deployment)", 0},
		{"new commit", "push", main, p.WebhookSecret, OutcomeSuccess, "success", "Deployment triggered for commit 6dcb09b", 0},
		{"same commit again", "push", main, p.WebhookSecret, OutcomeSkipped, "skipped", "Deployment for commit 6dcb09b already exists", 0},
		{"next commit", "push", push("refs/heads/main", otherSHA), p.WebhookSecret, OutcomeSuccess, "success",
			"Deployment triggered for commit 0123456", 0},
		{"replay of the first", "push", main, p.WebhookSecret, OutcomeStale, "ignored", "Stale delivery: branch 'main' has moved on", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			receipt, err := f.receive(p, Delivery{GUID: "g", Event: tt.event,
				Signature: github.Sign([]byte(tt.secret), []byte(tt.body)), ContentType: "application/json", Body: []byte(tt.body)})
			if receipt.Outcome != tt.outcome || receipt.ProjectID != p.ID {
				t.Errorf("receipt %+v, want outcome %s", receipt, tt.outcome)
			}
			if tt.kind != 0 {
				checkError(t, err, tt.kind, tt.message)
				return
			}
			if err != nil || receipt.Status != tt.status || receipt.Message != tt.message {
				t.Errorf("receipt %+v %v, want %s %q", receipt, err, tt.status, tt.message)
			}
		})
	}
	if f.queue.wakes != 2 {
		t.Errorf("%d wakes for two new deployments", f.queue.wakes)
	}
	if deliveries, _ := f.store.Deliveries(p.ID, 0); len(deliveries) != 8 {
		t.Errorf("%d deliveries recorded, want the 8 verified ones with a valid payload", len(deliveries))
	}
}

func TestReceiveWithoutSecret(t *testing.T) {
	f := newFixture(t, nil)
	p := f.addProject(t, "blog")
	p.WebhookSecret = ""
	receipt, err := f.receive(p, Delivery{Event: "ping", Body: []byte(`{}`)})
	checkError(t, err, Invalid, "Webhook not configured for this project")
	if receipt.Outcome != OutcomeNotConfigured {
		t.Errorf("outcome %s", receipt.Outcome)
	}
	_, receipt, err = f.svc.WebhookProject("12")
	checkError(t, err, NotFound, "Project 12 not found")
	if receipt.Outcome != OutcomeNotFound {
		t.Errorf("outcome %s", receipt.Outcome)
	}
	_, _, err = f.svc.WebhookProject("blog")
	checkError(t, err, NotFound, "Project blog not found")
}
