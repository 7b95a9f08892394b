package agent_test

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

	"github.com/miaobu/miaobu/internal/agent"
	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/gittest"
	"github.com/miaobu/miaobu/internal/store"
)

const fixtureSHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"

// deploymentCount returns how many deployments the agent has stored.
func deploymentCount(t testing.TB, ta *agenttest.Agent) int {
	t.Helper()
	all, err := ta.Store.Deployments(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

// TestWebhookContractTable drives every row of the contract's webhook table with GitHub's payloads.
func TestWebhookContractTable(t *testing.T) {
	t.Parallel()
	ta := agenttest.StartWith(t, agenttest.Config(t), agenttest.Options{APIOnly: true})
	p := ta.AddProject(t, remoteProject("site", "master"))
	id := strconv.FormatInt(p.ID, 10)
	secret := p.WebhookSecret

	unconfigured := &store.Project{Name: "bare", Slug: "bare", RepoURL: "https://example.com/bare.git", DefaultBranch: "main", Target: "local"}
	if err := ta.Store.CreateProject(unconfigured); err != nil {
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
		d         agenttest.Delivery
		status    int
		want      map[string]any
		deploysTo int // deployments stored after the row
	}{
		{"no such project", "999", agenttest.Delivery{Event: "push", Body: newBranch, Secret: secret},
			404, map[string]any{"detail": "Project 999 not found"}, 0},
		{"project id not a number", "abc", agenttest.Delivery{Event: "push", Body: newBranch, Secret: secret},
			404, map[string]any{"detail": "Project abc not found"}, 0},
		{"project has no webhook secret", strconv.FormatInt(unconfigured.ID, 10), agenttest.Delivery{Event: "push", Body: newBranch, Secret: secret},
			400, map[string]any{"detail": "Webhook not configured for this project"}, 0},
		{"signature missing", id, agenttest.Delivery{Event: "push", Body: newBranch},
			401, map[string]any{"detail": "Invalid webhook signature"}, 0},
		{"signature wrong secret", id, agenttest.Delivery{Event: "push", Body: newBranch, Secret: "not-the-secret"},
			401, map[string]any{"detail": "Invalid webhook signature"}, 0},
		{"signature malformed", id, agenttest.Delivery{Event: "push", Body: newBranch, Signature: "sha256=zz"},
			401, map[string]any{"detail": "Invalid webhook signature"}, 0},
		{"signature without sha256= prefix", id, agenttest.Delivery{Event: "push", Body: newBranch, Signature: strings.TrimPrefix(github.Sign([]byte(secret), newBranch), "sha256=")},
			401, map[string]any{"detail": "Invalid webhook signature"}, 0},
		{"SHA-1 header alone", id, agenttest.Delivery{Event: "push", Body: newBranch, Signature: "sha1=" + strings.Repeat("a", 40)},
			401, map[string]any{"detail": "Invalid webhook signature"}, 0},
		{"signature of another body", id, agenttest.Delivery{Event: "push", Body: newBranch, Signature: github.Sign([]byte(secret), []byte("{}"))},
			401, map[string]any{"detail": "Invalid webhook signature"}, 0},
		{"ping", id, agenttest.Delivery{Event: "ping", Body: fixture(t, "ping.payload.json"), Secret: secret},
			200, map[string]any{"status": "ok", "message": "Webhook received and verified", "project_id": float64(p.ID)}, 0},
		{"ping with app_id", id, agenttest.Delivery{Event: "ping", Body: fixture(t, "ping.with-app_id.payload.json"), Secret: secret},
			200, map[string]any{"status": "ok", "message": "Webhook received and verified", "project_id": float64(p.ID)}, 0},
		{"ping from an organization", id, agenttest.Delivery{Event: "ping", Body: fixture(t, "ping.with-organization.payload.json"), Secret: secret},
			200, map[string]any{"status": "ok", "message": "Webhook received and verified", "project_id": float64(p.ID)}, 0},
		{"other event", id, agenttest.Delivery{Event: "issues", Body: []byte(`{"action":"opened"}`), Secret: secret},
			200, map[string]any{"status": "ignored", "message": "Event type 'issues' is not handled"}, 0},
		{"signed body that is not JSON", id, agenttest.Delivery{Event: "push", Body: []byte("not json"), Secret: secret},
			400, map[string]any{"detail": "Invalid JSON payload"}, 0},
		{"signed JSON that is not a push", id, agenttest.Delivery{Event: "push", Body: []byte(`{"zen":"x"}`), Secret: secret},
			400, map[string]any{"detail": "Invalid JSON payload"}, 0},
		{"signed push with a bad commit id", id, agenttest.Delivery{Event: "push", Body: pushPayload(t, "master", "nope"), Secret: secret},
			400, map[string]any{"detail": "Invalid JSON payload"}, 0},
		{"tag deletion", id, agenttest.Delivery{Event: "push", Body: fixture(t, "push.payload.json"), Secret: secret},
			200, map[string]any{"status": "ignored", "message": "Push to 'refs/tags/simple-tag' ignored (not a branch)"}, 0},
		{"tag deletion with installation", id, agenttest.Delivery{Event: "push", Body: fixture(t, "push.with-installation.payload.json"), Secret: secret},
			200, map[string]any{"status": "ignored", "message": "Push to 'refs/tags/simple-tag' ignored (not a branch)"}, 0},
		{"tag deletion in an organization", id, agenttest.Delivery{Event: "push", Body: fixture(t, "push.with-organization.payload.json"), Secret: secret},
			200, map[string]any{"status": "ignored", "message": "Push to 'refs/tags/simple-tag' ignored (not a branch)"}, 0},
		{"tag deletion 1", id, agenttest.Delivery{Event: "push", Body: fixture(t, "push.1.payload.json"), Secret: secret},
			200, map[string]any{"status": "ignored", "message": "Push to 'refs/tags/simple-tag' ignored (not a branch)"}, 0},
		{"deletion of the deployed branch", id, agenttest.Delivery{Event: "push", Body: deletion, Secret: secret},
			200, map[string]any{"status": "ignored", "message": "Deletion of branch 'master' ignored"}, 0},
		{"push to another branch", id, agenttest.Delivery{Event: "push", Body: pushPayload(t, "feature/test", fixtureSHA), Secret: secret},
			200, map[string]any{"status": "ignored", "message": "Push to 'feature/test' ignored (only 'master' triggers deployment)"}, 0},
		{"push to the branch", id, agenttest.Delivery{Event: "push", Body: newBranch, Secret: secret},
			200, map[string]any{"status": "success", "message": "Deployment triggered for commit 6113728", "deployment_id": float64(1),
				"commit_sha": fixtureSHA, "commit_message": "Initial commit", "branch": "master"}, 1},
		{"the same commit again", id, agenttest.Delivery{Event: "push", Body: fixture(t, "push.with-no-username-committer.payload.json"), Secret: secret},
			200, map[string]any{"status": "skipped", "message": "Deployment for commit 6113728 already exists", "deployment_id": float64(1)}, 1},
		{"uppercase hex signature", id, agenttest.Delivery{Event: "push", Body: newBranch, Signature: "sha256=" + strings.ToUpper(github.Sign([]byte(secret), newBranch)[7:])},
			200, map[string]any{"status": "skipped", "message": "Deployment for commit 6113728 already exists", "deployment_id": float64(1)}, 1},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			status, got := ta.Deliver(t, row.project, row.d)
			if status != row.status {
				t.Errorf("status %d, want %d (%v)", status, row.status, got)
			}
			if !equalJSON(got, row.want) {
				t.Errorf("body %v\nwant %v", got, row.want)
			}
			if n := deploymentCount(t, ta); n != row.deploysTo {
				t.Errorf("%d deployments stored, want %d", n, row.deploysTo)
			}
		})
	}
}

