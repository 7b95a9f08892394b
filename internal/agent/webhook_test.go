package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/gittest"
	"github.com/miaobu/miaobu/internal/store"
)

const fixtureSHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"

// deploymentCount returns how many deployments the agent has stored.
func (ta *apiAgent) deploymentCount(t testing.TB) int {
	t.Helper()
	all, err := ta.store.Deployments(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

// TestWebhookContractTable drives every row of the contract's webhook table with GitHub's payloads.
func TestWebhookContractTable(t *testing.T) {
	ta := startTestAgent(t, testConfig(t))
	p := ta.addProject(t, "site", "master")
	id := strconv.FormatInt(p.ID, 10)
	secret := p.WebhookSecret

	unconfigured := &store.Project{Name: "bare", Slug: "bare", RepoURL: "https://example.com/bare.git", DefaultBranch: "main", Target: "local"}
	if err := ta.store.CreateProject(unconfigured); err != nil {
		t.Fatal(err)
	}
	deletion := pushPayload(t, "master", "0000000000000000000000000000000000000000")
	var del map[string]any
	_ = json.Unmarshal(deletion, &del)
	del["deleted"], del["head_commit"] = true, nil
	deletion, _ = json.Marshal(del)
	newBranch := fixture(t, "push.with-new-branch.payload.json")

	rows := []struct {
		name      string
		project   string
		d         delivery
		status    int
		want      map[string]any
		deploysTo int // deployments stored after the row
	}{
		{"no such project", "999", delivery{event: "push", body: newBranch, secret: secret},
			404, map[string]any{"detail": "Project 999 not found"}, 0},
		{"project id not a number", "abc", delivery{event: "push", body: newBranch, secret: secret},
			404, map[string]any{"detail": "Project abc not found"}, 0},
		{"project has no webhook secret", strconv.FormatInt(unconfigured.ID, 10), delivery{event: "push", body: newBranch, secret: secret},
			400, map[string]any{"detail": "Webhook not configured for this project"}, 0},
		{"signature missing", id, delivery{event: "push", body: newBranch},
			401, map[string]any{"detail": "Invalid webhook signature"}, 0},
		{"signature wrong secret", id, delivery{event: "push", body: newBranch, secret: "not-the-secret"},
			401, map[string]any{"detail": "Invalid webhook signature"}, 0},
		{"signature malformed", id, delivery{event: "push", body: newBranch, signature: "sha256=zz"},
			401, map[string]any{"detail": "Invalid webhook signature"}, 0},
		{"signature without sha256= prefix", id, delivery{event: "push", body: newBranch, signature: strings.TrimPrefix(signOf(secret, newBranch), "sha256=")},
			401, map[string]any{"detail": "Invalid webhook signature"}, 0},
		{"SHA-1 header alone", id, delivery{event: "push", body: newBranch, signature: "sha1=" + strings.Repeat("a", 40)},
			401, map[string]any{"detail": "Invalid webhook signature"}, 0},
		{"signature of another body", id, delivery{event: "push", body: newBranch, signature: signOf(secret, []byte("{}"))},
			401, map[string]any{"detail": "Invalid webhook signature"}, 0},
		{"ping", id, delivery{event: "ping", body: fixture(t, "ping.payload.json"), secret: secret},
			200, map[string]any{"status": "ok", "message": "Webhook received and verified", "project_id": float64(p.ID)}, 0},
		{"ping with app_id", id, delivery{event: "ping", body: fixture(t, "ping.with-app_id.payload.json"), secret: secret},
			200, map[string]any{"status": "ok", "message": "Webhook received and verified", "project_id": float64(p.ID)}, 0},
		{"ping from an organization", id, delivery{event: "ping", body: fixture(t, "ping.with-organization.payload.json"), secret: secret},
			200, map[string]any{"status": "ok", "message": "Webhook received and verified", "project_id": float64(p.ID)}, 0},
		{"other event", id, delivery{event: "issues", body: []byte(`{"action":"opened"}`), secret: secret},
			200, map[string]any{"status": "ignored", "message": "Event type 'issues' is not handled"}, 0},
		{"signed body that is not JSON", id, delivery{event: "push", body: []byte("not json"), secret: secret},
			400, map[string]any{"detail": "Invalid JSON payload"}, 0},
		{"signed JSON that is not a push", id, delivery{event: "push", body: []byte(`{"zen":"x"}`), secret: secret},
			400, map[string]any{"detail": "Invalid JSON payload"}, 0},
		{"signed push with a bad commit id", id, delivery{event: "push", body: pushPayload(t, "master", "nope"), secret: secret},
			400, map[string]any{"detail": "Invalid JSON payload"}, 0},
		{"tag deletion", id, delivery{event: "push", body: fixture(t, "push.payload.json"), secret: secret},
			200, map[string]any{"status": "ignored", "message": "Push to 'refs/tags/simple-tag' ignored (not a branch)"}, 0},
		{"tag deletion with installation", id, delivery{event: "push", body: fixture(t, "push.with-installation.payload.json"), secret: secret},
			200, map[string]any{"status": "ignored", "message": "Push to 'refs/tags/simple-tag' ignored (not a branch)"}, 0},
		{"tag deletion in an organization", id, delivery{event: "push", body: fixture(t, "push.with-organization.payload.json"), secret: secret},
			200, map[string]any{"status": "ignored", "message": "Push to 'refs/tags/simple-tag' ignored (not a branch)"}, 0},
		{"tag deletion 1", id, delivery{event: "push", body: fixture(t, "push.1.payload.json"), secret: secret},
			200, map[string]any{"status": "ignored", "message": "Push to 'refs/tags/simple-tag' ignored (not a branch)"}, 0},
		{"deletion of the deployed branch", id, delivery{event: "push", body: deletion, secret: secret},
			200, map[string]any{"status": "ignored", "message": "Deletion of branch 'master' ignored"}, 0},
		{"push to another branch", id, delivery{event: "push", body: pushPayload(t, "feature/test", fixtureSHA), secret: secret},
			200, map[string]any{"status": "ignored", "message": "Push to 'feature/test' ignored (only 'master' triggers deployment)"}, 0},
		{"push to the branch", id, delivery{event: "push", body: newBranch, secret: secret},
			200, map[string]any{"status": "success", "message": "Deployment triggered for commit 6113728", "deployment_id": float64(1),
				"commit_sha": fixtureSHA, "commit_message": "Initial commit", "branch": "master"}, 1},
		{"the same commit again", id, delivery{event: "push", body: fixture(t, "push.with-no-username-committer.payload.json"), secret: secret},
			200, map[string]any{"status": "skipped", "message": "Deployment for commit 6113728 already exists", "deployment_id": float64(1)}, 1},
		{"uppercase hex signature", id, delivery{event: "push", body: newBranch, signature: "sha256=" + strings.ToUpper(signOf(secret, newBranch)[7:])},
			200, map[string]any{"status": "skipped", "message": "Deployment for commit 6113728 already exists", "deployment_id": float64(1)}, 1},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			status, got := ta.send(t, row.project, row.d)
			if status != row.status {
				t.Errorf("status %d, want %d (%v)", status, row.status, got)
			}
			if !equalJSON(got, row.want) {
				t.Errorf("body %v\nwant %v", got, row.want)
			}
			if n := ta.deploymentCount(t); n != row.deploysTo {
				t.Errorf("%d deployments stored, want %d", n, row.deploysTo)
			}
		})
	}
}

