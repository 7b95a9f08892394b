package agent_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/github"
)

// BenchmarkWebhookPush measures the whole handler for signed distinct-commit pushes, durable writes
// included, in process (no network): the cost the load command sees minus HTTP transport.
func BenchmarkWebhookPush(b *testing.B) {
	ta := agenttest.StartWith(b, agenttest.Config(b), agenttest.Options{APIOnly: true})
	p := ta.AddProject(b, remoteProject("site", "master"))
	path := api.PathWebhookPrefix + strconv.FormatInt(p.ID, 10)
	handler := ta.Handler()
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = pushPayload(b, "master", fmt.Sprintf("%040x", i+1))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(bodies[i]))
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", strconv.Itoa(i))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Hub-Signature-256", github.Sign([]byte(p.WebhookSecret), bodies[i]))
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
