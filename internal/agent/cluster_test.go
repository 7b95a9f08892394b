package agent_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent"
	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/gittest"
	"github.com/miaobu/miaobu/internal/proctest"
)

// clusterStartTimeout bounds how long three clustered agents take to elect a leader and answer:
// seconds usually, much longer on a busy machine under the race detector.
const clusterStartTimeout = 90 * time.Second

// startClusterAgents runs three agents on loopback as one cluster, each through agent.Run as
// `miaobu agent` does, until the test ends, and returns their APIs.
func startClusterAgents(t *testing.T) []*agenttest.Agent {
	t.Helper()
	routes := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	var peers []string
	for _, r := range routes {
		peers = append(peers, "nats-route://"+r)
	}
	var agents []*agenttest.Agent
	for i := range 3 {
		cfg := agenttest.Config(t)
		cfg.Listen = freeAddr(t)
		cfg.PublicURL, cfg.AgentURL = "http://"+cfg.Listen, "http://"+cfg.Listen
		cfg.Build.Sandbox, cfg.Build.Concurrency = "none", 1
		cfg.Cluster = config.Cluster{Node: fmt.Sprintf("node-%d", i+1), Listen: routes[i], Peers: peers, Secret: "route-secret-of-the-test-cluster-32"}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- agent.Run(ctx, cfg, slog.New(slog.DiscardHandler), agenttest.Version) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s stopped with: %v", cfg.Cluster.Node, err)
			}
		})
		agents = append(agents, &agenttest.Agent{Config: cfg, URL: cfg.PublicURL})
	}
	deadline := time.Now().Add(clusterStartTimeout)
	for _, ta := range agents {
		for {
			token, _ := os.ReadFile(ta.Config.AdminTokenFile())
			ta.Token = strings.TrimSpace(string(token))
			if resp, err := http.Get(ta.URL + api.PathHealth); err == nil {
				resp.Body.Close()
				if ta.Token != "" && resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not start within %s", ta.Config.Cluster.Node, clusterStartTimeout)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return agents
}

func TestClusterBuildsOnceAndServesEverywhere(t *testing.T) {
	agents := startClusterAgents(t)
	for _, ta := range agents[1:] {
		if ta.Token != agents[0].Token {
			t.Fatal("the nodes have different admin tokens")
		}
	}
	repo := gittest.New(t)
	sha := repo.Commit("first", map[string]string{"index.html": "<h1>clustered</h1>"})
	p := agents[0].AddProject(t, localProject("clustered", repo.Dir))
	id := agents[1].Push(t, p, sha)
	d := agents[2].Deployed(t, id)
	if d.Node == nil || !strings.HasPrefix(*d.Node, "node-") {
		t.Fatalf("deployment node = %v, want the node that built it", d.Node)
	}
	second := agents[0].Deployed(t, agents[0].Push(t, p, repo.Commit("second", map[string]string{"index.html": "<h1>second</h1>"})))
	// Rolled back through a node that did not build the first deployment, and has not served it:
	// the node fetches its files from the cluster.
	roller := agents[0]
	for _, ta := range agents {
		if ta.Config.Cluster.Node != *d.Node && ta.Config.Cluster.Node != *second.Node {
			roller = ta
		}
	}
	roller.Call(t, "POST", api.PathProjects+"/"+p.Slug+"/rollback", api.RollbackRequest{DeploymentID: id}, http.StatusOK, nil)
	for _, ta := range agents {
		resp, body := ta.Site(t, p.Slug, "/")
		if want := "clustered"; resp.StatusCode != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("%s serves %d %q, want %q", ta.Config.Cluster.Node, resp.StatusCode, body, want)
		}
		if log := ta.Log(t, id); !strings.Contains(log, fmt.Sprintf("Deployment #%d succeeded", id)) {
			t.Fatalf("%s shows the build log of %s:\n%s", ta.Config.Cluster.Node, *d.Node, log)
		}
		// The dashboard of every node shows the log too, on the page and whole.
		session := dashboardSession(t, ta)
		for _, path := range []string{fmt.Sprintf("/deployments/%d", id), fmt.Sprintf("/deployments/%d/log.txt", id)} {
			if resp, body := dashboardGet(t, ta, path, session); resp.StatusCode != http.StatusOK ||
				!strings.Contains(body, fmt.Sprintf("Deployment #%d succeeded", id)) {
				t.Fatalf("%s's dashboard %s: %d, no log of %s:\n%s", ta.Config.Cluster.Node, path, resp.StatusCode, *d.Node, body)
			}
		}
	}
	var st api.Status
	agents[2].Call(t, "GET", api.PathStatus, nil, http.StatusOK, &st)
	if st.Cluster == nil || !st.Cluster.Quorum || len(st.Cluster.Members) != 3 || st.Cluster.Node != "node-3" {
		t.Fatalf("status cluster = %+v", st.Cluster)
	}
	leaders := 0
	for _, m := range st.Cluster.Members {
		if m.Leader {
			leaders++
		}
	}
	if leaders != 1 {
		t.Fatalf("%d leaders in %+v", leaders, st.Cluster.Members)
	}
}

func TestClusterDeletedProjectLeavesNoBuildLogOnTheBuildingNode(t *testing.T) {
	agents := startClusterAgents(t)
	marker := fmt.Sprintf("miaobu-cluster-delete-%d", time.Now().UnixNano())
	p, _, id := startBuildSleeping(t, agents[0], marker, 20*time.Second)
	var building *agenttest.Agent
	for deadline := time.Now().Add(30 * time.Second); building == nil; time.Sleep(50 * time.Millisecond) {
		var d api.Deployment
		agents[0].Call(t, "GET", api.PathDeployments+"/"+strconv.FormatInt(id, 10), nil, http.StatusOK, &d)
		for _, ta := range agents {
			if d.Node != nil && *d.Node == ta.Config.Cluster.Node {
				building = ta
			}
		}
		if building == nil && time.Now().After(deadline) {
			t.Fatal("the deployment never got a node")
		}
	}
	deleter := agents[0]
	if deleter == building {
		deleter = agents[1]
	}
	deleter.Call(t, "DELETE", api.PathProjects+"/"+p.Slug, nil, http.StatusOK, nil)
	logPath := filepath.Join(building.Config.DataDir, "logs", strconv.FormatInt(id, 10)+".log")
	for deadline := time.Now().Add(clusterStartTimeout); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(logPath); errors.Is(err, fs.ErrNotExist) && len(proctest.WithMarker(marker)) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the build log of the deleted project's deployment is still on %s", building.Config.Cluster.Node)
		}
	}
}

// dashboardSession signs in to ta's dashboard with a one-time code and returns the session cookie.
func dashboardSession(t *testing.T, ta *agenttest.Agent) string {
	t.Helper()
	var code api.LoginCode
	ta.Call(t, "POST", api.PathLoginCodes, nil, http.StatusCreated, &code)
	req, err := http.NewRequest("POST", ta.URL+"/login", strings.NewReader(url.Values{"code": {code.Code}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body := agenttest.Do(t, req, "Origin", ta.Config.PublicURL, "Sec-Fetch-Site", "same-origin")
	for _, c := range resp.Cookies() {
		if c.Name == "miaobu_session" {
			return c.Value
		}
	}
	t.Fatalf("sign-in to %s: %d %s", ta.URL, resp.StatusCode, body)
	return ""
}

// dashboardGet asks ta's dashboard for path with the session cookie.
func dashboardGet(t *testing.T, ta *agenttest.Agent, path, session string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", ta.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: "miaobu_session", Value: session})
	return agenttest.Do(t, req)
}