// signOf is the X-Hub-Signature-256 of body under secret, computed independently of the code under test.
func signOf(secret string, body []byte) string {
	return (&signer{secret}).sign(body)
}

// equalJSON compares two decoded JSON objects.
func equalJSON(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestWebhookBodyTooLarge(t *testing.T) {
	ta := startTestAgent(t, testConfig(t))
	p := ta.addProject(t, "site", "master")
	body := bytes.Repeat([]byte(" "), MaxWebhookBody+1)
	status, got := ta.send(t, strconv.FormatInt(p.ID, 10), delivery{event: "push", body: body, secret: p.WebhookSecret})
	if status != http.StatusRequestEntityTooLarge || got["detail"] != "Payload too large" {
		t.Fatalf("got %d %v", status, got)
	}
}

func TestWebhookFormBodies(t *testing.T) {
	ta := startTestAgent(t, testConfig(t))
	p := ta.addProject(t, "site", "master")
	id := strconv.FormatInt(p.ID, 10)
	payload := pushPayload(t, "master", strings.Repeat("a", 40))
	form := []byte("payload=" + url.QueryEscape(string(payload)))

	// GitHub signs the raw form body.
	status, got := ta.send(t, id, delivery{event: "push", body: form, secret: p.WebhookSecret, contentType: "application/x-www-form-urlencoded"})
	if status != 200 || got["status"] != "success" {
		t.Fatalf("GitHub form body: %d %v", status, got)
	}
	// Gitea and Forgejo sign the JSON inside payload=.
	payload = pushPayload(t, "master", strings.Repeat("b", 40))
	form = []byte("payload=" + url.QueryEscape(string(payload)))
	status, got = ta.send(t, id, delivery{event: "push", body: form, signature: signOf(p.WebhookSecret, payload), contentType: "application/x-www-form-urlencoded"})
	if status != 200 || got["status"] != "success" || got["commit_sha"] != strings.Repeat("b", 40) {
		t.Fatalf("Gitea form body: %d %v", status, got)
	}
	// A form body signed over something else is refused.
	status, _ = ta.send(t, id, delivery{event: "push", body: form, signature: signOf(p.WebhookSecret, []byte("x")), contentType: "application/x-www-form-urlencoded"})
	if status != http.StatusUnauthorized {
		t.Fatalf("wrongly signed form body: %d", status)
	}
}

// TestWebhookRetriesFailedCommit checks a commit whose deployment failed or was cancelled deploys again.
func TestWebhookRetriesFailedCommit(t *testing.T) {
	ta := startTestAgent(t, testConfig(t))
	p := ta.addProject(t, "site", "master")
	id := strconv.FormatInt(p.ID, 10)
	body := fixture(t, "push.with-new-branch.payload.json")
	_, first := ta.send(t, id, delivery{event: "push", body: body, secret: p.WebhookSecret})
	if err := ta.store.Fail(1, api.StatusFailed, "boom"); err != nil {
		t.Fatal(err)
	}
	_, again := ta.send(t, id, delivery{event: "push", body: body, secret: p.WebhookSecret})
	if first["status"] != "success" || again["status"] != "success" || again["deployment_id"] != float64(2) {
		t.Fatalf("redelivery after a failure: %v then %v", first, again)
	}
}

// TestWebhookSupersedesQueued checks a newer push cancels the project's older queued deployment.
func TestWebhookSupersedesQueued(t *testing.T) {
	ta := startTestAgent(t, testConfig(t))
	p := ta.addProject(t, "site", "master")
	id := strconv.FormatInt(p.ID, 10)
	ta.send(t, id, delivery{event: "push", body: pushPayload(t, "master", strings.Repeat("1", 40)), secret: p.WebhookSecret})
	ta.send(t, id, delivery{event: "push", body: pushPayload(t, "master", strings.Repeat("2", 40)), secret: p.WebhookSecret})
	older, err := ta.store.Deployment(1)
	if err != nil {
		t.Fatal(err)
	}
	if older.Status != api.StatusCancelled || older.ErrorMessage != "superseded by #2" {
		t.Fatalf("older deployment: %s %q", older.Status, older.ErrorMessage)
	}
	// The superseded commit is no longer queued, so a force-push back to it deploys it.
	_, got := ta.send(t, id, delivery{event: "push", body: movePayload(t, "master", strings.Repeat("2", 40), strings.Repeat("1", 40)), secret: p.WebhookSecret})
	if got["status"] != "success" {
		t.Fatalf("force-push back to a superseded commit: %v", got)
	}
}

func TestWebhookConcurrentSameCommit(t *testing.T) {
	ta := startTestAgent(t, testConfig(t))
	p := ta.addProject(t, "site", "master")
	id := strconv.FormatInt(p.ID, 10)
	body := fixture(t, "push.with-new-branch.payload.json")
	var wg sync.WaitGroup
	results := make([]map[string]any, 200)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, results[i] = ta.send(t, id, delivery{event: "push", body: body, secret: p.WebhookSecret, guid: fmt.Sprint("g", i)})
		}()
	}
	wg.Wait()
	success, skipped := 0, 0
	for _, r := range results {
		switch r["status"] {
		case "success":
			success++
		case "skipped":
			skipped++
			if r["deployment_id"] != float64(1) {
				t.Errorf("skipped answer points at %v", r["deployment_id"])
			}
		}
	}
	if success != 1 || skipped != 199 || ta.deploymentCount(t) != 1 {
		t.Fatalf("%d success, %d skipped, %d deployments; want 1, 199, 1", success, skipped, ta.deploymentCount(t))
	}
	deliveries, err := ta.store.Deliveries(p.ID, 0)
	if err != nil || len(deliveries) != 200 {
		t.Fatalf("%d deliveries recorded, want 200 (%v)", len(deliveries), err)
	}
}

