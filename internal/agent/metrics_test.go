package agent_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/domain"
)

// assertMetrics fails the test for each of want that the agent's /metrics lacks.
func assertMetrics(t *testing.T, ta *agenttest.Agent, want ...string) {
	t.Helper()
	body := ta.Text(t, api.PathMetrics)
	for _, line := range want {
		if !strings.Contains(body, "\n"+line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
}

func TestDeploymentMetricsCountEveryCancellation(t *testing.T) {
	t.Parallel()
	ta := agenttest.Start(t, agenttest.Config(t))
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
	superseded := ta.Push(t, p, repo.Commit("second", nodeSite("second")))
	queued := ta.Push(t, p, repo.Commit("third", nodeSite("third")))
	if d := ta.Wait(t, superseded); d.Status != api.StatusCancelled {
		t.Fatalf("the second push was %s, want it superseded by the third", d.Status)
	}
	ta.Call(t, "POST", fmt.Sprintf("%s/%d/cancel", api.PathDeployments, queued), nil, http.StatusOK, nil)
	ta.Call(t, "POST", fmt.Sprintf("%s/%d/cancel", api.PathDeployments, running), nil, http.StatusOK, nil)
	if d := ta.Wait(t, running); d.Status != api.StatusCancelled {
		t.Fatalf("the running build ended %s, want cancelled", d.Status)
	}
	assertMetrics(t, ta,
		`miaobu_deployments_total{status="deployed"} 0`,
		`miaobu_deployments_total{status="failed"} 0`,
		`miaobu_deployments_total{status="cancelled"} 3`)
}

func TestMetricsListenServesMetricsWithoutToken(t *testing.T) {
	t.Parallel()
	metricsAddr := freeAddr(t)
	cfg := agenttest.Config(t)
	cfg.Metrics.Listen = metricsAddr
	ta := agenttest.Start(t, cfg)
	get := func(url string) (int, string, error) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
	var (
		code int
		body string
		err  error
	)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if code, body, err = get("http://" + metricsAddr + api.PathMetrics); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing answers on metrics.listen %s: %v", metricsAddr, err)
		}
	}
	if code != http.StatusOK || !strings.Contains(body, `miaobu_deployments_total{status="deployed"} 0`) || !strings.Contains(body, "miaobu_queue_depth 0") {
		t.Fatalf("GET /metrics on metrics.listen without a token: %d\n%s", code, body)
	}
	// The metrics listener has no token, so it must serve nothing else.
	for _, path := range []string{api.PathProjects, api.PathStatus, api.PathHealth} {
		if code, _, err := get("http://" + metricsAddr + path); err != nil || code != http.StatusNotFound {
			t.Errorf("GET %s on metrics.listen: %d %v, want 404", path, code, err)
		}
	}
	if code, _, err := get(ta.URL + api.PathMetrics); err != nil || code != http.StatusUnauthorized {
		t.Errorf("GET /metrics on the main listener without a token: %d %v, want 401", code, err)
	}

	if err := ta.Stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if _, _, err := get("http://" + metricsAddr + api.PathMetrics); err == nil {
		t.Error("metrics.listen still answers after the agent stopped")
	}
}

// TestWebhookDeliveryMetricsStartAtZero scrapes a fresh agent: every event and outcome of a
// delivery is exported at zero, so that a rate() or increase() sees the first delivery.
func TestWebhookDeliveryMetricsStartAtZero(t *testing.T) {
	t.Parallel()
	ta := agenttest.Start(t, agenttest.Config(t))
	var want []string
	for _, event := range []string{"push", "ping", "pull_request", "deployment", "other"} {
		for _, outcome := range domain.Outcomes {
			want = append(want, fmt.Sprintf(`miaobu_webhook_deliveries_total{event=%q,outcome=%q} 0`, event, outcome))
		}
	}
	assertMetrics(t, ta, want...)
}

// TestListenersRefuseHugeHeaders sends 256 KiB of headers to the agent's listener and to the
// metrics listener: headers are held outside any budget, so both answer 431 long before 1 MiB.
func TestListenersRefuseHugeHeaders(t *testing.T) {
	t.Parallel()
	metricsAddr := freeAddr(t)
	cfg := agenttest.Config(t)
	cfg.Metrics.Listen = metricsAddr
	ta := agenttest.Start(t, cfg)
	for _, addr := range []string{strings.TrimPrefix(ta.URL, "http://"), metricsAddr} {
		var conn net.Conn
		var err error
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if conn, err = net.Dial("tcp", addr); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("nothing answers on %s: %v", addr, err)
			}
		}
		defer conn.Close()
		// Written aside, as the server answers before it has read it all.
		go func() {
			_, _ = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nX-Padding: %s\r\n\r\n", api.PathMetrics, addr, strings.Repeat("a", 256<<10))
		}()
		if status, _ := readAnswer(t, conn); status != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("256 KiB of headers on %s: %d, want 431", addr, status)
		}
	}
}
