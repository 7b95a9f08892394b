package agent

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/api"
)

// assertMetrics fails the test for each of want that the agent's /metrics lacks.
func assertMetrics(t *testing.T, ta *testAgent, want ...string) {
	t.Helper()
	body := ta.text(api.PathMetrics)
	for _, line := range want {
		if !strings.Contains(body, "\n"+line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
}

func TestDeploymentMetricsCountEveryCancellation(t *testing.T) {
	ta := startAgent(t, nil)
	// Every final status and target is exposed at zero before the first deployment ends, so a
	// rate() or increase() sees the first event.
	assertMetrics(t, ta,
		`miaobu_deployments_total{status="deployed"} 0`,
		`miaobu_deployments_total{status="failed"} 0`,
		`miaobu_deployments_total{status="cancelled"} 0`,
		`miaobu_publish_duration_seconds_count{target="local"} 0`,
		`miaobu_publish_duration_seconds_count{target="oss"} 0`)

	marker := fmt.Sprintf("miaobu-metrics-%d", time.Now().UnixNano())
	p, repo, running := startBuildSleeping(t, ta, marker, time.Minute)
	superseded := ta.push(p, repo.Commit("second", nodeSite("second")))
	queued := ta.push(p, repo.Commit("third", nodeSite("third")))
	if d := ta.wait(superseded); d.Status != api.StatusCancelled {
		t.Fatalf("the second push was %s, want it superseded by the third", d.Status)
	}
	ta.call("POST", fmt.Sprintf("%s/%d/cancel", api.PathDeployments, queued), nil, http.StatusOK, nil)
	ta.call("POST", fmt.Sprintf("%s/%d/cancel", api.PathDeployments, running), nil, http.StatusOK, nil)
	if d := ta.wait(running); d.Status != api.StatusCancelled {
		t.Fatalf("the running build ended %s, want cancelled", d.Status)
	}
	assertMetrics(t, ta,
		`miaobu_deployments_total{status="deployed"} 0`,
		`miaobu_deployments_total{status="failed"} 0`,
		`miaobu_deployments_total{status="cancelled"} 3`)
}
