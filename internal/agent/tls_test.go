package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/gittest"
)

// pebble is an ACME CA in the test process that validates every challenge without asking.
type pebble struct {
	// directory is its ACME directory URL; caRoot a PEM file trusted for it (tls.ca_root).
	directory, caRoot string
	// roots holds the root that its certificates chain to.
	roots *x509.CertPool
	// orders counts the new orders it received.
	orders atomic.Int64
}

// startPebble runs Pebble until the test ends.
func startPebble(t *testing.T) *pebble {
	t.Helper()
	t.Setenv("PEBBLE_VA_ALWAYS_VALID", "1")
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	quiet := log.New(io.Discard, "", 0)
	certs := db.NewMemoryStore()
	authority := ca.New(quiet, certs, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {}})
	frontEnd := wfe.New(quiet, certs, va.New(quiet, 0, 0, false, "", certs), authority, []string{"pebble.letsencrypt.org"},
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

func TestOnDemandTLS(t *testing.T) {
	ca := startPebble(t)
	httpsAddr, httpAddr := freeAddr(t), freeAddr(t)
	ta := startAgent(t, func(cfg *config.Config) {
		cfg.Sites.Domain = "sites.test"
		cfg.TLS = config.TLS{Enabled: true, CA: ca.directory, CARoot: ca.caRoot, Email: "ops@example.com",
			Listen: httpsAddr, HTTPListen: httpAddr}
	})
	repo := gittest.New(t)
	p := ta.addProject("blog", repo.Dir)
	ta.deployed(ta.push(p, repo.Commit("site", map[string]string{"index.html": "home"})))

	// get fetches path of host over HTTPS, trusting only Pebble's root.
	get := func(host, path string) (string, error) {
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{ServerName: host, RootCAs: ca.roots},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, httpsAddr)
			}}}
		resp, err := client.Get("https://" + host + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("tcp", httpsAddr)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the HTTPS listener never came up: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}

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

	ta.call("POST", api.DomainsPath(p.Slug), api.DomainCreate{Domain: "www.example.test"}, http.StatusCreated, nil)
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
	ta.call("GET", api.PathStatus, nil, http.StatusOK, &status)
	if len(status.Certificates) != 2 {
		t.Fatalf("status shows certificates %+v, want blog.sites.test and www.example.test", status.Certificates)
	}
	for i, name := range []string{"blog.sites.test", "www.example.test"} {
		c := status.Certificates[i]
		if c.Name != name || c.ExpiresAt == nil || !c.ExpiresAt.After(time.Now()) || c.LastError != nil {
			t.Errorf("status shows certificate %+v, want %s, valid, no error", c, name)
		}
	}
	if info, err := os.Stat(filepath.Join(ta.cfg.DataDir, "certs")); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("certs directory: %v, %v", info, err)
	}
}
