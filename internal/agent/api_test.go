package agent_test

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/store"
)

func TestAdminAPIRequiresToken(t *testing.T) {
	t.Parallel()
	ta := agenttest.StartWith(t, agenttest.Config(t), agenttest.Options{APIOnly: true})
	for _, tc := range []struct {
		authorization string
		status        int
	}{
		{"", http.StatusUnauthorized},
		{"Bearer wrong", http.StatusUnauthorized},
		{"Bearer " + ta.Token + "x", http.StatusUnauthorized},
		{"Bearer" + ta.Token, http.StatusUnauthorized},
		{"Bearer", http.StatusUnauthorized},
		{"Basic " + ta.Token, http.StatusUnauthorized},
		{"Bearer " + ta.Token, http.StatusOK},
		// RFC 9110: the scheme is case-insensitive.
		{"bearer " + ta.Token, http.StatusOK},
		{"BEARER " + ta.Token, http.StatusOK},
		{"bEaReR " + ta.Token, http.StatusOK},
	} {
		req, _ := http.NewRequest("GET", ta.URL+api.PathProjects, nil)
		if tc.authorization != "" {
			req.Header.Set("Authorization", tc.authorization)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("Authorization %q: status %d, want %d", strings.Replace(tc.authorization, ta.Token, "<token>", 1), resp.StatusCode, tc.status)
		}
		if tc.status == http.StatusUnauthorized && strings.TrimSpace(string(body)) != `{"detail":"Not authenticated"}` {
			t.Errorf("Authorization %q: body %s", strings.Replace(tc.authorization, ta.Token, "<token>", 1), body)
		}
	}
	resp, err := http.Get(ta.URL + api.PathHealth)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestCORS(t *testing.T) {
	t.Parallel()
	cfg := agenttest.Config(t)
	cfg.CORS.AllowedOrigins = []string{"https://admin.example.com"}
	ta := agenttest.StartWith(t, cfg, agenttest.Options{APIOnly: true})
	for _, tc := range []struct {
		method, origin string
		status         int
		allowHeader    string
	}{
		{"GET", "https://evil.example.com", http.StatusForbidden, ""},
		{"OPTIONS", "https://evil.example.com", http.StatusForbidden, ""},
		{"OPTIONS", "https://admin.example.com", http.StatusNoContent, "https://admin.example.com"},
		{"GET", "https://admin.example.com", http.StatusOK, "https://admin.example.com"},
		{"GET", "", http.StatusOK, ""},
	} {
		req, _ := http.NewRequest(tc.method, ta.URL+api.PathProjects, nil)
		req.Header.Set("Authorization", "Bearer "+ta.Token)
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Access-Control-Allow-Origin") != tc.allowHeader {
			t.Errorf("%s from %q: %d %q", tc.method, tc.origin, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
}

func TestProjectLifecycle(t *testing.T) {
	t.Parallel()
	ta := agenttest.StartWith(t, agenttest.Config(t), agenttest.Options{APIOnly: true})
	p := ta.AddProject(t, remoteProject("My Blog", "main"))
	if p.Slug != "my-blog" || !p.WebhookConfigured || p.Repo != nil || !strings.HasSuffix(p.WebhookURL, "/api/v1/webhooks/github/1") {
		t.Fatalf("created %+v", p)
	}
	var got api.Project
	if code := ta.Call(t, "GET", api.PathProjects+"/my-blog", nil, 0, &got); code != 200 || got.ID != p.ID || got.WebhookSecret != "" {
		t.Fatalf("get by slug: %d %+v", code, got)
	}
	build := "npm run build:prod"
	empty := ""
	if code := ta.Call(t, "PATCH", api.PathProjects+"/1", api.ProjectUpdate{BuildCommand: &build}, 0, &got); code != 200 || got.BuildCommand != build {
		t.Fatalf("set build command: %d %+v", code, got)
	}
	if code := ta.Call(t, "PATCH", api.PathProjects+"/1", api.ProjectUpdate{BuildCommand: &empty}, 0, &got); code != 200 || got.BuildCommand != "" {
		t.Fatalf("back to detection: %d %+v", code, got)
	}
	outside := "../etc"
	var e api.Error
	if code := ta.Call(t, "PATCH", api.PathProjects+"/1", api.ProjectUpdate{OutputDirectory: &outside}, 0, &e); code != 400 || e.Detail == "" {
		t.Fatalf("output dir outside the repository: %d %+v", code, e)
	}
	for _, bad := range []api.ProjectCreate{
		{Name: "", RepoURL: "https://example.com/x.git"},
		{Name: "x", RepoURL: "ftp://example.com/x"},
		{Name: "x", RepoURL: "https://user:pass@example.com/x.git"},
		{Name: "x", RepoURL: "https://example.com/x.git", Branch: "bad..name"},
		{Name: "x", RepoURL: "https://example.com/x.git", Target: "s3"},
	} {
		if code := ta.Call(t, "POST", api.PathProjects, bad, 0, &e); code != 400 || e.Detail == "" {
			t.Errorf("%+v accepted: %d", bad, code)
		}
	}
	var list []api.Project
	if ta.Call(t, "GET", api.PathProjects, nil, 0, &list); len(list) != 1 {
		t.Fatalf("bad creates changed the project list: %d projects", len(list))
	}
	var answer api.WebhookAnswer
	if code := ta.Call(t, "DELETE", api.PathProjects+"/1", nil, 0, &answer); code != 200 || answer.Status != "success" {
		t.Fatalf("delete: %d %+v", code, answer)
	}
	if code := ta.Call(t, "GET", api.PathProjects+"/1", nil, 0, &e); code != 404 || e.Detail != "Project 1 not found" {
		t.Fatalf("after delete: %d %+v", code, e)
	}
}

func TestStatusAndMetrics(t *testing.T) {
	t.Parallel()
	ta := agenttest.StartWith(t, agenttest.Config(t), agenttest.Options{APIOnly: true})
	p := ta.AddProject(t, remoteProject("site", "master"))
	id := strconv.FormatInt(p.ID, 10)
	ta.Deliver(t, id, agenttest.Delivery{Event: "push", Body: fixture(t, "push.with-new-branch.payload.json"), Secret: p.WebhookSecret})
	ta.Deliver(t, id, agenttest.Delivery{Event: "push", Body: fixture(t, "push.with-new-branch.payload.json"), Secret: "wrong"})

	var st api.Status
	if code := ta.Call(t, "GET", api.PathStatus, nil, 0, &st); code != 200 {
		t.Fatalf("status: %d", code)
	}
	if st.Status != "ok" || st.Version != agenttest.Version || st.Queue.Queued != 1 || st.Queue.Concurrency != 2 || st.Sandbox != "none" || len(st.Projects) != 1 ||
		st.Projects[0].Last == nil || st.Projects[0].Last.Status != api.StatusQueued || st.Projects[0].Live != nil ||
		!st.Projects[0].WebhookConfigured {
		t.Fatalf("status %+v", st)
	}

	resp, err := http.Get(ta.URL + api.PathMetrics)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("metrics without the admin token: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", ta.URL+api.PathMetrics, nil)
	req.Header.Set("Authorization", "Bearer "+ta.Token)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`miaobu_webhook_deliveries_total{event="push",outcome="success"} 1`,
		`miaobu_webhook_deliveries_total{event="push",outcome="bad_signature"} 1`,
		"miaobu_webhook_signature_failures_total 1",
		"miaobu_queue_depth 1",
		"miaobu_builds_running 0",
		"miaobu_webhook_duration_seconds_count 2",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestWireValuesMatchStore keeps the API's status and trigger strings equal to the stored ones,
// which the agent converts between at the transport edge.
func TestWireValuesMatchStore(t *testing.T) {
	t.Parallel()
	for wire, stored := range map[string]string{
		api.StatusQueued: string(store.StatusQueued), api.StatusCloning: string(store.StatusCloning),
		api.StatusInstalling: string(store.StatusInstalling), api.StatusBuilding: string(store.StatusBuilding),
		api.StatusUploading: string(store.StatusUploading), api.StatusPurging: string(store.StatusPurging),
		api.StatusDeployed: string(store.StatusDeployed), api.StatusFailed: string(store.StatusFailed),
		api.StatusCancelled: string(store.StatusCancelled), api.TriggerWebhook: string(store.TriggerWebhook),
		api.TriggerManual: string(store.TriggerManual), api.TriggerImport: string(store.TriggerImport),
		api.TriggerRollback: string(store.TriggerRollback), api.TriggerGitHubDeployment: string(store.TriggerGitHubDeployment),
	} {
		if wire != stored {
			t.Errorf("wire value %q, stored %q", wire, stored)
		}
	}
}
