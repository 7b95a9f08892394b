package agent_test

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/github"
)

// clusterNode is one `miaobu agent` process of a cluster.
type clusterNode struct {
	name string
	// env is the environment the node's process adds to the test's.
	env []string
	cmd *exec.Cmd
	log string
	api *agenttest.Agent
}

// startClusterProcesses runs three `miaobu agent` processes on loopback as one cluster, with a
// lease of 3s so that a dead node's build is taken over within seconds, and env added to each
// one's environment; it returns once all three answer.
func startClusterProcesses(t *testing.T, env ...string) []*clusterNode {
	t.Helper()
	routes := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	peers := make([]string, len(routes))
	for i, r := range routes {
		peers[i] = "nats-route://" + r
	}
	var nodes []*clusterNode
	for i := range 3 {
		data, addr, name := t.TempDir(), freeAddr(t), fmt.Sprintf("node-%d", i+1)
		n := &clusterNode{name: name, log: filepath.Join(t.TempDir(), name+".log"),
			api: &agenttest.Agent{URL: "http://" + addr, Config: &config.Config{Listen: addr, DataDir: data, Sites: config.Sites{Domain: "localhost"}}}}
		n.env = append([]string{"MIAOBU_DATA_DIR=" + data, "MIAOBU_LISTEN=" + addr, "MIAOBU_SHUTDOWN_TIMEOUT=3s",
			"XDG_CONFIG_HOME=" + filepath.Join(data, "config"), "MIAOBU_BUILD_CONCURRENCY=1", "MIAOBU_BUILD_SANDBOX=none",
			"MIAOBU_CLUSTER_NODE=" + name, "MIAOBU_CLUSTER_LISTEN=" + routes[i], "MIAOBU_CLUSTER_PEERS=" + strings.Join(peers, ","),
			"MIAOBU_CLUSTER_SECRET=route-secret-of-the-test-cluster-32", "MIAOBU_CLUSTER_LEASE_TTL=3s"}, env...)
		n.start(t)
		nodes = append(nodes, n)
	}
	waitForNodes(t, nodes...)
	return nodes
}

// start runs the node's process, on its data dir, logging to its log file.
func (n *clusterNode) start(t *testing.T) {
	t.Helper()
	n.cmd = exec.Command(miaobuBinary(t), "agent")
	n.cmd.Env = append(os.Environ(), n.env...)
	logFile, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd := n.cmd
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logFile.Close() })
}