func TestWebhookConcurrentDistinctCommits(t *testing.T) {
	ta := startTestAgent(t, testConfig(t))
	p := ta.addProject(t, "site", "master")
	id := strconv.FormatInt(p.ID, 10)
	var wg sync.WaitGroup
	ids := make([]any, 200)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sha := fmt.Sprintf("%040x", i+1)
			_, got := ta.send(t, id, delivery{event: "push", body: pushPayload(t, "master", sha), secret: p.WebhookSecret, guid: sha})
			if got["status"] != "success" || got["commit_sha"] != sha {
				t.Errorf("push %d: %v", i, got)
			}
			ids[i] = got["deployment_id"]
		}()
	}
	wg.Wait()
	all, err := ta.store.Deployments(p.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 200 {
		t.Fatalf("%d deployments stored, want 200", len(all))
	}
	queued := 0
	seen := map[string]bool{}
	for _, d := range all {
		seen[d.CommitSHA] = true
		if d.Status == api.StatusQueued {
			queued++
		}
	}
	if len(seen) != 200 || queued != 1 {
		t.Fatalf("%d distinct commits stored, %d queued; want 200 and 1 (the newest, the others superseded)", len(seen), queued)
	}
}

// TestWebhookOtherMethods checks that the webhook path answers every method but POST with 405 and
// Allow: POST, with or without the admin token, instead of sending it to the admin API.
func TestWebhookOtherMethods(t *testing.T) {
	ta := startTestAgent(t, testConfig(t))
	p := ta.addProject(t, "site", "master")
	for _, method := range []string{"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		for _, project := range []string{strconv.FormatInt(p.ID, 10), "999"} {
			req, _ := http.NewRequest(method, ta.server.URL+api.PathWebhookPrefix+project, nil)
			req.Header.Set("Authorization", "Bearer "+ta.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
				t.Errorf("%s project %s: %d, Allow %q", method, project, resp.StatusCode, resp.Header.Get("Allow"))
			}
			if method != "HEAD" && strings.TrimSpace(string(body)) != `{"detail":"Method not allowed"}` {
				t.Errorf("%s project %s: body %s", method, project, body)
			}
		}
	}
}

