package agent_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/gittest"
)

// TestBuildLogMasksEverySecretTheAgentHolds runs a build without a sandbox that prints the admin token
// from the data dir and the agent's other secrets: none may reach the build log.
func TestBuildLogMasksEverySecretTheAgentHolds(t *testing.T) {
	t.Parallel()
	cfg := agenttest.Config(t)
	cfg.Build.Sandbox = "none"
	cfg.GitHub.Token = "ghp_agentgithubtoken0123456789"
	cfg.OSS.AccessKeyID = "LTAI5tAgentKeyId0123"
	cfg.OSS.AccessKeySecret = "oss-agent-key-secret-0123456789"
	cfg.SMTP.Password = "smtp-agent-password-0123"
	cfg.Notifications.AllowPrivateNetworks = true
	ta := agenttest.Start(t, cfg)
	var hook, slack api.Notification
	ta.Call(t, "POST", api.PathNotifications, api.NotificationCreate{Type: "webhook", Target: "http://127.0.0.1:9/hook"}, http.StatusCreated, &hook)
	slackURL := "http://127.0.0.1:9/services/T0/B0/slacktoken0123456789"
	ta.Call(t, "POST", api.PathNotifications, api.NotificationCreate{Type: "slack", Target: slackURL}, http.StatusCreated, &slack)
	other := ta.AddProject(t, localProject("other", gittest.New(t).Dir))
	repo := gittest.New(t)
	p := ta.AddProject(t, localProject("thief", repo.Dir))
	stolen := filepath.Join(t.TempDir(), "stolen")
	secrets := []string{ta.Token, other.WebhookSecret, p.WebhookSecret, ta.Config.GitHub.Token, ta.Config.OSS.AccessKeyID, ta.Config.OSS.AccessKeySecret,
		ta.Config.SMTP.Password, hook.Secret, slackURL}
	if err := os.WriteFile(stolen, []byte(strings.Join(secrets[1:], "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ta.Call(t, "PATCH", api.PathProjects+"/"+p.Slug, api.ProjectUpdate{
		BuildCommand: ptr("cat " + ta.Config.AdminTokenFile() + " " + stolen), OutputDirectory: ptr(".")}, http.StatusOK, nil)
	id := ta.Push(t, p, repo.Commit("thief", map[string]string{"index.html": "x", "package.json": `{"name":"thief"}`}))
	ta.Deployed(t, id)
	log := ta.Log(t, id)
	for _, secret := range secrets {
		if strings.Contains(log, secret) {
			t.Errorf("the build log shows %q:\n%s", secret, log)
		}
	}
	if n := strings.Count(log, "********"); n < len(secrets) {
		t.Errorf("%d masked values in the log, want at least %d:\n%s", n, len(secrets), log)
	}
}
