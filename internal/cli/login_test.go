package cli

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/config"
)

// fakeAgent answers the project list for one token and 401 otherwise, like the agent's admin API.
func fakeAgent(t *testing.T, token string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"detail":"Not authenticated"}`))
			return
		}
		if r.Method != http.MethodGet || r.URL.Path != api.PathProjects {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`[]`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestLoginSavesAgentAndToken(t *testing.T) {
	cliEnv(t)
	srv := fakeAgent(t, "right-token")
	file := filepath.Join(t.TempDir(), "conf", "config.yaml")
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("sites:\n  domain: sites.example.com\ntoken: stale\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run("login", "--config", file, "--agent", srv.URL+"/", "--token", "right-token")
	if code != 0 || out != "" || !strings.Contains(errOut, "Logged in to "+srv.URL) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if strings.Contains(errOut, "right-token") {
		t.Errorf("the token was printed: %q", errOut)
	}
	if fi, err := os.Stat(file); err != nil || (runtime.GOOS != "windows" && fi.Mode() != 0o600) {
		t.Errorf("config file mode %v (%v)", fi.Mode(), err)
	}

	t.Setenv("MIAOBU_CONFIG", file)
	cfg, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AgentURL != srv.URL || cfg.Token != "right-token" || cfg.Sites.Domain != "sites.example.com" {
		t.Fatalf("saved agent %q, token %q, sites.domain %q", cfg.AgentURL, cfg.Token, cfg.Sites.Domain)
	}
	// The saved address and token are what later commands use.
	if code, out, errOut := run("project", "list", "--json"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("project list after login: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestLoginCreatesPrivateConfigDir(t *testing.T) {
	cliEnv(t)
	srv := fakeAgent(t, "tok")
	t.Setenv("MIAOBU_TOKEN", "tok")
	if code, _, errOut := run("login", "--agent", srv.URL); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	dir := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "miaobu")
	data, err := os.ReadFile(filepath.Join(dir, "config.yaml"))
	if err != nil || !strings.Contains(string(data), "token: tok") {
		t.Fatalf("config %q (%v)", data, err)
	}
	if fi, err := os.Stat(dir); runtime.GOOS != "windows" && (err != nil || fi.Mode() != 0o700|os.ModeDir) {
		t.Errorf("config dir mode %v (%v)", fi.Mode(), err)
	}
}

func TestLoginRefusedWritesNothing(t *testing.T) {
	cliEnv(t)
	srv := fakeAgent(t, "right-token")
	file := filepath.Join(t.TempDir(), "config.yaml")
	for name, args := range map[string][]string{
		"wrong token": {"--agent", srv.URL, "--token", "wrong-token"},
		"no agent":    {"--agent", "http://127.0.0.1:1", "--token", "wrong-token"},
		"not an API":  {"--agent", srv.URL + "/elsewhere", "--token", "right-token"},
	} {
		code, out, errOut := run(append([]string{"login", "--config", file}, args...)...)
		if code != 1 || out != "" || !strings.Contains(errOut, "nothing was saved") || strings.Contains(errOut, args[3]) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", name, code, out, errOut)
		}
		if _, err := os.Stat(file); !os.IsNotExist(err) {
			t.Fatalf("%s: config file written (%v)", name, err)
		}
	}
	if code, _, errOut := run("login", "--config", file, "--agent", srv.URL, "--token", "wrong-token"); !strings.Contains(errOut, "refused the admin token") || code != 1 {
		t.Errorf("wrong token: exit %d, stderr %q", code, errOut)
	}
}

func TestLoginUsage(t *testing.T) {
	cliEnv(t)
	for _, args := range [][]string{
		{"login", "--token", "t"},
		{"login", "--agent", "http://127.0.0.1:8000"},
		{"login", "--agent", "ftp://example.com", "--token", "t"},
		{"login", "extra", "--agent", "http://127.0.0.1:8000", "--token", "t"},
	} {
		if code, _, errOut := run(args...); code != 2 || !strings.Contains(errOut, "error:") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}

func TestLoginWarnsAboutClearText(t *testing.T) {
	cliEnv(t)
	srv := fakeAgent(t, "tok")
	// The warning comes before the check, so an address that never answers is enough.
	code, _, errOut := run("login", "--agent", "http://agent.invalid:8000", "--token", "tok")
	if code != 1 || !strings.Contains(errOut, "clear text") {
		t.Errorf("remote http: exit %d, stderr %q", code, errOut)
	}
	if _, _, errOut := run("login", "--agent", srv.URL, "--token", "tok"); strings.Contains(errOut, "clear text") {
		t.Errorf("loopback http warned: %q", errOut)
	}
}
