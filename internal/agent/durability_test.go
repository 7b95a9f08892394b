package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/store"
)

// agentProcess is this test binary running as an agent in a child process.
type agentProcess struct {
	cmd  *exec.Cmd
	addr string
}

// freeAddr returns a loopback address with a free port.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startAgentProcess runs an agent on dataDir at addr and waits until it answers /healthz.
func startAgentProcess(t *testing.T, dataDir, addr string) *agentProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MIAOBU_TEST_AGENT=1", "MIAOBU_DATA_DIR="+dataDir, "MIAOBU_LISTEN="+addr,
		"MIAOBU_BUILD_CONCURRENCY=0", "MIAOBU_CONFIG=", "XDG_CONFIG_HOME="+t.TempDir())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		scanner := bufio.NewScanner(stderr)
		for scanner.Scan() {
			if strings.Contains(scanner.Text(), "level=ERROR") {
				t.Log("agent:", scanner.Text())
			}
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + api.PathHealth)
		if err == nil {
			resp.Body.Close()
			return &agentProcess{cmd: cmd, addr: addr}
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("agent did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAnsweredDeliveriesSurviveSIGKILL kills the agent in the middle of a burst of signed pushes and
// checks, after a restart on the same data dir, that every push answered success is recorded.
func TestAnsweredDeliveriesSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts agent processes")
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	st, err := store.Open(dataDir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	project := &store.Project{Name: "site", Slug: "site", RepoURL: "https://example.com/site.git", DefaultBranch: "master",
		Target: "local", WebhookSecret: "burst-secret"}
	if err := st.CreateProject(project); err != nil {
		t.Fatal(err)
	}
	st.Close()

	addr := freeAddr(t)
	agent := startAgentProcess(t, dataDir, addr)
	url := "http://" + addr + api.PathWebhookPrefix + strconv.FormatInt(project.ID, 10)

	var (
		mu       sync.Mutex
		answered = map[string]int64{} // commit → deployment id answered success
		wg       sync.WaitGroup
		stop     = make(chan struct{})
	)
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				sha := fmt.Sprintf("%08x%032x", c, i)
				body := pushPayload(t, "master", sha)
				req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
				req.Header.Set("X-GitHub-Event", "push")
				req.Header.Set("X-GitHub-Delivery", sha)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Hub-Signature-256", signOf("burst-secret", body))
				resp, err := client.Do(req)
				if err != nil {
					return // the agent is gone
				}
				var answer api.WebhookAnswer
				decodeErr := json.NewDecoder(resp.Body).Decode(&answer)
				resp.Body.Close()
				if decodeErr == nil && resp.StatusCode == 200 && answer.Status == "success" {
					mu.Lock()
					answered[sha] = answer.DeploymentID
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(400 * time.Millisecond)
	if err := agent.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = agent.cmd.Wait()
	close(stop)
	wg.Wait()
	if len(answered) < 20 {
		t.Fatalf("only %d deliveries answered before the kill: the burst was too short to test anything", len(answered))
	}

	restarted := startAgentProcess(t, dataDir, addr)
	defer func() {
		restarted.cmd.Process.Signal(syscall.SIGTERM)
		restarted.cmd.Wait()
	}()
	token, err := os.ReadFile(filepath.Join(dataDir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://"+addr+api.PathDeployments+"?limit=1000000", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var deployments []api.Deployment
	if err := json.NewDecoder(resp.Body).Decode(&deployments); err != nil {
		t.Fatal(err)
	}
	stored := map[string]int64{}
	for _, d := range deployments {
		stored[d.CommitSHA] = d.ID
	}
	for sha, id := range answered {
		if stored[sha] != id {
			t.Errorf("commit %s answered success as deployment %d, after restart stored as %d", sha, id, stored[sha])
		}
	}
	t.Logf("%d deliveries answered success before SIGKILL, all recorded; %d deployments stored", len(answered), len(deployments))
}
