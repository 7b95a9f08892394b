package agent

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/gittest"
)

// TestBuildLogMasksEverySecretTheAgentHolds runs a build without a sandbox that prints the admin token
// from the data dir and the agent's other secrets: none may reach the build log.
func TestBuildLogMasksEverySecretTheAgentHolds(t *testing.T) {
	ta := startAgent(t, func(cfg *config.Config) {
		cfg.Build.Sandbox = "none"
		cfg.GitHub.Token = "ghp_agentgithubtoken0123456789"
		cfg.OSS.AccessKeyID = "LTAI5tAgentKeyId0123"
		cfg.OSS.AccessKeySecret = "oss-agent-key-secret-0123456789"
		cfg.SMTP.Password = "smtp-agent-password-0123"
		cfg.Notifications.AllowPrivateNetworks = true
	})
	var hook, slack api.Notification
	ta.call("POST", api.PathNotifications, api.NotificationCreate{Type: "webhook", Target: "http://127.0.0.1:9/hook"}, http.StatusCreated, &hook)
	slackURL := "http://127.0.0.1:9/services/T0/B0/slacktoken0123456789"
	ta.call("POST", api.PathNotifications, api.NotificationCreate{Type: "slack", Target: slackURL}, http.StatusCreated, &slack)
	other := ta.addProject("other", gittest.New(t).Dir)
	repo := gittest.New(t)
	p := ta.addProject("thief", repo.Dir)
	stolen := filepath.Join(t.TempDir(), "stolen")
	secrets := []string{ta.token, other.WebhookSecret, p.WebhookSecret, ta.cfg.GitHub.Token, ta.cfg.OSS.AccessKeyID, ta.cfg.OSS.AccessKeySecret,
		ta.cfg.SMTP.Password, hook.Secret, slackURL}
	if err := os.WriteFile(stolen, []byte(strings.Join(secrets[1:], "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ta.call("PATCH", api.PathProjects+"/"+p.Slug, api.ProjectUpdate{
		BuildCommand: ptr("cat " + ta.cfg.AdminTokenFile() + " " + stolen), OutputDirectory: ptr(".")}, http.StatusOK, nil)
	id := ta.push(p, repo.Commit("thief", map[string]string{"index.html": "x", "package.json": `{"name":"thief"}`}))
	ta.deployed(id)
	log := ta.log(id)
	for _, secret := range secrets {
		if strings.Contains(log, secret) {
			t.Errorf("the build log shows %q:\n%s", secret, log)
		}
	}
	if n := strings.Count(log, "********"); n < len(secrets) {
		t.Errorf("%d masked values in the log, want at least %d:\n%s", n, len(secrets), log)
	}
}
