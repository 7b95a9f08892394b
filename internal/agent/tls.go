package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/miaobu/miaobu/internal/api"
)

// certificates is the agent's own HTTPS: certificates from an ACME CA, each obtained at the first
// handshake for a name the agent serves (domain.Service.Serves) and kept under <data_dir>/certs.
type certificates struct {
	magic  *certmagic.Config
	issuer *certmagic.ACMEIssuer
	cache  *certmagic.Cache
	// failures holds the error of each name whose last attempt failed, until one succeeds.
	failures sync.Map
}

// newCertificates sets up on-demand issuance for tls.* of the agent's configuration.
func (a *Agent) newCertificates() (*certificates, error) {
	t := a.cfg.TLS
	var roots *x509.CertPool // nil: the system's roots
	if t.CARoot != "" {
		pem, err := os.ReadFile(t.CARoot)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_root: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_root %s holds no PEM certificate", t.CARoot)
		}
	}
	host, tlsPort, err := splitPort(t.Listen)
	if err != nil {
		return nil, fmt.Errorf("tls.listen: %w", err)
	}
	_, httpPort, err := splitPort(t.HTTPListen)
	if err != nil {
		return nil, fmt.Errorf("tls.http_listen: %w", err)
	}
	// certmagic's own log is silenced: what matters of it (failures) is logged from OnEvent.
	logger := zap.NewNop()
	c := &certificates{}
	c.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return c.magic, nil },
		Logger:           logger,
	})
	c.magic = certmagic.New(c.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: filepath.Join(a.cfg.DataDir, "certs")},
		Logger:  logger,
		OnDemand: &certmagic.OnDemandConfig{DecisionFunc: func(_ context.Context, name string) error {
			// Without SNI the name is the local address, which is never one the agent serves.
			if ok, err := a.domain.Serves(name); err != nil || !ok || net.ParseIP(name) != nil {
				return errors.Join(errors.New("not a name this agent serves"), err)
			}
			return nil
		}},
		OnEvent: func(_ context.Context, event string, data map[string]any) error {
			name, _ := data["identifier"].(string)
			switch event {
			case "cert_failed":
				a.metrics.certFailures.Inc()
				a.log.Warn("obtaining a certificate failed", "domain", name, "err", data["error"])
				c.failures.Store(name, fmt.Sprint(data["error"]))
			case "cert_obtained":
				c.failures.Delete(name)
			}
			return nil
		},
	})
	// The CA reaches the challenges on the agent's own listeners, so certmagic starts no solver.
	c.issuer = certmagic.NewACMEIssuer(c.magic, certmagic.ACMEIssuer{CA: t.CA, Email: t.Email, Agreed: true,
		TrustedRoots: roots, ListenHost: host, AltHTTPPort: httpPort, AltTLSALPNPort: tlsPort, Logger: logger})
	c.magic.Issuers = []certmagic.Issuer{c.issuer}
	return c, nil
}

// splitPort splits host:port, the port being a number.
func splitPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(port)
	return host, n, err
}

// servers returns the HTTPS server of site on httpsLn and the plain HTTP server on httpLn that
// answers ACME challenges and redirects every other request to HTTPS.
func (c *certificates) servers(a *Agent, site http.Handler, httpsLn, httpLn net.Listener) []server {
	tlsCfg := c.magic.TLSConfig()
	tlsCfg.NextProtos = append([]string{"h2", "http/1.1"}, tlsCfg.NextProtos...)
	secure := a.httpServer(site)
	// The first handshake of a name waits for its certificate, within the header deadline.
	secure.ReadHeaderTimeout = time.Minute
	_, tlsPort, _ := splitPort(httpsLn.Addr().String())
	toHTTPS := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if tlsPort != 443 {
			host = net.JoinHostPort(host, strconv.Itoa(tlsPort))
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusMovedPermanently)
	})
	return []server{{secure, tls.NewListener(httpsLn, tlsCfg)}, {a.httpServer(c.issuer.HTTPChallengeHandler(toHTTPS)), httpLn}}
}

// list returns every certificate kept under <data_dir>/certs, with its expiry, and every name whose
// last attempt failed, sorted by name.
func (c *certificates) list(dataDir string) []api.Certificate {
	byName := map[string]*api.Certificate{}
	files, _ := filepath.Glob(filepath.Join(dataDir, "certs", "certificates", "*", "*", "*.crt"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		block, _ := pem.Decode(data)
		if block == nil {
			continue
		}
		leaf, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			continue
		}
		name := strings.TrimSuffix(filepath.Base(file), ".crt")
		// One name may hold certificates of several CAs (a changed tls.ca): show the latest.
		if seen := byName[name]; seen == nil || seen.ExpiresAt.Before(leaf.NotAfter) {
			expires := leaf.NotAfter.UTC()
			byName[name] = &api.Certificate{Name: name, ExpiresAt: &expires}
		}
	}
	c.failures.Range(func(k, v any) bool {
		name, reason := k.(string), v.(string)
		if byName[name] == nil {
			byName[name] = &api.Certificate{Name: name}
		}
		byName[name].LastError = &reason
		return true
	})
	out := make([]api.Certificate, 0, len(byName))
	for _, cert := range byName {
		out = append(out, *cert)
	}
	slices.SortFunc(out, func(a, b api.Certificate) int { return strings.Compare(a.Name, b.Name) })
	return out
}
