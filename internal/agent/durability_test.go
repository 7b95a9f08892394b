package agent_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/store"
)

// TestAnsweredDeliveriesSurviveSIGKILL kills the agent in the middle of a burst of signed pushes and
// checks, after a restart on the same data dir, that every push answered success is recorded.
func TestAnsweredDeliveriesSurviveSIGKILL(t *testing.T) {
	// Not parallel: it restarts the agent on the same port.
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
	agent := startAgentProcess(t, dataDir, addr, "MIAOBU_BUILD_CONCURRENCY=0")
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
				req.Header.Set("X-Hub-Signature-256", github.Sign([]byte("burst-secret"), body))
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
	// Kill mid-burst once enough answers are in, however slow the machine is.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(answered)
		mu.Unlock()
		if n >= 50 || time.Now().After(deadline) {
			break
		}
	}
	if err := agent.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = agent.cmd.Wait()
	close(stop)
	wg.Wait()
	if len(answered) < 20 {
		t.Fatalf("only %d deliveries answered before the kill: the burst was too short to test anything", len(answered))
	}

	restarted := startAgentProcess(t, dataDir, addr, "MIAOBU_BUILD_CONCURRENCY=0")
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