// TestWebhookStaleDeliveryKeepsProduction replays GitHub's push payload for an old commit after the
// branch has moved on: it is ignored and production stays on the newer commit, while a force-push
// back to the old commit (its before is the branch's last pushed commit) deploys it.
func TestWebhookStaleDeliveryKeepsProduction(t *testing.T) {
	ta := startAgent(t, nil)
	repo := gittest.New(t)
	p := ta.addProject("site", repo.Dir)
	a := repo.Commit("A", map[string]string{"index.html": "version A"})
	b := repo.Commit("B", map[string]string{"index.html": "version B"})
	zero := strings.Repeat("0", 40)

	pushA := movePayload(t, "main", zero, a)
	deliverSuccess := func(body []byte) api.Deployment {
		t.Helper()
		status, answer := ta.deliver(p, body)
		if status != http.StatusOK || answer.Status != "success" {
			t.Fatalf("push: %d %+v", status, answer)
		}
		return ta.deployed(answer.DeploymentID)
	}
	deliverSuccess(pushA)
	deployedB := deliverSuccess(movePayload(t, "main", a, b))

	status, answer := ta.deliver(p, pushA)
	if status != http.StatusOK || answer.Status != "ignored" || answer.Message != "Stale delivery: branch 'main' has moved on" || answer.DeploymentID != 0 {
		t.Fatalf("replayed push of A: %d %+v", status, answer)
	}
	var project api.Project
	ta.call("GET", api.PathProjects+"/"+p.Slug, nil, http.StatusOK, &project)
	if project.ActiveDeploymentID == nil || *project.ActiveDeploymentID != deployedB.ID {
		t.Fatalf("production is %v after the replay, want #%d", project.ActiveDeploymentID, deployedB.ID)
	}
	if _, body := ta.get(p.Slug, "/"); body != "version B" {
		t.Fatalf("after the replay the site serves %q", body)
	}
	var deployments []api.Deployment
	ta.call("GET", api.PathDeployments+"?project_id="+strconv.FormatInt(p.ID, 10), nil, http.StatusOK, &deployments)
	if len(deployments) != 2 {
		t.Fatalf("%d deployments after the replay, want 2", len(deployments))
	}

	back := deliverSuccess(movePayload(t, "main", b, a))
	if back.CommitSHA != a || back.ID <= deployedB.ID {
		t.Fatalf("force-push back to A deployed %+v", back)
	}
	if _, body := ta.get(p.Slug, "/"); body != "version A" {
		t.Fatalf("after the force-push back to A the site serves %q", body)
	}
}