// equalJSON compares two decoded JSON objects.
func equalJSON(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestWebhookBodyTooLarge(t *testing.T) {
	t.Parallel()
	ta := agenttest.StartWith(t, agenttest.Config(t), agenttest.Options{APIOnly: true})
	p := ta.AddProject(t, remoteProject("site", "master"))
	body := bytes.Repeat([]byte(" "), agent.MaxWebhookBody+1)
	status, got := ta.Deliver(t, strconv.FormatInt(p.ID, 10), agenttest.Delivery{Event: "push", Body: body, Secret: p.WebhookSecret})
	if status != http.StatusRequestEntityTooLarge || got["detail"] != "Payload too large" {
		t.Fatalf("got %d %v", status, got)
	}
}

func TestWebhookFormBodies(t *testing.T) {
	t.Parallel()
	ta := agenttest.StartWith(t, agenttest.Config(t), agenttest.Options{APIOnly: true})
	p := ta.AddProject(t, remoteProject("site", "master"))
	id := strconv.FormatInt(p.ID, 10)
	payload := pushPayload(t, "master", strings.Repeat("a", 40))
	form := []byte("payload=" + url.QueryEscape(string(payload)))

	// GitHub signs the raw form body.
	status, got := ta.Deliver(t, id, agenttest.Delivery{Event: "push", Body: form, Secret: p.WebhookSecret, ContentType: "application/x-www-form-urlencoded"})
	if status != 200 || got["status"] != "success" {
		t.Fatalf("GitHub form body: %d %v", status, got)
	}
	// Gitea and Forgejo sign the JSON inside payload=.
	payload = pushPayload(t, "master", strings.Repeat("b", 40))
	form = []byte("payload=" + url.QueryEscape(string(payload)))
	status, got = ta.Deliver(t, id, agenttest.Delivery{Event: "push", Body: form, Signature: github.Sign([]byte(p.WebhookSecret), payload), ContentType: "application/x-www-form-urlencoded"})
	if status != 200 || got["status"] != "success" || got["commit_sha"] != strings.Repeat("b", 40) {
		t.Fatalf("Gitea form body: %d %v", status, got)
	}
	// A form body signed over something else is refused.
	status, _ = ta.Deliver(t, id, agenttest.Delivery{Event: "push", Body: form, Signature: github.Sign([]byte(p.WebhookSecret), []byte("x")), ContentType: "application/x-www-form-urlencoded"})
	if status != http.StatusUnauthorized {
		t.Fatalf("wrongly signed form body: %d", status)
	}
}

// TestWebhookRetriesFailedCommit checks a commit whose deployment failed or was cancelled deploys again.
func TestWebhookRetriesFailedCommit(t *testing.T) {
	t.Parallel()
	ta := agenttest.StartWith(t, agenttest.Config(t), agenttest.Options{APIOnly: true})
	p := ta.AddProject(t, remoteProject("site", "master"))
	id := strconv.FormatInt(p.ID, 10)
	body := fixture(t, "push.with-new-branch.payload.json")
	_, first := ta.Deliver(t, id, agenttest.Delivery{Event: "push", Body: body, Secret: p.WebhookSecret})
	if err := ta.Store.Fail(1, api.StatusFailed, "boom"); err != nil {
		t.Fatal(err)
	}
	_, again := ta.Deliver(t, id, agenttest.Delivery{Event: "push", Body: body, Secret: p.WebhookSecret})
	if first["status"] != "success" || again["status"] != "success" || again["deployment_id"] != float64(2) {
		t.Fatalf("redelivery after a failure: %v then %v", first, again)
	}
}

// TestWebhookSupersedesQueued checks a newer push cancels the project's older queued deployment.
func TestWebhookSupersedesQueued(t *testing.T) {
	t.Parallel()
	ta := agenttest.StartWith(t, agenttest.Config(t), agenttest.Options{APIOnly: true})
	p := ta.AddProject(t, remoteProject("site", "master"))
	id := strconv.FormatInt(p.ID, 10)
	ta.Deliver(t, id, agenttest.Delivery{Event: "push", Body: pushPayload(t, "master", strings.Repeat("1", 40)), Secret: p.WebhookSecret})
	ta.Deliver(t, id, agenttest.Delivery{Event: "push", Body: pushPayload(t, "master", strings.Repeat("2", 40)), Secret: p.WebhookSecret})
	older, err := ta.Store.Deployment(1)
	if err != nil {
		t.Fatal(err)
	}
	if older.Status != api.StatusCancelled || older.ErrorMessage != "superseded by #2" {
		t.Fatalf("older deployment: %s %q", older.Status, older.ErrorMessage)
	}
	// The superseded commit is no longer queued, so a force-push back to it deploys it.
	_, got := ta.Deliver(t, id, agenttest.Delivery{Event: "push", Body: movePayload(t, "master", strings.Repeat("2", 40), strings.Repeat("1", 40)), Secret: p.WebhookSecret})
	if got["status"] != "success" {
		t.Fatalf("force-push back to a superseded commit: %v", got)
	}
}

func TestWebhookConcurrentSameCommit(t *testing.T) {
	t.Parallel()
	ta := agenttest.StartWith(t, agenttest.Config(t), agenttest.Options{APIOnly: true})
	p := ta.AddProject(t, remoteProject("site", "master"))
	id := strconv.FormatInt(p.ID, 10)
	body := fixture(t, "push.with-new-branch.payload.json")
	var wg sync.WaitGroup
	results := make([]map[string]any, 200)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, results[i] = ta.Deliver(t, id, agenttest.Delivery{Event: "push", Body: body, Secret: p.WebhookSecret, GUID: fmt.Sprint("g", i)})
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
	if success != 1 || skipped != 199 || deploymentCount(t, ta) != 1 {
		t.Fatalf("%d success, %d skipped, %d deployments; want 1, 199, 1", success, skipped, deploymentCount(t, ta))
	}
	deliveries, err := ta.Store.Deliveries(p.ID, 0)
	if err != nil || len(deliveries) != 200 {
		t.Fatalf("%d deliveries recorded, want 200 (%v)", len(deliveries), err)
	}
}

func TestWebhookConcurrentDistinctCommits(t *testing.T) {
	t.Parallel()
	ta := agenttest.StartWith(t, agenttest.Config(t), agenttest.Options{APIOnly: true})
	p := ta.AddProject(t, remoteProject("site", "master"))
	id := strconv.FormatInt(p.ID, 10)
	var wg sync.WaitGroup
	ids := make([]any, 200)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sha := fmt.Sprintf("%040x", i+1)
			_, got := ta.Deliver(t, id, agenttest.Delivery{Event: "push", Body: pushPayload(t, "master", sha), Secret: p.WebhookSecret, GUID: sha})
			if got["status"] != "success" || got["commit_sha"] != sha {
				t.Errorf("push %d: %v", i, got)
			}
			ids[i] = got["deployment_id"]
		}()
	}
	wg.Wait()
	all, err := ta.Store.Deployments(p.ID, 0)
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
	t.Parallel()
	ta := agenttest.StartWith(t, agenttest.Config(t), agenttest.Options{APIOnly: true})
	p := ta.AddProject(t, remoteProject("site", "master"))
	for _, method := range []string{"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		for _, project := range []string{strconv.FormatInt(p.ID, 10), "999"} {
			req, _ := http.NewRequest(method, ta.URL+api.PathWebhookPrefix+project, nil)
			req.Header.Set("Authorization", "Bearer "+ta.Token)
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
	t.Parallel()
	ta := agenttest.Start(t, agenttest.Config(t))
	repo := gittest.New(t)
	p := ta.AddProject(t, localProject("site", repo.Dir))
	a := repo.Commit("A", map[string]string{"index.html": "version A"})
	b := repo.Commit("B", map[string]string{"index.html": "version B"})
	zero := strings.Repeat("0", 40)

	pushA := movePayload(t, "main", zero, a)
	id := strconv.FormatInt(p.ID, 10)
	deliverSuccess := func(guid string, body []byte) api.Deployment {
		t.Helper()
		status, answer := ta.Deliver(t, id, agenttest.Delivery{Event: "push", Body: body, Secret: p.WebhookSecret, GUID: guid})
		deployment, _ := answer["deployment_id"].(float64)
		if status != http.StatusOK || answer["status"] != "success" {
			t.Fatalf("push: %d %v", status, answer)
		}
		return ta.Deployed(t, int64(deployment))
	}
	deliverSuccess("push-a", pushA)
	deployedB := deliverSuccess("push-b", movePayload(t, "main", a, b))

	status, answer := ta.Deliver(t, id, agenttest.Delivery{Event: "push", Body: pushA, Secret: p.WebhookSecret, GUID: "replay-a"})
	if status != http.StatusOK || answer["status"] != "ignored" || answer["message"] != "Stale delivery: branch 'main' has moved on" || answer["deployment_id"] != nil {
		t.Fatalf("replayed push of A: %d %v", status, answer)
	}
	var project api.Project
	ta.Call(t, "GET", api.PathProjects+"/"+p.Slug, nil, http.StatusOK, &project)
	if project.ActiveDeploymentID == nil || *project.ActiveDeploymentID != deployedB.ID {
		t.Fatalf("production is %v after the replay, want #%d", project.ActiveDeploymentID, deployedB.ID)
	}
	if _, body := ta.Site(t, p.Slug, "/"); body != "version B" {
		t.Fatalf("after the replay the site serves %q", body)
	}
	var deployments []api.Deployment
	ta.Call(t, "GET", api.PathDeployments+"?project_id="+strconv.FormatInt(p.ID, 10), nil, http.StatusOK, &deployments)
	if len(deployments) != 2 {
		t.Fatalf("%d deployments after the replay, want 2", len(deployments))
	}

	back := deliverSuccess("push-back", movePayload(t, "main", b, a))
	if back.CommitSHA != a || back.ID <= deployedB.ID {
		t.Fatalf("force-push back to A deployed %+v", back)
	}
	if _, body := ta.Site(t, p.Slug, "/"); body != "version A" {
		t.Fatalf("after the force-push back to A the site serves %q", body)
	}
}

