package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/net/idna"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/serving"
)

// certificates is the agent's own HTTPS: certificates from an ACME CA, each obtained at the first
// handshake for a name the agent serves (serving.Sites.Serves) and kept under <data_dir>/certs.
type certificates struct {
	magic  *certmagic.Config
	issuer *certmagic.ACMEIssuer
	cache  *certmagic.Cache
	// serves is the rule of which names get a certificate.
	serves func(name string) (bool, error)
	// failures remembers the names whose certificate could not be had lately.
	failures *certFailures
	// failed counts each failure, and log reports it.
	failed prometheus.Counter
	log    *slog.Logger
}

// errNotServed refuses a certificate to a name the agent does not serve.
var errNotServed = errors.New("not a name this agent serves")

// errBackingOff refuses, for a while, a certificate whose last attempt failed.
var errBackingOff = errors.New("obtaining its certificate failed lately")

// newCertificates sets up on-demand issuance for tls.* of the agent's configuration, after checking
// that the agent can write its certificates.
func (a *Agent) newCertificates() (*certificates, error) {
	t := a.cfg.TLS
	dir := filepath.Join(a.cfg.DataDir, "certs")
	if err := checkWritable(dir); err != nil {
		return nil, fmt.Errorf("tls.enabled, but the agent (uid %d) cannot keep certificates in %s: %w; give that directory to the agent's user or remove it",
			os.Getuid(), dir, err)
	}
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
	c := &certificates{serves: a.sites.Serves, failures: newCertFailures(time.Now), failed: a.metrics.certFailures, log: a.log}
	c.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return c.magic, nil },
		Logger:           logger,
	})
	c.magic = certmagic.New(c.cache, certmagic.Config{
		Storage:  &certmagic.FileStorage{Path: dir},
		Logger:   logger,
		OnDemand: &certmagic.OnDemandConfig{DecisionFunc: func(_ context.Context, name string) error { return c.allowed(name) }},
		OnEvent: func(_ context.Context, event string, data map[string]any) error {
			name, _ := data["identifier"].(string)
			switch event {
			case "cert_obtaining":
				// certmagic tries a failed name again by itself within a handshake: not before its time.
				if retry, waiting := c.failures.retryAt(name); waiting {
					return fmt.Errorf("%w; next try at %s", errBackingOff, retry.Format(time.RFC3339))
				}
			case "cert_failed":
				c.fail(name, fmt.Sprint(data["error"]))
			case "cert_obtained":
				c.failures.forget(name)
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

// checkWritable creates dir if needed, and writes, reads back and removes a file in it.
func checkWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString("miaobu")
	if err := errors.Join(err, f.Close()); err != nil {
		return err
	}
	_, err = os.ReadFile(f.Name())
	return err
}

// allowed is the decision whether a handshake for name may get a certificate: only for a name the
// agent serves, and not while the last failure to get one is recent.
func (c *certificates) allowed(name string) error {
	// Without SNI the name is the local address, which is never a host name the agent serves.
	if ok, err := c.serves(name); err != nil || !ok {
		return errors.Join(errNotServed, err)
	}
	if retry, waiting := c.failures.retryAt(name); waiting {
		return fmt.Errorf("%w; next try at %s", errBackingOff, retry.Format(time.RFC3339))
	}
	return nil
}

// fail records that name's certificate could not be had, for reason.
func (c *certificates) fail(name, reason string) {
	c.failed.Inc()
	retry := c.failures.record(name, reason)
	c.log.Warn("obtaining a certificate failed", "domain", name, "err", reason, "next_try", retry.Format(time.RFC3339))
}

// getCertificate is certmagic's GetCertificate that also records the failures certmagic reports no
// event for, such as a storage it cannot write.
func (c *certificates) getCertificate(get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		start := time.Now()
		cert, err := get(hello)
		if err == nil || errors.Is(err, errNotServed) || errors.Is(err, errBackingOff) || slices.Contains(hello.SupportedProtos, acmez.ACMETLS1Protocol) {
			return cert, err
		}
		// The name as certmagic decides on it; only a served one is remembered, so that names of
		// anyone's choosing never fill the memory of failures.
		name, nameErr := idna.Lookup.ToASCII(hello.ServerName)
		if nameErr != nil || c.failures.recordedSince(name, start) {
			return cert, err
		}
		if ok, lookupErr := c.serves(name); lookupErr == nil && ok {
			c.fail(name, err.Error())
		}
		return cert, err
	}
}

// forget drops name's certificate from memory and from storage, and its failures: it is no longer
// served.
func (c *certificates) forget(ctx context.Context, name string) error {
	c.cache.RemoveManaged([]certmagic.SubjectIssuer{{Subject: name}})
	c.failures.forget(name)
	// One name may hold certificates of several CAs (a changed tls.ca).
	issuers, err := c.magic.Storage.List(ctx, certmagic.StorageKeys.CertsPrefix(""), false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	for _, issuer := range issuers {
		err = errors.Join(err, c.magic.Storage.Delete(ctx, path.Join(issuer, certmagic.StorageKeys.Safe(name))))
	}
	return err
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
// answers ACME challenges and redirects every other request for a served name to HTTPS.
func (c *certificates) servers(a *Agent, site http.Handler, httpsLn, httpLn net.Listener) []server {
	tlsCfg := c.magic.TLSConfig()
	tlsCfg.NextProtos = append([]string{"h2", "http/1.1"}, tlsCfg.NextProtos...)
	tlsCfg.GetCertificate = c.getCertificate(tlsCfg.GetCertificate)
	secure := a.httpServer(site)
	// The first handshake of a name waits for its certificate, within the header deadline.
	secure.ReadHeaderTimeout = time.Minute
	secure.ErrorLog = log.New(&handshakeLog{log: a.log, count: a.metrics.handshakeErrors, interval: handshakeLogInterval}, "", 0)
	_, tlsPort, _ := splitPort(httpsLn.Addr().String())
	toHTTPS := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := serving.HostName(r.Host)
		if ok, err := c.serves(host); err != nil || !ok {
			if err != nil {
				a.log.Error("looking up a host to redirect", "host", host, "err", err)
			}
			http.NotFound(w, r)
			return
		}
		if tlsPort != 443 {
			host = net.JoinHostPort(host, strconv.Itoa(tlsPort))
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusMovedPermanently)
	})
	return []server{{secure, tls.NewListener(httpsLn, tlsCfg)}, {a.httpServer(c.issuer.HTTPChallengeHandler(toHTTPS)), httpLn}}
}

// handshakeLogInterval is how often at most the HTTPS server logs failed handshakes, which anyone
// can cause at will with any server name.
const handshakeLogInterval = time.Minute

// handshakeLog is the error log of the HTTPS server: it counts failed TLS handshakes and logs them
// in one line per interval at most, with their number and the last one; other lines are warnings.
type handshakeLog struct {
	log      *slog.Logger
	count    prometheus.Counter
	interval time.Duration
	mu       sync.Mutex
	// logged is when the last line was logged, and unlogged how many failures came since.
	logged   time.Time
	unlogged int
}

func (h *handshakeLog) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	if !strings.HasPrefix(line, "http: TLS handshake error") {
		h.log.Warn(line)
		return len(p), nil
	}
	h.count.Inc()
	h.mu.Lock()
	h.unlogged++
	now := time.Now()
	if now.Sub(h.logged) < h.interval {
		h.mu.Unlock()
		return len(p), nil
	}
	n := h.unlogged
	h.logged, h.unlogged = now, 0
	h.mu.Unlock()
	h.log.Warn("TLS handshakes failed (all are counted in miaobu_tls_handshake_errors_total)", "count", n, "last", line)
	return len(p), nil
}

// list returns the certificates kept under <data_dir>/certs, with their expiry, and the names whose
// last attempt failed, sorted by name: only of names the agent serves now.
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
	for name, reason := range c.failures.reasons() {
		if byName[name] == nil {
			byName[name] = &api.Certificate{Name: name}
		}
		byName[name].LastError = &reason
	}
	out := make([]api.Certificate, 0, len(byName))
	for name, cert := range byName {
		if ok, err := c.serves(name); err == nil && ok {
			out = append(out, *cert)
		}
	}
	slices.SortFunc(out, func(a, b api.Certificate) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Bounds of the wait after a failure to get a name's certificate: a minute after the first, twice
// the last wait after each next one, an hour at most.
const (
	firstCertRetry = time.Minute
	lastCertRetry  = time.Hour
)

// maxCertFailures bounds the names whose failures are remembered: past it, the oldest is forgotten.
const maxCertFailures = 1000

// certFailure is what is remembered of a name whose certificate could not be had.
type certFailure struct {
	reason string
	// count is the number of failures in a row, at the time of the last, and retry when the name
	// may be tried again.
	count     int
	at, retry time.Time
}

// certFailures remembers, per name, the failures to get its certificate until one is had.
type certFailures struct {
	now    func() time.Time
	mu     sync.Mutex
	byName map[string]*certFailure
}

// newCertFailures returns an empty memory of failures on the clock now.
func newCertFailures(now func() time.Time) *certFailures {
	return &certFailures{now: now, byName: map[string]*certFailure{}}
}

// record remembers a failure of name for reason and returns when the name may be tried again.
func (m *certFailures) record(name, reason string) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	f := m.byName[name]
	if f == nil {
		if len(m.byName) >= maxCertFailures {
			oldest := ""
			for n, seen := range m.byName {
				if oldest == "" || seen.at.Before(m.byName[oldest].at) {
					oldest = n
				}
			}
			delete(m.byName, oldest)
		}
		f = &certFailure{}
		m.byName[name] = f
	}
	wait := lastCertRetry
	if f.count < 6 { // 2⁶ minutes is past the hour
		wait = min(firstCertRetry<<f.count, lastCertRetry)
	}
	f.count++
	f.reason, f.at, f.retry = reason, now, now.Add(wait)
	return f.retry
}

// retryAt returns when name may be tried again, and whether that is still to come.
func (m *certFailures) retryAt(name string) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.byName[name]
	if f == nil {
		return time.Time{}, false
	}
	return f.retry, m.now().Before(f.retry)
}

// recordedSince reports whether a failure of name was recorded at t or later.
func (m *certFailures) recordedSince(name string, t time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.byName[name]
	return f != nil && !f.at.Before(t)
}

// forget drops what is remembered of name.
func (m *certFailures) forget(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.byName, name)
}

// reasons returns the reason of each remembered name's last failure.
func (m *certFailures) reasons() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]string, len(m.byName))
	for name, f := range m.byName {
		out[name] = f.reason
	}
	return out
}