// waitForNodes waits until every node answers and has its admin token.
func waitForNodes(t *testing.T, nodes ...*clusterNode) {
	t.Helper()
	deadline := time.Now().Add(clusterStartTimeout)
	for _, n := range nodes {
		for {
			token, _ := os.ReadFile(n.api.Config.AdminTokenFile())
			n.api.Token = strings.TrimSpace(string(token))
			if resp, err := http.Get(n.api.URL + api.PathHealth); err == nil {
				resp.Body.Close()
				if n.api.Token != "" {
					break
				}
			}
			if time.Now().After(deadline) {
				for _, other := range nodes {
					b, _ := os.ReadFile(other.log)
					t.Logf("%s:\n%s", other.name, b)
				}
				t.Fatalf("%s did not start within %s", n.name, clusterStartTimeout)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// kill ends a node with SIGKILL.
func (n *clusterNode) kill(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = n.cmd.Wait()
}

// pushOnce delivers a signed push of sha to p through node n once and returns the answer's
// status and body; a node that cannot be reached answers status 0.
func pushOnce(n *clusterNode, p api.Project, sha string) (int, map[string]any) {
	body := fmt.Sprintf(`{"ref":"refs/heads/%s","after":%q,"head_commit":{"id":%q,"message":"burst","author":{"name":"Ada"}}}`,
		p.DefaultBranch, sha, sha)
	req, err := http.NewRequest("POST", n.api.URL+api.PathWebhookPrefix+strconv.FormatInt(p.ID, 10), strings.NewReader(body))
	if err != nil {
		return 0, nil
	}
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", sha)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", github.Sign([]byte(p.WebhookSecret), []byte(body)))
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// waitThroughElection polls deployment id through node n until it has ended, for at most 90
// seconds, taking the 503s of the node's elections in its stride, and fails the test unless it
// was deployed.
func waitThroughElection(t *testing.T, n *clusterNode, id int64) api.Deployment {
	t.Helper()
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		req, err := http.NewRequest("GET", fmt.Sprintf("%s%s/%d", n.api.URL, api.PathDeployments, id), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+n.api.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var d api.Deployment
		err = json.NewDecoder(resp.Body).Decode(&d)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusServiceUnavailable:
			continue
		case resp.StatusCode != http.StatusOK || err != nil:
			t.Fatalf("GET deployment %d through %s: %d %v", id, n.name, resp.StatusCode, err)
		case d.Status == api.StatusDeployed:
			return d
		case d.Status == api.StatusFailed || d.Status == api.StatusCancelled:
			t.Fatalf("deployment %d ended %s: %s\n%s", id, d.Status, d.ErrorMessage, n.api.Log(t, id))
		}
	}
	t.Fatalf("deployment %d did not end within 90s", id)
	return api.Deployment{}
}

// fakeSHA is a commit SHA made from i.
func fakeSHA(i int) string {
	sum := sha1.Sum([]byte(strconv.Itoa(i)))
	return hex.EncodeToString(sum[:])
}

func TestClusterKeepsEveryAnsweredPushThroughSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three agent processes through elections for half a minute")
	}
	// Building paused: the deployments stay queued, and the test is about what was recorded.
	nodes := startClusterProcesses(t, "MIAOBU_BUILD_CONCURRENCY=0")
	p := nodes[0].api.AddProject(t, localProject("burst", t.TempDir()))
	// Pushes go round-robin to the three nodes, as through a load balancer, from 4 clients; node-3
	// is killed after 20 of them, and they go on until 20 more are answered success (the survivors
	// answer 503 while they elect new leaders).
	answered := map[int64]string{}
	var mu sync.Mutex
	afterKill := 0
	var wg sync.WaitGroup
	next := make(chan int)
	for range 4 {
		wg.Go(func() {
			for i := range next {
				sha := fakeSHA(i)
				status, out := pushOnce(nodes[i%3], p, sha)
				id, _ := out["deployment_id"].(float64)
				if status == http.StatusOK && out["status"] == "success" && id != 0 {
					mu.Lock()
					answered[int64(id)] = sha
					if i >= 20 {
						afterKill++
					}
					mu.Unlock()
				} else if status != 0 && status != http.StatusServiceUnavailable {
					t.Errorf("push %d to %s: %d %v", i, nodes[i%3].name, status, out)
				}
			}
		})
	}
	deadline := time.Now().Add(45 * time.Second)
	pushes := 0
	for ; ; pushes++ {
		if pushes == 20 {
			nodes[2].kill(t)
		}
		mu.Lock()
		enough := afterKill >= 20
		mu.Unlock()
		if enough || time.Now().After(deadline) {
			break
		}
		next <- pushes
	}
	close(next)
	wg.Wait()
	if afterKill < 20 {
		t.Fatalf("only %d pushes were answered success in the 45s after the kill", afterKill)
	}
	for id, sha := range answered {
		var d api.Deployment
		nodes[id%2].api.Call(t, "GET", fmt.Sprintf("%s/%d", api.PathDeployments, id), nil, http.StatusOK, &d)
		if d.CommitSHA != sha {
			t.Fatalf("deployment %d answered for %s is of %q after the kill", id, sha, d.CommitSHA)
		}
	}

	// With two of three nodes gone there is no quorum: webhooks get 503, never success.
	nodes[1].kill(t)
	status, out := pushOnce(nodes[0], p, fakeSHA(pushes+1))
	if status != http.StatusServiceUnavailable {
		t.Fatalf("push without quorum: %d %v, want 503", status, out)
	}
}

func TestClusterTakesOverTheBuildOfAKilledNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three agent processes through elections and a lease expiry for half a minute")
	}
	nodes := startClusterProcesses(t)
	marker := fmt.Sprintf("miaobu-cluster-%d", time.Now().UnixNano())
	p, _, id := startBuildSleeping(t, nodes[0].api, marker, 4*time.Second)
	builder, survivors := splitByBuilder(t, nodes, id)
	builder.kill(t)
	d := waitThroughElection(t, survivors[0], id)
	if d.Node == nil || *d.Node == builder.name {
		t.Fatalf("deployment %d finished on %v, want a node other than the killed %s", id, d.Node, builder.name)
	}
	for _, n := range survivors {
		if resp, body := n.api.Site(t, p.Slug, "/"); resp.StatusCode != http.StatusOK || body != "survived" {
			t.Fatalf("%s serves %d %q", n.name, resp.StatusCode, body)
		}
	}

	// The killed node, restarted on its data dir, catches up by itself and serves the site too.
	builder.start(t)
	waitForNodes(t, builder)
	if d := waitThroughElection(t, builder, id); d.Node == nil || *d.Node == builder.name {
		t.Fatalf("after its restart %s sees deployment %d built by %v", builder.name, id, d.Node)
	}
	if resp, body := builder.api.Site(t, p.Slug, "/"); resp.StatusCode != http.StatusOK || body != "survived" {
		t.Fatalf("restarted %s serves %d %q", builder.name, resp.StatusCode, body)
	}
}

// TestClusterBuildOutlivesALostQuorum kills the two nodes that are not building while a build
// runs: the building node cannot make it live without a quorum, and the deployment is not failed
// for it; once the two are back, the deployment is built and goes live.
func TestClusterBuildOutlivesALostQuorum(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three agent processes through a quorum's loss and return")
	}
	nodes := startClusterProcesses(t)
	marker := fmt.Sprintf("miaobu-quorum-%d", time.Now().UnixNano())
	p, _, id := startBuildSleeping(t, nodes[0].api, marker, 4*time.Second)
	builder, others := splitByBuilder(t, nodes, id)
	for _, n := range others {
		n.kill(t)
	}
	// The build ends (4 s) with no quorum to record it; the builder says so and keeps no lease.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		log, _ := os.ReadFile(builder.log)
		if strings.Contains(string(log), "no quorum") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never met the lost quorum:\n%s", builder.name, log)
		}
	}
	for _, n := range others {
		n.start(t)
	}
	waitForNodes(t, others...)
	if d := waitThroughElection(t, builder, id); d.Status != api.StatusDeployed {
		t.Fatalf("deployment %d after the quorum came back: %+v", id, d)
	}
	if resp, body := builder.api.Site(t, p.Slug, "/"); resp.StatusCode != http.StatusOK || body != "survived" {
		t.Fatalf("%s serves %d %q", builder.name, resp.StatusCode, body)
	}
}

// splitByBuilder returns the node that builds deployment id and the others.
func splitByBuilder(t *testing.T, nodes []*clusterNode, id int64) (builder *clusterNode, others []*clusterNode) {
	t.Helper()
	var building api.Deployment
	nodes[0].api.Call(t, "GET", fmt.Sprintf("%s/%d", api.PathDeployments, id), nil, http.StatusOK, &building)
	if building.Node == nil {
		t.Fatalf("the building deployment has no node: %+v", building)
	}
	for _, n := range nodes {
		if n.name == *building.Node {
			builder = n
		} else {
			others = append(others, n)
		}
	}
	return builder, others
}
