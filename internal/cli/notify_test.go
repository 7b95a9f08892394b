package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
)

func TestNotifyCommands(t *testing.T) {
	t.Parallel()
	cfg := agenttest.Config(t)
	cfg.Notifications.AllowPrivateNetworks = true
	cli := startAgentCLI(t, cfg, agenttest.Options{APIOnly: true})
	run := cli.run
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if strings.Contains(r.URL.Path, "gone") {
			w.WriteHeader(http.StatusGone)
			_, _ = io.WriteString(w, "channel_is_archived")
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(receiver.Close)
	if code, _, errOut := run("project", "add", "blog", "--repo-url", gitRepo(t, "main")); code != 0 {
		t.Fatalf("project add: %s", errOut)
	}

	code, out, errOut := run("notify", "add", "webhook", receiver.URL+"/hooks/secret-path", "--project", "blog", "--events", "deploy.started,deploy.failed", "--json")
	var created api.Notification
	if code != 0 || json.Unmarshal([]byte(out), &created) != nil {
		t.Fatalf("notify add webhook: exit %d, %s %s", code, out, errOut)
	}
	if !strings.HasPrefix(created.Secret, "whsec_") || created.Target != receiver.URL+"/hooks/…" || created.ProjectID == nil ||
		strings.Join(created.Events, ",") != "deploy.started,deploy.failed" {
		t.Fatalf("created %+v", created)
	}
	code, out, errOut = run("notify", "add", "slack", receiver.URL+"/services/gone/XXXX")
	if code != 0 || !strings.Contains(out, receiver.URL+"/services/…") || strings.Contains(out+errOut, "XXXX") {
		t.Fatalf("notify add slack: exit %d, %q %q", code, out, errOut)
	}

	code, out, _ = run("notify", "list")
	if code != 0 || !strings.Contains(out, "webhook\t"+receiver.URL+"/hooks/…\tblog\tdeploy.started,deploy.failed\tenabled") ||
		!strings.Contains(out, "slack\t"+receiver.URL+"/services/…\t(all)\tdeploy.failed,deploy.recovered,preview.ready\tenabled") ||
		strings.Contains(out, "whsec_") {
		t.Fatalf("notify list: exit %d\n%s", code, out)
	}

	if code, out, _ := run("notify", "test", "1"); code != 0 || out != "✓ The receiver answered 200: ok\n" {
		t.Fatalf("notify test 1: exit %d, %q", code, out)
	}
	if code, out, _ := run("notify", "test", "2"); code != 1 || out != "✗ The receiver answered 410: channel_is_archived\n" {
		t.Fatalf("notify test 2: exit %d, %q", code, out)
	}

	words, _, directive := cli.complete(t, "notify", "test", "")
	if strings.Join(words, ",") != "1,2" || directive != noFiles {
		t.Fatalf("completing notify test: %q %s", words, directive)
	}
	if words, _, _ := cli.complete(t, "notify", "add", ""); strings.Join(words, ",") != "slack,discord,webhook,email" {
		t.Fatalf("completing notify add: %q", words)
	}
	if words, _, _ := cli.complete(t, "notify", "add", "slack", "https://x", "--project", ""); strings.Join(words, ",") != "blog" {
		t.Fatalf("completing --project: %q", words)
	}

	if code, _, errOut := run("notify", "remove", "1"); code != 0 || !strings.Contains(errOut, "Removed webhook notification 1") {
		t.Fatalf("notify remove: exit %d, %q", code, errOut)
	}
	if code, _, errOut := run("notify", "remove", "1"); code != 1 || !strings.Contains(errOut, "Notification 1 not found") {
		t.Fatalf("notify remove again: exit %d, %q", code, errOut)
	}
	if code, _, _ := run("notify", "add", "pager", "x"); code != 2 {
		t.Fatalf("an unknown type: exit %d, want 2", code)
	}
	want := "notify add takes a type (slack, discord, webhook, email) and one URL or email address, not 3 arguments"
	if code, _, errOut := run("notify", "add", "slack", "a", "b"); code != 2 || !strings.Contains(errOut, want) {
		t.Fatalf("notify add with a URL too many: exit %d, %q; want 2 and %q", code, errOut, want)
	}
}
