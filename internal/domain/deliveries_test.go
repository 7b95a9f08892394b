package domain

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

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

// TestReceiveDeployment follows deployment events through the domain: what is ignored, a commit
// with a kept deployment that goes live again without a build, and one that is built.
func TestReceiveDeployment(t *testing.T) {
	f := newFixture(t, nil)
	p := f.addProject(t, "blog")
	kept := f.deployKept(t, p, tipSHA)
	f.deployKept(t, p, otherSHA)
	if p, _ = f.store.Project(p.ID); p.ActiveDeploymentID == kept {
		t.Fatal("the first deployment is still live")
	}
	const newSHA = "fedcba9876543210fedcba9876543210fedcba98"
	event := func(id int64, sha, environment, payload string) string {
		return fmt.Sprintf(`{"action":"created","deployment":{"id":%d,"sha":%q,"ref":"main","environment":%q,"payload":%s}}`, id, sha, environment, payload)
	}
	wakes := f.queue.wakes
	tests := []struct {
		name, body string
		outcome    Outcome
		message    string
		kind       Kind
		deployment int64 // 0: a new one
	}{
		{"not a deployment", `{"deployment":{}}`, OutcomeInvalidPayload, "Invalid JSON payload", Invalid, 0},
		{"made by miaobu", event(7, tipSHA, "production", `{"miaobu":{"deployment_id":1}}`), OutcomeIgnored,
			"Deployment created by miaobu ignored", 0, 0},
		{"another action", strings.Replace(event(11, tipSHA, "production", `{}`), `"created"`, `"updated"`, 1), OutcomeIgnored,
			"Deployment action 'updated' ignored (only 'created' deploys)", 0, 0},
		{"another environment", event(8, tipSHA, "staging", `{}`), OutcomeIgnored,
			"Deployment to environment 'staging' ignored (only 'production' deploys)", 0, 0},
		{"kept commit", event(9, tipSHA, "production", `{}`), OutcomeSuccess, "Deployment triggered for commit 6dcb09b", 0, kept},
		{"new commit", event(10, newSHA, "production", `{}`), OutcomeSuccess, "Deployment triggered for commit fedcba9", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			receipt, err := f.receive(p, Delivery{GUID: tt.name, Event: "deployment",
				Signature: github.Sign([]byte(p.WebhookSecret), []byte(tt.body)), ContentType: "application/json", Body: []byte(tt.body)})
			if receipt.Outcome != tt.outcome {
				t.Errorf("receipt %+v, want outcome %s", receipt, tt.outcome)
			}
			if tt.kind != 0 {
				checkError(t, err, tt.kind, tt.message)
				return
			}
			if err != nil || receipt.Message != tt.message {
				t.Fatalf("receipt %+v %v, want %q", receipt, err, tt.message)
			}
			if tt.outcome == OutcomeSuccess && tt.deployment != 0 && receipt.DeploymentID != tt.deployment {
				t.Errorf("deployment %d, want the kept %d", receipt.DeploymentID, tt.deployment)
			}
		})
	}
	if p, _ = f.store.Project(p.ID); p.ActiveDeploymentID != kept {
		t.Errorf("live deployment %d, want the kept %d", p.ActiveDeploymentID, kept)
	}
	if f.queue.wakes != wakes+1 {
		t.Errorf("%d wakes, want one for the commit to build", f.queue.wakes-wakes)
	}
	built, err := f.store.Deployments(p.ID, 1)
	if err != nil || built[0].CommitSHA != newSHA || built[0].Trigger != store.TriggerGitHubDeployment || built[0].GitHubDeploymentID != 10 {
		t.Errorf("newest deployment %+v, %v", built[0], err)
	}
	deliveries, err := f.store.Deliveries(p.ID, 0)
	if err != nil || len(deliveries) != 5 {
		t.Fatalf("%d deliveries recorded, want the 5 with a valid payload (%v)", len(deliveries), err)
	}
	if d := deliveries[1]; d.GUID != "kept commit" || d.DeploymentID != kept || d.Outcome != store.OutcomeSuccess {
		t.Errorf("delivery of the kept commit recorded as %+v", d)
	}
}

