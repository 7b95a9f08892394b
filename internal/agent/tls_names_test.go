package agent_test

import (
	"bufio"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/logtest"
	"github.com/miaobu/miaobu/internal/store"
)

// handshake completes a TLS handshake with the agent's HTTPS listener at addr for server name sni.
func handshake(addr, sni string) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err == nil {
		conn.Close()
	}
	return err
}

// plainHTTP sends raw, an HTTP request, to addr and returns the status line and Location of the answer.
func plainHTTP(t *testing.T, addr, raw string) (status, location string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Status, resp.Header.Get("Location")
}

// metricValue is the value of the agent's metric name, which has no labels.
func metricValue(t *testing.T, ta *agenttest.Agent, name string) int {
	t.Helper()
	for _, line := range strings.Split(ta.Text(t, api.PathMetrics), "\n") {
		if value, ok := strings.CutPrefix(line, name+" "); ok {
			n, err := strconv.Atoi(value)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestTLSOnlyForServedNames: preview hosts get certificates; names that only look like a
// deployment's host get none and start no order, and their refused handshakes are counted, not
// logged one by one; the redirect listener redirects served names only; a removed domain's
// certificate is gone from memory, disk and status.
func TestTLSOnlyForServedNames(t *testing.T) {
	httpsAddr, httpAddr := freeAddr(t), freeAddr(t)
	ca := startPebble(t, false, httpsAddr, httpAddr)
	var logs logtest.Buffer
	ta, p, repo := startTLSAgentLogging(t, ca, httpsAddr, httpAddr, slog.New(slog.NewTextHandler(&logs, nil)))
	branches := []string{"feat-*"}
	ta.Call(t, "PATCH", api.PathProjects+"/blog", api.ProjectUpdate{TriggerSettings: api.TriggerSettings{PreviewBranches: &branches}}, http.StatusOK, nil)
	repo.Git("checkout", "-q", "-b", "feat-x")
	repo.Commit("feature", map[string]string{"index.html": "feature"})
	var queued api.Deployment
	ta.Call(t, "POST", api.PathProjects+"/blog/deploy", api.DeployRequest{Branch: "feat-x"}, http.StatusCreated, &queued)
	preview := ta.Deployed(t, queued.ID)
	ta.Call(t, "POST", api.PathProjects+"/blog/deploy", api.DeployRequest{CommitSHA: strings.Repeat("f", 40)}, http.StatusCreated, &queued)
	failed := ta.Wait(t, queued.ID)

	previewHost := "blog--" + preview.Alias + ".sites.test"
	if body, err := httpsGet(httpsAddr, previewHost, "/", ca.roots); err != nil || body != "feature" {
		t.Fatalf("the preview over HTTPS: %q, %v", body, err)
	}
	orders, handshakeErrors := ca.orders.Load(), metricValue(t, ta, "miaobu_tls_handshake_errors_total")
	id := strconv.FormatInt(preview.ID, 10)
	refused := []string{"blog--0" + id + ".sites.test", "blog--00" + id + ".sites.test", "blog--+" + id + ".sites.test",
		"blog--" + strings.Repeat("0", 40) + id + ".sites.test", "blog--" + strconv.FormatInt(failed.ID, 10) + ".sites.test",
		"blog--git-nope.sites.test", "x" + strings.Repeat("a", 70) + ".sites.test"}
	for _, name := range refused {
		if err := handshake(httpsAddr, name); err == nil {
			t.Errorf("%s got a certificate", name)
		}
	}
	if n := ca.orders.Load(); n != orders {
		t.Fatalf("names the agent does not serve made %d orders", n-orders)
	}
	// The server counts a failed handshake after the client has seen it fail.
	for deadline := time.Now().Add(5 * time.Second); metricValue(t, ta, "miaobu_tls_handshake_errors_total")-handshakeErrors < len(refused) &&
		time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := metricValue(t, ta, "miaobu_tls_handshake_errors_total") - handshakeErrors; n != len(refused) {
		t.Errorf("%d failed handshakes counted, want %d", n, len(refused))
	}
	assertMetrics(t, ta, "miaobu_tls_certificate_failures_total 0")
	if n := len(slices.DeleteFunc(strings.Split(logs.String(), "\n"), func(line string) bool { return !strings.Contains(line, "TLS handshake") })); n > 1 {
		t.Errorf("%d log lines about refused handshakes, want one at most:\n%s", n, logs.String())
	}

	for host, want := range map[string]string{"evil.example.com": "404", "[::1]": "404", "": "404", previewHost: "301"} {
		status, location := plainHTTP(t, httpAddr, "GET /x HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(status, want) {
			t.Errorf("plain HTTP for Host %q: %s to %q, want %s", host, status, location, want)
		}
	}
	if status, location := plainHTTP(t, httpAddr, "GET / HTTP/1.0\r\n\r\n"); !strings.HasPrefix(status, "404") {
		t.Errorf("plain HTTP without a Host: %s to %q, want 404", status, location)
	}

	ta.Call(t, "POST", api.DomainsPath(p.Slug), api.DomainCreate{Domain: "www.example.test"}, http.StatusCreated, nil)
	if body, err := httpsGet(httpsAddr, "www.example.test", "/", ca.roots); err != nil || body != "home" {
		t.Fatalf("the custom domain over HTTPS: %q, %v", body, err)
	}
	ta.Call(t, "DELETE", api.DomainsPath(p.Slug)+"/WWW.example.test", nil, http.StatusOK, nil)
	if err := handshake(httpsAddr, "www.example.test"); err == nil {
		t.Error("a removed domain still gets its certificate")
	}
	if files, _ := filepath.Glob(filepath.Join(ta.Config.DataDir, "certs", "certificates", "*", "www.example.test")); len(files) != 0 {
		t.Errorf("a removed domain's certificate is still on disk: %v", files)
	}
	var status api.Status
	ta.Call(t, "GET", api.PathStatus, nil, http.StatusOK, &status)
	var names []string
	for _, c := range status.Certificates {
		names = append(names, c.Name)
	}
	if want := []string{"blog--" + preview.Alias + ".sites.test"}; strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("status lists certificates %v, want %v", names, want)
	}
	ta.Call(t, "POST", api.DomainsPath(p.Slug), api.DomainCreate{Domain: "old.example.test"}, http.StatusCreated, nil)
	if body, err := httpsGet(httpsAddr, "old.example.test", "/", ca.roots); err != nil || body != "home" {
		t.Fatalf("another custom domain over HTTPS: %q, %v", body, err)
	}
	ta.Call(t, "DELETE", api.PathProjects+"/"+p.Slug, nil, http.StatusOK, nil)
	if err := handshake(httpsAddr, "old.example.test"); err == nil {
		t.Error("the domain of a deleted project still gets its certificate")
	}
}

// TestTLSCertificateStorage: a certs directory the agent cannot write stops it at start; one that
// fails later is counted, shown in status, and its name is not tried again at once.
func TestTLSCertificateStorage(t *testing.T) {
	httpsAddr, httpAddr := freeAddr(t), freeAddr(t)
	ca := startPebble(t, false, httpsAddr, httpAddr)

	cfg := tlsConfig(t, ca, httpsAddr, httpAddr)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	certsDir := filepath.Join(cfg.DataDir, "certs")
	if err := os.WriteFile(certsDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ta := startWithHosts(t, cfg)
	select {
	case <-ta.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the agent started with certs unusable")
	}
	if err := ta.Stop(); err == nil || !strings.Contains(err.Error(), "cannot keep certificates in "+certsDir) {
		t.Fatalf("the agent stopped with %v, want it to name %s", err, certsDir)
	}

	ta, _ = startTLSAgent(t, ca, httpsAddr, httpAddr)
	// Locks are taken under certs/locks: a file in its place makes every issuance fail in storage.
	locks := filepath.Join(ta.Config.DataDir, "certs", "locks")
	if err := os.WriteFile(locks, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := handshake(httpsAddr, "blog.sites.test"); err == nil {
		t.Fatal("a certificate without storage")
	}
	assertMetrics(t, ta, "miaobu_tls_certificate_failures_total 1")
	var status api.Status
	ta.Call(t, "GET", api.PathStatus, nil, http.StatusOK, &status)
	if len(status.Certificates) != 1 || status.Certificates[0].Name != "blog.sites.test" || status.Certificates[0].LastError == nil ||
		!strings.Contains(*status.Certificates[0].LastError, "lock") {
		t.Fatalf("status shows certificates %+v, want blog.sites.test's storage failure", status.Certificates)
	}
	if err := os.Remove(locks); err != nil {
		t.Fatal(err)
	}
	if err := handshake(httpsAddr, "blog.sites.test"); err == nil || ca.orders.Load() != 0 {
		t.Fatalf("a name that just failed was tried again at once: %v, %d orders", err, ca.orders.Load())
	}
	assertMetrics(t, ta, "miaobu_tls_certificate_failures_total 1")
}

// TestStartWarnsOfRiskyTLSAndTakenDomains: the agent names each risky TLS setting and each custom
// domain that the configuration has made its own name.
func TestStartWarnsOfRiskyTLSAndTakenDomains(t *testing.T) {
	cfg := agenttest.Config(t)
	st, err := store.Open(cfg.DataDir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateProject(&store.Project{Name: "blog", Slug: "blog", RepoURL: "/r", Target: "local"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddDomain(1, "www.example.org"); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.Sites.Domain = "example.org"
	cfg.TLS.Enabled, cfg.TLS.Listen, cfg.TLS.HTTPListen = true, freeAddr(t), freeAddr(t)
	var logs logtest.Buffer
	startWithHostsLogging(t, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "agent started") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, want := range []string{"custom domain www.example.org of project blog is now under sites.domain (example.org)",
		"names an IP address, which gets no certificate on demand", "is http:// while tls.enabled"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the start log lacks %q:\n%s", want, logs.String())
		}
	}
}
