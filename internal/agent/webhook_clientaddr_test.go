package agent_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/logtest"
)

// TestWebhookRecordsClientAddress sends real deliveries over loopback: from a trusted proxy the
// X-Forwarded-For client is recorded and logged, from any other peer the peer is, whatever the header says.
func TestWebhookRecordsClientAddress(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		trusted []string
		want    string
	}{
		{"loopback proxy trusted by default", nil, "203.0.113.7"},
		{"peer not a trusted proxy", []string{"10.0.0.0/8"}, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := agenttest.Config(t)
			if tc.trusted != nil {
				cfg.TrustedProxies = tc.trusted
			}
			var logs logtest.Buffer
			ta := agenttest.StartWith(t, cfg, agenttest.Options{APIOnly: true, Log: slog.New(slog.NewJSONHandler(&logs, nil))})
			p := ta.AddProject(t, remoteProject("site", "master"))
			body := fixture(t, "push.with-new-branch.payload.json")
			req, _ := http.NewRequest("POST", ta.URL+api.PathWebhookPrefix+strconv.FormatInt(p.ID, 10), bytes.NewReader(body))
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-GitHub-Delivery", "d-1")
			req.Header.Set("X-Hub-Signature-256", github.Sign([]byte(p.WebhookSecret), body))
			req.Header.Set("X-Forwarded-For", "192.0.2.66, 203.0.113.7")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("push answered %d", resp.StatusCode)
			}

			var deliveries []api.Delivery
			if code := ta.Call(t, "GET", api.PathDeliveries+"?project_id="+strconv.FormatInt(p.ID, 10), nil, 0, &deliveries); code != http.StatusOK {
				t.Fatalf("deliveries: %d", code)
			}
			if len(deliveries) != 1 || deliveries[0].RemoteAddr != tc.want {
				t.Fatalf("deliveries %+v, want one from %s", deliveries, tc.want)
			}
			var line struct {
				Msg        string `json:"msg"`
				RemoteAddr string `json:"remote_addr"`
			}
			for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				if json.Unmarshal([]byte(l), &line) == nil && line.Msg == "webhook" {
					break
				}
			}
			if line.Msg != "webhook" || line.RemoteAddr != tc.want {
				t.Fatalf("log line %+v, want remote_addr %s in:\n%s", line, tc.want, logs.String())
			}
		})
	}
}