// TestPullRequestHeadCommitFailsOpen: the webhook reads a pull request's head commit from GitHub,
// within a bound, to skip an update whose message has a marker; when it cannot know the message
// (GitHub fails or says nothing in time, a project without a GitHub repository) it records the
// update all the same, leaving the markers to the build.
func TestPullRequestHeadCommitFailsOpen(t *testing.T) {
	f := newFixture(t, nil)
	f.svc.headCommitTimeout = 300 * time.Millisecond
	ctx := context.Background()
	imp, err := f.svc.Import(ctx, ImportRequest{Owner: "acme", Repo: "site"})
	if err != nil {
		t.Fatal(err)
	}
	hub, byHand := imp.Project, f.addProject(t, "blog")
	const skipping = "Draft the pricing page [skip ci]"
	tests := []struct {
		name    string
		p       *store.Project
		github  func(request string) // what the fake GitHub does with the question
		message string               // the commit message GitHub knows
		outcome Outcome
		answer  string
		// a deployment is recorded with this commit message, or leaving the markers to its build
		commitMessage string
		skipMarkers   bool
	}{
		{"GitHub tells a marker", hub, nil, skipping, OutcomeIgnored, "Skipped: commit message contains [skip ci]", "", false},
		{"GitHub tells no marker", hub, nil, "Draft the pricing page", OutcomeSuccess, "Preview deployment triggered for PR #2",
			"Draft the pricing page", false},
		{"GitHub fails", hub, func(request string) { f.github.Fail(request, http.StatusInternalServerError, "Server Error") }, skipping,
			OutcomeSuccess, "Preview deployment triggered for PR #3", "", true},
		{"GitHub says nothing in time", hub, f.github.Stall, skipping, OutcomeSuccess, "Preview deployment triggered for PR #4", "", true},
		{"no GitHub repository", byHand, nil, skipping, OutcomeSuccess, "Preview deployment triggered for PR #5", "", true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, sha := i+1, fmt.Sprintf("%040x", 0xc0ffee00+i)
			request := "GET /repos/acme/site/commits/" + sha
			f.github.SetMessage("acme/site", sha, tt.message)
			if tt.github != nil {
				tt.github(request)
			}
			body := fmt.Sprintf(`{"action":"opened","number":%d,"pull_request":{"number":%d,`+
				`"head":{"sha":%q,"ref":"pricing","repo":{"full_name":"acme/site"}},"base":{"ref":"main","repo":{"full_name":"acme/site"}}}}`,
				n, n, sha)
			start := time.Now()
			receipt, err := f.receive(tt.p, Delivery{GUID: tt.name, Event: "pull_request",
				Signature: github.Sign([]byte(tt.p.WebhookSecret), []byte(body)), ContentType: "application/json", Body: []byte(body)})
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("answered after %s", took)
			}
			if err != nil || receipt.Outcome != tt.outcome || receipt.Message != tt.answer {
				t.Fatalf("receipt %+v %v, want %s %q", receipt, err, tt.outcome, tt.answer)
			}
			if asked := slices.Contains(f.github.Requests(), request); asked != (tt.p == hub) {
				t.Errorf("asked GitHub for the head commit: %t", asked)
			}
			if tt.outcome != OutcomeSuccess {
				if receipt.DeploymentID != 0 {
					t.Errorf("deployment %d recorded", receipt.DeploymentID)
				}
				return
			}
			d, err := f.store.Deployment(receipt.DeploymentID)
			if err != nil || d.CommitMessage != tt.commitMessage || d.SkipMarkers != tt.skipMarkers || d.Status != store.StatusQueued {
				t.Errorf("deployment %+v %v, want message %q and skip markers %t", d, err, tt.commitMessage, tt.skipMarkers)
			}
		})
	}
}
