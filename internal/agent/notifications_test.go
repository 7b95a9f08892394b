package agent_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/gittest"
)

// hookReceiver records the Standard Webhooks messages posted to it.
type hookReceiver struct {
	mu    sync.Mutex
	types []string
	ids   []string
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Type string `json:"type"`
	}
	data, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(data, &body)
	h.mu.Lock()
	h.types = append(h.types, body.Type)
	h.ids = append(h.ids, r.Header.Get("webhook-id"))
	h.mu.Unlock()
	_, _ = io.WriteString(w, "thanks")
}

// seen returns the event types received so far.
func (h *hookReceiver) seen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.types...)
}

func TestNotificationsThroughTheAPI(t *testing.T) {
	t.Parallel()
	recv := &hookReceiver{}
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)
	cfg := agenttest.Config(t)
	cfg.Notifications.AllowPrivateNetworks = true
	ta := agenttest.Start(t, cfg)
	repo := gittest.New(t)
	p := ta.AddProject(t, localProject("site", repo.Dir))

	var created api.Notification
	ta.Call(t, "POST", api.PathNotifications, api.NotificationCreate{Type: "webhook", Target: srv.URL + "/hooks/miaobu?key=k",
		ProjectID: &p.ID, Events: []string{"deploy.started", "deploy.succeeded"}}, http.StatusCreated, &created)
	if !strings.HasPrefix(created.Secret, "whsec_") || created.Target != srv.URL+"/hooks/…" || *created.ProjectID != p.ID ||
		created.DisabledReason != nil {
		t.Fatalf("created %+v", created)
	}
	list := ta.Text(t, api.PathNotifications)
	if strings.Contains(list, created.Secret) || strings.Contains(list, "key=k") || !strings.Contains(list, `"disabled_reason":null`) {
		t.Fatalf("the list shows a secret, or no disabled_reason: %s", list)
	}

	var answer api.NotificationTest
	ta.Call(t, "POST", api.NotificationPath(fmt.Sprint(created.ID))+"/test", nil, http.StatusOK, &answer)
	if answer.StatusCode != http.StatusOK || answer.Response != "thanks" {
		t.Fatalf("test answer %+v", answer)
	}

	id := ta.Push(t, p, repo.Commit("hello", map[string]string{"index.html": "hi"}))
	ta.Deployed(t, id)
	for deadline := time.Now().Add(10 * time.Second); len(recv.seen()) < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the receiver got %v", recv.seen())
		}
	}
	if got := strings.Join(recv.seen(), ","); got != "notification.test,deploy.started,deploy.succeeded" {
		t.Fatalf("the receiver got %s", got)
	}

	ta.Call(t, "DELETE", api.NotificationPath(fmt.Sprint(created.ID)), nil, http.StatusOK, nil)
	ta.Call(t, "DELETE", api.NotificationPath(fmt.Sprint(created.ID)), nil, http.StatusNotFound, nil)
	ta.Call(t, "POST", api.NotificationPath("nope")+"/test", nil, http.StatusNotFound, nil)
	missing := int64(999)
	ta.Call(t, "POST", api.PathNotifications, api.NotificationCreate{Type: "slack", Target: srv.URL + "/x", ProjectID: &missing}, http.StatusNotFound, nil)
}

func TestPrivateNotificationTargetsAreRefused(t *testing.T) {
	t.Parallel()
	ta := agenttest.Start(t, agenttest.Config(t))
	var refusal api.Error
	ta.Call(t, "POST", api.PathNotifications, api.NotificationCreate{Type: "discord", Target: "http://169.254.169.254/api/webhooks/1/token"}, http.StatusBadRequest, &refusal)
	if !strings.Contains(refusal.Detail, "notifications.allow_private_networks") || strings.Contains(refusal.Detail, "token") {
		t.Fatalf("refusal %q: want the setting named and the token not", refusal.Detail)
	}
	ta.Call(t, "POST", api.PathNotifications, api.NotificationCreate{Type: "email", Target: "ops@example.com"}, http.StatusBadRequest, &refusal)
	if !strings.Contains(refusal.Detail, "smtp.host") {
		t.Fatalf("an email target without smtp.*: %q", refusal.Detail)
	}
}
