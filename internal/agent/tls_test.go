package agent_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/gittest"
)

// pebble is an ACME CA in the test process.
type pebble struct {
	// directory is its ACME directory URL; caRoot a PEM file trusted for it (tls.ca_root).
	directory, caRoot string
	// roots holds the root that its certificates chain to.
	roots *x509.CertPool
	// orders counts the new orders it received.
	orders atomic.Int64
}

// startPebble runs Pebble until the test ends. With validate it checks challenges for real: HTTP-01
// on the agent's tls.http_listen, TLS-ALPN-01 on its tls.listen, every name resolving to 127.0.0.1;
// without, it takes every challenge as met.
func startPebble(t *testing.T, validate bool, httpsAddr, httpAddr string) *pebble {
	t.Helper()
	dnsAddr := ""
	if validate {
		dnsAddr = loopbackDNS(t)
	} else {
		t.Setenv("PEBBLE_VA_ALWAYS_VALID", "1")
	}
	httpsPort, httpPort := portNumber(t, httpsAddr), portNumber(t, httpAddr)
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	quiet := log.New(io.Discard, "", 0)
	certs := db.NewMemoryStore()
	authority := ca.New(quiet, certs, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {}})
	frontEnd := wfe.New(quiet, certs, va.New(quiet, httpPort, httpsPort, false, dnsAddr, certs), authority, []string{"pebble.letsencrypt.org"},
		false, false, 0, 0)
	front := frontEnd.Handler()
	p := &pebble{roots: x509.NewCertPool()}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/order-plz" {
			p.orders.Add(1)
		}
		front.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.directory = srv.URL + "/dir"
	p.caRoot = filepath.Join(t.TempDir(), "pebble-endpoint.pem")
	if err := os.WriteFile(p.caRoot, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	p.roots.AppendCertsFromPEM(authority.GetRootCert(0).PEM())
	return p
}

// portNumber is the port of addr, a host:port.
func portNumber(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// loopbackDNS runs a DNS server over TCP, as Pebble asks, that answers every A query with
// 127.0.0.1, and returns its address.
func loopbackDNS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if q.Question[0].Qtype == dns.TypeA {
			m.Answer = []dns.RR{&dns.A{A: net.IPv4(127, 0, 0, 1), Hdr: dns.RR_Header{Name: q.Question[0].Name,
				Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}}}
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// waitListening polls until addr accepts connections.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never came up: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// httpsGet fetches path of host from the agent's HTTPS listener at addr, trusting only roots.
func httpsGet(addr, host, path string, roots *x509.CertPool) (string, error) {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: host, RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}}
	resp, err := client.Get("https://" + host + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// tlsConfig is the configuration of a test agent with tls.enabled against ca on httpsAddr and
// httpAddr, its sites under sites.test.
func tlsConfig(t *testing.T, ca *pebble, httpsAddr, httpAddr string) *config.Config {
	t.Helper()
	cfg := agenttest.Config(t)
	cfg.Sites.Domain = "sites.test"
	cfg.TLS = config.TLS{Enabled: true, CA: ca.directory, CARoot: ca.caRoot, Email: "ops@example.com",
		Listen: httpsAddr, HTTPListen: httpAddr}
	return cfg
}

// startTLSAgent runs an agent with tlsConfig, with the project blog live, and waits for its HTTPS
// listener.
func startTLSAgent(t *testing.T, ca *pebble, httpsAddr, httpAddr string) (*agenttest.Agent, api.Project) {
	t.Helper()
	ta, p, _ := startTLSAgentLogging(t, ca, httpsAddr, httpAddr, nil)
	return ta, p
}

// startTLSAgentLogging is startTLSAgent logging to log (nil discards it); blog's repository is
// returned too.
func startTLSAgentLogging(t *testing.T, ca *pebble, httpsAddr, httpAddr string, log *slog.Logger) (*agenttest.Agent, api.Project, *gittest.Repo) {
	t.Helper()
	ta := startWithHostsLogging(t, tlsConfig(t, ca, httpsAddr, httpAddr), log)
	repo := gittest.New(t)
	p := ta.AddProject(t, localProject("blog", repo.Dir))
	ta.Deployed(t, ta.Push(t, p, repo.Commit("site", map[string]string{"index.html": "home"})))
	waitListening(t, httpsAddr)
	return ta, p, repo
}

func TestOnDemandTLS(t *testing.T) {
	httpsAddr, httpAddr := freeAddr(t), freeAddr(t)
	ca := startPebble(t, false, httpsAddr, httpAddr)
	ta, p := startTLSAgent(t, ca, httpsAddr, httpAddr)
	get := func(host, path string) (string, error) { return httpsGet(httpsAddr, host, path, ca.roots) }

	if body, err := get("blog.sites.test", "/"); err != nil || body != "home" {
		t.Fatalf("the site over HTTPS: %q, %v", body, err)
	}
	if n := ca.orders.Load(); n != 1 {
		t.Fatalf("%d orders for one name", n)
	}
	for _, host := range []string{"evil.example.com", "shop.sites.test", "127.0.0.1"} {
		if _, err := get(host, "/"); err == nil {
			t.Errorf("%s got a certificate", host)
		}
	}
	if n := ca.orders.Load(); n != 1 {
		t.Fatalf("names the agent does not serve made %d orders", n-1)
	}

	ta.Call(t, "POST", api.DomainsPath(p.Slug), api.DomainCreate{Domain: "www.example.test"}, http.StatusCreated, nil)
	if body, err := get("www.example.test", "/"); err != nil || body != "home" {
		t.Fatalf("the custom domain over HTTPS: %q, %v", body, err)
	}

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", "http://"+httpAddr+"/docs/?x=1", nil)
	req.Host = "blog.sites.test"
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, port, _ := net.SplitHostPort(httpsAddr)
	if want := "https://blog.sites.test:" + port + "/docs/?x=1"; resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
		t.Fatalf("plain HTTP: %d to %q, want 301 to %s", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	var status api.Status
	ta.Call(t, "GET", api.PathStatus, nil, http.StatusOK, &status)
	if len(status.Certificates) != 2 {
		t.Fatalf("status shows certificates %+v, want blog.sites.test and www.example.test", status.Certificates)
	}
	for i, name := range []string{"blog.sites.test", "www.example.test"} {
		c := status.Certificates[i]
		if c.Name != name || c.ExpiresAt == nil || !c.ExpiresAt.After(time.Now()) || c.LastError != nil {
			t.Errorf("status shows certificate %+v, want %s, valid, no error", c, name)
		}
	}
	if info, err := os.Stat(filepath.Join(ta.Config.DataDir, "certs")); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("certs directory: %v, %v", info, err)
	}
}

func TestOnDemandTLSValidatesChallenges(t *testing.T) {
	httpsAddr, httpAddr := freeAddr(t), freeAddr(t)
	ca := startPebble(t, true, httpsAddr, httpAddr)
	startTLSAgent(t, ca, httpsAddr, httpAddr)
	if body, err := httpsGet(httpsAddr, "blog.sites.test", "/", ca.roots); err != nil || body != "home" {
		t.Fatalf("the site over HTTPS after a validated challenge: %q, %v", body, err)
	}
}
