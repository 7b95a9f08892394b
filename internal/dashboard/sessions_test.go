package dashboard_test

import (
	"bufio"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/gittest"
	"github.com/miaobu/miaobu/internal/logtest"
)

func TestReplacingTheAdminTokenEndsSessionsAndCodes(t *testing.T) {
	t.Parallel()
	cfg := agenttest.Config(t)
	first := agenttest.Start(t, cfg)
	session := signIn(t, first)
	pending := loginCode(t, first)
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := first.Store.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.AdminTokenFile(), []byte("a-new-admin-token-after-a-leak\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.PublicURL, cfg.AgentURL = "", "", ""
	ta := agenttest.Start(t, cfg)
	if resp, _ := send(t, ta, "GET", "/", nil, session); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a session of the old admin token: %d", resp.StatusCode)
	}
	if resp, _ := postForm(t, ta, "/login", url.Values{"code": {pending.Code}}, ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a login code of the old admin token: %d", resp.StatusCode)
	}
	if resp, _ := send(t, ta, "GET", "/", nil, signIn(t, ta)); resp.StatusCode != http.StatusOK {
		t.Errorf("a session of the new admin token: %d", resp.StatusCode)
	}
}

func TestSignOutEverywhere(t *testing.T) {
	t.Parallel()
	ta := agenttest.Start(t, agenttest.Config(t))
	here, there := signIn(t, ta), signIn(t, ta)
	if _, body := send(t, ta, "GET", "/status", nil, here); !strings.Contains(body, `name="everywhere"`) {
		t.Fatalf("the status page offers no sign-out everywhere:\n%s", body)
	}
	if resp, _ := postForm(t, ta, "/logout", url.Values{}, here); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ := send(t, ta, "GET", "/", nil, there); resp.StatusCode != http.StatusOK {
		t.Fatalf("signing out here ended the session there: %d", resp.StatusCode)
	}
	here = signIn(t, ta)
	if resp, _ := postForm(t, ta, "/logout", url.Values{"everywhere": {"1"}}, here); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout everywhere: %d", resp.StatusCode)
	}
	for _, s := range []string{here, there} {
		if resp, _ := send(t, ta, "GET", "/", nil, s); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("a session after signing out everywhere: %d", resp.StatusCode)
		}
	}
}

// runningDeployment is an agent with a deployment whose build prints a line and then sleeps, so
// that it is still building when the test looks at it.
func runningDeployment(t *testing.T) (*agenttest.Agent, int64) {
	t.Helper()
	ta := agenttest.Start(t, agenttest.Config(t))
	repo := gittest.New(t)
	p := ta.AddProject(t, api.ProjectCreate{Name: "slow", RepoURL: repo.Dir, Branch: "main", InstallCommand: "true",
		BuildCommand: "echo started; sleep 60", OutputDirectory: "."})
	repo.Commit("slow", map[string]string{"index.html": "hello"})
	var d api.Deployment
	ta.Call(t, "POST", api.PathProjects+"/"+p.Slug+"/deploy", nil, http.StatusCreated, &d)
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(ta.Log(t, d.ID), "started"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the build never started:\n%s", ta.Log(t, d.ID))
		}
	}
	t.Cleanup(func() {
		ta.Call(t, "POST", api.PathDeployments+"/"+strconv.FormatInt(d.ID, 10)+"/cancel", nil, http.StatusOK, nil)
	})
	return ta, d.ID
}

func TestLogStreamEndsWithItsSession(t *testing.T) {
	t.Parallel()
	ta, id := runningDeployment(t)
	session := signIn(t, ta)
	req, _ := http.NewRequest("GET", ta.URL+"/deployments/"+strconv.FormatInt(id, 10)+"/log", nil)
	req.AddCookie(&http.Cookie{Name: "miaobu_session", Value: session})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() && !strings.Contains(lines.Text(), "started") {
	}
	postForm(t, ta, "/logout", url.Values{}, session)
	ended := make(chan struct{})
	go func() {
		for lines.Scan() {
		}
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the live log still streams 5 s after its session signed out")
	}
}

func TestFailedSignInsAreThrottledPerAddress(t *testing.T) {
	t.Parallel()
	var log logtest.Buffer
	ta := agenttest.StartWith(t, agenttest.Config(t), agenttest.Options{Log: slog.New(slog.NewTextHandler(&log, nil))})
	for i := range 10 {
		if resp, _ := postForm(t, ta, "/login", url.Values{"token": {"guess-" + strconv.Itoa(i)}}, ""); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("guess %d: %d", i, resp.StatusCode)
		}
	}
	resp, _ := postForm(t, ta, "/login", url.Values{"token": {ta.Token}}, "")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || len(resp.Cookies()) != 0 {
		t.Errorf("sign-in after 10 failures: %d %v", resp.StatusCode, resp.Header)
	}
	if !strings.Contains(log.String(), `msg="dashboard sign-in refused" remote_addr=127.0.0.1`) {
		t.Errorf("the refusals do not name the client's address:\n%s", log.String())
	}
}