// TestWebhookBoundsDeliveryHeaders replays a signed ping with an oversized or odd X-GitHub-Delivery
// and X-GitHub-Event: each is answered, and what is stored is at most 64 bytes of [A-Za-z0-9_-],
// while GitHub's own values are kept as sent.
func TestWebhookBoundsDeliveryHeaders(t *testing.T) {
	t.Parallel()
	ta := agenttest.StartWith(t, agenttest.Config(t), agenttest.Options{APIOnly: true})
	p := ta.AddProject(t, remoteProject("site", "master"))
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
		status, got := ta.Deliver(t, id, agenttest.Delivery{Event: tc.event, GUID: tc.guid, Body: ping, Secret: p.WebhookSecret})
		if status != http.StatusOK || got["status"] != tc.wantStatus || len(fmt.Sprint(got["message"])) > 200 {
			t.Fatalf("guid %.20q event %.20q: %d %v", tc.guid, tc.event, status, got)
		}
		var deliveries []api.Delivery
		if code := ta.Call(t, "GET", api.PathDeliveries+"?project_id="+id+"&limit=1", nil, 0, &deliveries); code != http.StatusOK || len(deliveries) != 1 {
			t.Fatalf("deliveries: %d %v", code, deliveries)
		}
		if d := deliveries[0]; d.GUID != tc.wantGUID || d.Event != tc.wantEvent {
			t.Errorf("guid %.20q event %.20q stored as %q %q, want %q %q", tc.guid, tc.event, d.GUID, d.Event, tc.wantGUID, tc.wantEvent)
		}
	}
}
