package agent_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/gittest"
	"github.com/miaobu/miaobu/internal/proctest"
)

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// miaobuBinary builds the real binary once for the tests that stop it with signals.
func miaobuBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "miaobu-bin")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "miaobu")
		out, err := exec.Command("go", "build", "-o", binaryPath, "github.com/miaobu/miaobu/cmd/miaobu").CombinedOutput()
		if err != nil {
			binaryErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

// agentProcess is `miaobu agent` running as a process of its own.
type agentProcess struct {
	t    *testing.T
	cmd  *exec.Cmd
	data string
	addr string
}

// startAgentProcess runs the binary's agent on addr with data dir data, and env added to (or
// overriding) its environment, and waits until it answers.
func startAgentProcess(t *testing.T, data, addr string, env ...string) *agentProcess {
	t.Helper()
	cmd := exec.Command(miaobuBinary(t), "agent")
	cmd.Env = append(os.Environ(), "MIAOBU_DATA_DIR="+data, "MIAOBU_LISTEN="+addr, "MIAOBU_SHUTDOWN_TIMEOUT=3s",
		"XDG_CONFIG_HOME="+filepath.Join(data, "config"), "MIAOBU_BUILD_CONCURRENCY=1")
	cmd.Env = append(cmd.Env, env...)
	logFile, err := os.OpenFile(filepath.Join(t.TempDir(), "agent.log"), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &agentProcess{t: t, cmd: cmd, data: data, addr: addr}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + api.PathHealth); err == nil {
			resp.Body.Close()
			return p
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logFile.Name())
			t.Fatalf("agent did not start:\n%s", b)
		}
	}
}

// client is the API of the process, for agenttest's helpers.
func (p *agentProcess) client() *agenttest.Agent {
	token, err := os.ReadFile(filepath.Join(p.data, "admin-token"))
	if err != nil {
		p.t.Fatal(err)
	}
	return &agenttest.Agent{URL: "http://" + p.addr, Token: strings.TrimSpace(string(token)),
		Config: &config.Config{Listen: p.addr, Sites: config.Sites{Domain: "localhost"}}}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startSlowBuild creates a project whose build runs a node process tagged with marker for a few
// seconds, pushes it and waits until it is building.
func startSlowBuild(t *testing.T, ta *agenttest.Agent, marker string) (api.Project, int64) {
	t.Helper()
	p, _, id := startBuildSleeping(t, ta, marker, 3*time.Second)
	return p, id
}

// startBuildSleeping is startSlowBuild with a build that sleeps for d; it also returns the repository.
func startBuildSleeping(t *testing.T, ta *agenttest.Agent, marker string, d time.Duration) (api.Project, *gittest.Repo, int64) {
	t.Helper()
	repo := gittest.New(t)
	p := ta.AddProject(t, localProject("slow", repo.Dir))
	ta.Call(t, "PATCH", api.PathProjects+"/"+p.Slug, api.ProjectUpdate{InstallCommand: ptr("true"),
		BuildCommand: ptr("node build.js " + marker)}, http.StatusOK, nil)
	ta.Call(t, "PUT", api.PathProjects+"/"+p.Slug+"/env", map[string]string{"SLEEP": fmt.Sprint(d.Milliseconds())}, http.StatusOK, nil)
	id := ta.Push(t, p, repo.Commit("slow", nodeSite("survived")))
	for deadline := time.Now().Add(30 * time.Second); len(proctest.WithMarker(marker)) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the build never started:\n%s", ta.Log(t, id))
		}
	}
	return p, repo, id
}

func TestSIGTERMMidBuildQueuesItAgain(t *testing.T) {
	// Not parallel: it times the shutdown and restarts the agent on the same port.
	data, addr := t.TempDir(), freeAddr(t)
	proc := startAgentProcess(t, data, addr)
	ta := proc.client()
	marker := fmt.Sprintf("miaobu-sigterm-%d", time.Now().UnixNano())
	p, id := startSlowBuild(t, ta, marker)

	start := time.Now()
	if err := proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := proc.cmd.Wait()
	if elapsed := time.Since(start); elapsed > 3*time.Second+time.Second {
		t.Errorf("the agent took %s to stop (shutdown_timeout 3s)", elapsed)
	}
	if err != nil {
		t.Errorf("the agent exited with %v, want status 0", err)
	}
	if left := proctest.WithMarker(marker); len(left) > 0 {
		t.Errorf("build processes left behind: %v", left)
	}

	ta = startAgentProcess(t, data, addr).client()
	d := ta.Deployed(t, id)
	if _, body := ta.Site(t, p.Slug, "/"); body != "survived" || !d.Live {
		t.Errorf("after restart the site serves %q (live %v)", body, d.Live)
	}
	if log := ta.Log(t, id); !strings.Contains(log, "queued again") {
		t.Errorf("the log does not say the build was queued again:\n%s", log)
	}
}

func TestSIGKILLMidBuildNeverLeavesItStuck(t *testing.T) {
	// Not parallel: it restarts the agent on the same port.
	data, addr := t.TempDir(), freeAddr(t)
	proc := startAgentProcess(t, data, addr)
	ta := proc.client()
	marker := fmt.Sprintf("miaobu-sigkill-%d", time.Now().UnixNano())
	p, id := startSlowBuild(t, ta, marker)
	if err := proc.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = proc.cmd.Wait()

	ta = startAgentProcess(t, data, addr).client()
	d := ta.Wait(t, id)
	if d.Status != api.StatusDeployed && d.Status != api.StatusFailed {
		t.Fatalf("after SIGKILL and restart the deployment ended %s", d.Status)
	}
	if d.Status == api.StatusDeployed {
		if _, body := ta.Site(t, p.Slug, "/"); body != "survived" {
			t.Errorf("after restart the site serves %q", body)
		}
	}
}

// TestSIGKILLOfTheAgentKillsItsBuild kills an agent that builds without a sandbox; neither the build's
// foreground process nor one that cleared its environment and left the build's session may outlive it.
func TestSIGKILLOfTheAgentKillsItsBuild(t *testing.T) {
	// Not parallel: it kills an agent process and times how soon its build follows.
	data, addr := t.TempDir(), freeAddr(t)
	proc := startAgentProcess(t, data, addr, "MIAOBU_BUILD_SANDBOX=none")
	ta := proc.client()
	n := time.Now().UnixNano() % 1e9
	stray, foreground := fmt.Sprintf("300.%d", n), fmt.Sprintf("301.%d", n)
	t.Cleanup(func() { proctest.KillWithMarker(stray); proctest.KillWithMarker(foreground) })
	repo := gittest.New(t)
	p := ta.AddProject(t, localProject("stray", repo.Dir))
	ta.Call(t, "PATCH", api.PathProjects+"/"+p.Slug, api.ProjectUpdate{InstallCommand: ptr("true"),
		BuildCommand: ptr("env -i setsid sh -c 'sleep " + stray + "' > /dev/null 2>&1 < /dev/null & sleep " + foreground)}, http.StatusOK, nil)
	id := ta.Push(t, p, repo.Commit("stray", map[string]string{"index.html": "x"}))
	for deadline := time.Now().Add(30 * time.Second); len(proctest.WithMarker(stray)) == 0 || len(proctest.WithMarker(foreground)) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the build never started:\n%s", ta.Log(t, id))
		}
	}
	if err := proc.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = proc.cmd.Wait()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		left := append(proctest.WithMarker(stray), proctest.WithMarker(foreground)...)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("build processes outlived the agent: %v", left)
		}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binaryPath != "" {
		os.RemoveAll(filepath.Dir(binaryPath))
	}
	os.Exit(code)
}
