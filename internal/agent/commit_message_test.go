package agent_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/store"
)

func TestWebhookCutsHugeCommitMessage(t *testing.T) {
	t.Parallel()
	ta := agenttest.StartWith(t, agenttest.Config(t), agenttest.Options{APIOnly: true})
	p := ta.AddProject(t, remoteProject("site", "master"))
	var payload map[string]any
	if err := json.Unmarshal(pushPayload(t, "master", fixtureSHA), &payload); err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("a commit message that goes on ", 700_000) // about 20 MB
	payload["head_commit"].(map[string]any)["message"] = huge
	body, _ := json.Marshal(payload)
	code, answer := ta.Deliver(t, strconv.FormatInt(p.ID, 10), agenttest.Delivery{Event: "push", Body: body, Secret: p.WebhookSecret})
	if code != http.StatusOK || answer["status"] != "success" {
		t.Fatalf("push: %d %v", code, answer)
	}
	echoed, _ := answer["commit_message"].(string)
	if len(echoed) > store.MaxCommitMessage || !strings.HasSuffix(echoed, "…") || !strings.HasPrefix(huge, strings.TrimSuffix(echoed, "…")) {
		t.Fatalf("the answer echoes a message of %d bytes", len(echoed))
	}
	var d api.Deployment
	ta.Call(t, "GET", fmt.Sprintf("%s/%v", api.PathDeployments, answer["deployment_id"]), nil, 0, &d)
	if d.CommitMessage != echoed {
		t.Fatalf("stored a message of %d bytes, answered one of %d", len(d.CommitMessage), len(echoed))
	}
}