// TestWebhookBoundsDeliveryHeaders replays a signed ping with an oversized or odd X-GitHub-Delivery
// and X-GitHub-Event: each is answered, and what is stored is at most 64 bytes of [A-Za-z0-9_-],
// while GitHub's own values are kept as sent.
func TestWebhookBoundsDeliveryHeaders(t *testing.T) {
	ta := startTestAgent(t, testConfig(t))
	p := ta.addProject(t, "site", "master")
	id := strconv.FormatInt(p.ID, 10)
	ping := fixture(t, "ping.payload.json")
	long := strings.Repeat("a", 60<<10)
	for _, tc := range []struct {
		guid, event         string
		wantGUID, wantEvent string
		wantStatus          string
	}{
		{"72d3162e-cc78-11e3-81ab-4c9367dc0958", "ping", "72d3162e-cc78-11e3-81ab-4c9367dc0958", "ping", "ok"},
		{long, "ping", long[:64], "ping", "ok"},
		{"<b>\"ünï\"</b> 1", "ping", "-b----n-----b--1", "ping", "ok"},
		{"load-1", "repository_vulnerability_alert", "load-1", "repository_vulnerability_alert", "ignored"},
		{"load-2", long, "load-2", long[:64], "ignored"},
	} {
		status, got := ta.send(t, id, delivery{event: tc.event, guid: tc.guid, body: ping, secret: p.WebhookSecret})
		if status != http.StatusOK || got["status"] != tc.wantStatus || len(fmt.Sprint(got["message"])) > 200 {
			t.Fatalf("guid %.20q event %.20q: %d %v", tc.guid, tc.event, status, got)
		}
		var deliveries []api.Delivery
		if code := ta.call(t, "GET", api.PathDeliveries+"?project_id="+id+"&limit=1", nil, &deliveries); code != http.StatusOK || len(deliveries) != 1 {
			t.Fatalf("deliveries: %d %v", code, deliveries)
		}
		if d := deliveries[0]; d.GUID != tc.wantGUID || d.Event != tc.wantEvent {
			t.Errorf("guid %.20q event %.20q stored as %q %q, want %q %q", tc.guid, tc.event, d.GUID, d.Event, tc.wantGUID, tc.wantEvent)
		}
	}
}
