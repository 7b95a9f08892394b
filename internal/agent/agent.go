// Package agent is the miaobu daemon: the HTTP server and its routes, the lifecycle, and the build
// workers; it wires the store, GitHub, the pipeline and the publish targets together.
package agent

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/buildcache"
	"github.com/miaobu/miaobu/internal/clock"
	"github.com/miaobu/miaobu/internal/cluster"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/dashboard"
	"github.com/miaobu/miaobu/internal/domain"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/notify"
	"github.com/miaobu/miaobu/internal/outbox"
	"github.com/miaobu/miaobu/internal/pipeline"
	"github.com/miaobu/miaobu/internal/poll"
	"github.com/miaobu/miaobu/internal/publish"
	"github.com/miaobu/miaobu/internal/report"
	"github.com/miaobu/miaobu/internal/serving"
	"github.com/miaobu/miaobu/internal/store"
)

// purgeInterval is how often the files of previews removed longer than retention.previews ago are
// looked for, and the local files of deleted projects and deployments (on a cluster, those other
// nodes deleted) removed.
const purgeInterval = time.Hour

// Agent is the running daemon.
type Agent struct {
	cfg        *config.Config
	store      Store
	log        *slog.Logger
	adminToken string
	metrics    *metrics
	started    time.Time
	domain     *domain.Service
	// sites serves the local target's sites by Host and says which names the agent serves.
	sites   *serving.Sites
	builder *pipeline.Builder
	builds  *builds
	// caches holds each project's build cache.
	caches *buildcache.Caches
	// stopping is closed when the agent starts shutting down, to end log streams.
	stopping chan struct{}
	// trustedProxies are the peers whose X-Forwarded-For names the client.
	trustedProxies []netip.Prefix
	// webhookBodies bounds the webhook bodies held in memory at once (webhook.max_inflight_bytes).
	webhookBodies *byteBudget
	// outbox sends what must leave the agent durably, through the senders registered on it.
	outbox *outbox.Worker
	// reporter reports deployments to GitHub through the outbox.
	reporter *report.Reporter
	// notifier tells notification targets of deployment events through the outbox.
	notifier *notify.Notifier
	// github reads the heads of GitHub repositories for the poller.
	github *github.Client
	// clock drives the poller; tests replace it before Serve.
	clock clock.Clock
	// poller finds new commits without webhooks; nil until Serve starts it.
	poller *poll.Poller
	// certs is the agent's own HTTPS while Serve runs with tls.enabled, else nil.
	certs atomic.Pointer[certificates]
	// version is what the agent reports as its version: the binary's, given by the command line.
	version string
	// cluster is the cluster's store when the agent is one node of a cluster, else nil.
	cluster *cluster.Store
	// dashboard is the web dashboard on the API host.
	dashboard *dashboard.Dashboard
}

// New builds an agent of the given version on an open store; the admin token file is created on
// first start.
func New(cfg *config.Config, st *store.Store, log *slog.Logger, version string) (*Agent, error) {
	return newAgent(cfg, st, log, version, net.DefaultResolver)
}

// newAgent is New on any Store, with the resolver that looks up where custom domains point.
func newAgent(cfg *config.Config, st Store, log *slog.Logger, version string, resolver domain.Resolver) (*Agent, error) {
	token, err := loadOrCreateAdminToken(cfg.AdminTokenFile())
	if err != nil {
		return nil, err
	}
	warnLoosePermissions(log, cfg)
	for _, risk := range cfg.Exposures() {
		log.Warn(risk)
	}
	gh, err := github.New(github.Options{APIURL: cfg.GitHub.APIURL, Token: cfg.GitHub.Token, WriteInterval: cfg.GitHub.WriteInterval})
	if err != nil {
		return nil, fmt.Errorf("github.api_url: %w", err)
	}
	trustedProxies, err := cfg.TrustedProxyPrefixes()
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, store: st, log: log, adminToken: token, version: version, started: time.Now(), stopping: make(chan struct{}),
		builds:         &builds{wake: make(chan struct{}, 1), projects: map[int64]bool{}, cancel: map[int64]context.CancelCauseFunc{}},
		trustedProxies: trustedProxies, webhookBodies: newByteBudget(cfg.Webhook.InflightBytes()),
		outbox: outbox.New(st, outbox.Options{Logger: log, KindConcurrency: map[string]int{notify.Kind: notify.Concurrency}}), caches: buildcache.New(filepath.Join(cfg.DataDir, "cache")),
		github: gh, clock: clock.System{}}
	a.reporter = a.newReporter(gh)
	a.notifier = a.newNotifier()
	a.domain = domain.New(domain.Options{Config: cfg, Store: st, GitHub: gh, Builds: a.builds, Reports: a.reporter,
		Targets: publish.NewTargets(cfg), Notifier: a.notifier, Caches: a.caches, Resolver: resolver, SiteFiles: a.siteDir, SharedLog: a.sharedLog, Log: log})
	a.sites = &serving.Sites{Store: st, Dir: a.siteDir, Domain: cfg.Sites.Domain, PublicURL: cfg.PublicURL,
		Unavailable: cluster.ErrUnavailable, Log: log}
	if a.dashboard, err = dashboard.New(dashboard.Options{Domain: a.domain, Views: dashboardViews{a}, Sessions: st,
		PublicURL: cfg.PublicURL, AdminToken: token, ClientAddr: func(r *http.Request) string { return clientAddr(r, trustedProxies) },
		Stopping: a.stopping, Log: log}); err != nil {
		return nil, err
	}
	a.metrics = newMetrics(func() float64 {
		n, _ := st.QueueDepth()
		return float64(n)
	}, func() float64 { return float64(a.builds.running()) }, a.rateRemaining)
	// Counted where every end is recorded, so that superseded and queued deployments count too.
	st.OnFinish(func(status store.Status) { a.metrics.deployments.WithLabelValues(string(status)).Inc() })
	return a, nil
}

// loadOrCreateAdminToken reads the admin token file, writing a random token with mode 0600 when it
// is missing or empty (a first start that stopped before writing it).
func loadOrCreateAdminToken(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		if token := strings.TrimSpace(string(b)); token != "" {
			return token, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading admin token: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	if err := config.WriteFileAtomic(path, strings.NewReader(token+"\n")); err != nil {
		return "", fmt.Errorf("writing admin token: %w", err)
	}
	return token, nil
}

// Handler returns the agent's HTTP handler: sites by Host, then the public and admin routes.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathHealth, func(w http.ResponseWriter, r *http.Request) {
		if problem := a.clusterProblem(); problem != "" {
			_ = writeJSON(w, http.StatusServiceUnavailable, api.Health{Status: "unavailable", Detail: problem})
			return
		}
		_ = writeJSON(w, http.StatusOK, api.Health{Status: "ok"})
	})
	mux.HandleFunc("POST "+api.PathWebhookPrefix+"{project_id}", a.handleWebhook)
	mux.HandleFunc(api.PathWebhookPrefix+"{project_id}", webhookMethodNotAllowed)
	mux.HandleFunc("GET "+api.PathTLSAsk, a.handle(a.tlsAsk))

	admin := http.NewServeMux()
	admin.HandleFunc("GET "+api.PathProjects, a.handle(a.listProjects))
	admin.HandleFunc("POST "+api.PathProjects, a.handle(a.createProject))
	admin.HandleFunc("GET "+api.PathProjects+"/{id}", a.handle(a.getProject))
	admin.HandleFunc("PATCH "+api.PathProjects+"/{id}", a.handle(a.updateProject))
	admin.HandleFunc("DELETE "+api.PathProjects+"/{id}", a.handle(a.deleteProject))
	admin.HandleFunc("DELETE "+api.PathProjects+"/{id}/cache", a.handle(a.clearCache))
	admin.HandleFunc("POST "+api.PathProjects+"/{id}/deploy", a.handle(a.deploy))
	admin.HandleFunc("POST "+api.PathProjects+"/{id}/rollback", a.handle(a.rollback))
	admin.HandleFunc("GET "+api.PathProjects+"/{id}/env", a.handle(a.listEnv))
	admin.HandleFunc("PUT "+api.PathProjects+"/{id}/env", a.handle(a.setEnv))
	admin.HandleFunc("DELETE "+api.PathProjects+"/{id}/env/{name}", a.handle(a.unsetEnv))
	admin.HandleFunc("GET "+api.PathProjects+"/{id}/domains", a.handle(a.listDomains))
	admin.HandleFunc("POST "+api.PathProjects+"/{id}/domains", a.handle(a.addDomain))
	admin.HandleFunc("DELETE "+api.PathProjects+"/{id}/domains/{domain}", a.handle(a.removeDomain))
	admin.HandleFunc("GET "+api.PathProjects+"/{id}/previews", a.handle(a.listPreviews))
	admin.HandleFunc("POST "+api.PathProjects+"/{id}/previews/{alias}/approve", a.handle(a.approvePreview))
	admin.HandleFunc("DELETE "+api.PathProjects+"/{id}/previews/{alias}", a.handle(a.removePreview))
	admin.HandleFunc("GET "+api.PathStatus, a.handle(a.status))
	admin.Handle("GET "+api.PathMetrics, a.metrics.handler())
	admin.HandleFunc("GET "+api.PathDeployments, a.handle(a.listDeployments))
	admin.HandleFunc("GET "+api.PathDeployments+"/{id}", a.handle(a.getDeployment))
	admin.HandleFunc("GET "+api.PathDeployments+"/{id}/logs", a.handle(a.deploymentLogs))
	admin.HandleFunc("POST "+api.PathDeployments+"/{id}/cancel", a.handle(a.cancelDeployment))
	admin.HandleFunc("POST "+api.PathRepositories+"/{owner}/{repo}/import", a.handle(a.importRepository))
	admin.HandleFunc("POST "+api.PathProjectWebhooks+"/{id}/setup", a.handle(a.setupWebhook))
	admin.HandleFunc("DELETE "+api.PathProjectWebhooks+"/{id}/webhook", a.handle(a.deleteWebhook))
	admin.HandleFunc("POST "+api.PathProjectWebhooks+"/{id}/rotate", a.handle(a.rotateWebhook))
	admin.HandleFunc("GET "+api.PathDeliveries, a.handle(a.listDeliveries))
	// A backup streams the store: a failure once it has started can only cut the answer short.
	admin.HandleFunc("GET "+api.PathBackup, a.backup)
	admin.HandleFunc("GET "+api.PathNotifications, a.handle(a.listNotifications))
	admin.HandleFunc("POST "+api.PathNotifications, a.handle(a.createNotification))
	admin.HandleFunc("DELETE "+api.PathNotifications+"/{id}", a.handle(a.deleteNotification))
	admin.HandleFunc("POST "+api.PathNotifications+"/{id}/test", a.handle(a.testNotification))
	admin.HandleFunc("POST "+api.PathLoginCodes, a.handle(a.createLoginCode))
	mux.Handle("/api/", a.requireAdmin(admin))
	mux.Handle(api.PathMetrics, a.requireAdmin(admin))
	mux.Handle("/", a.dashboard.Handler())
	return a.sites.Handler(a.cors(mux))
}

// requireAdmin lets a request through only with the admin bearer token, compared in constant time;
// the scheme is case-insensitive, as HTTP authentication schemes are.
func (a *Agent) requireAdmin(next http.Handler) http.Handler {
	want := []byte(a.adminToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		token = strings.TrimLeft(token, " ")
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(token), want) != 1 {
			writeError(w, http.StatusUnauthorized, "Not authenticated")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// cors refuses cross-origin browser requests to the API unless their origin is configured.
func (a *Agent) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, api.PathWebhookPrefix) {
			next.ServeHTTP(w, r)
			return
		}
		if !slices.Contains(a.cfg.CORS.AllowedOrigins, origin) {
			writeError(w, http.StatusForbidden, "Cross-origin requests from "+origin+" are not allowed (cors.allowed_origins)")
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, PUT, DELETE")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Run serves an agent of the given version on cfg.Listen until ctx is done, then shuts down within
// cfg.ShutdownTimeout.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger, version string) error {
	if err := protectEnvironment(); err != nil {
		log.Warn("could not make the agent non-dumpable: builds without a sandbox may read its environment", "err", err)
	}
	if cfg.Cluster.Enabled() {
		return runClustered(ctx, cfg, log, version)
	}
	if err := refuseLostStore(cfg); err != nil {
		return err
	}
	st, err := store.Open(cfg.DataDir, time.Second)
	if err != nil {
		return err
	}
	defer st.Close()
	a, err := New(cfg, st, log, version)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	return a.Serve(ctx, ln)
}

// warnDomainConflicts logs each custom domain that the configuration has made one of the agent's own names.
func (a *Agent) warnDomainConflicts() error {
	conflicts, err := a.domain.DomainConflicts()
	for _, conflict := range conflicts {
		a.log.Warn(conflict)
	}
	return err
}

// server is one of the agent's HTTP servers and the listener it serves on.
type server struct {
	http *http.Server
	ln   net.Listener
}

// maxHeaderBytes bounds a request's headers, which are held in memory outside any budget: GitHub's
// take a few KiB.
const maxHeaderBytes = 64 << 10

// httpServer returns an HTTP server of h with the agent's timeouts and header limit, logging its errors.
func (a *Agent) httpServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 2 * time.Minute,
		MaxHeaderBytes: maxHeaderBytes, ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
}

// Serve runs the agent, its build workers and the outbox worker on ln (and the metrics listener,
// when configured) until ctx is done, a listener fails or, clustered, JetStream is turned off on
// this node: it stops accepting requests, stops the workers (their builds are queued again) and
// the outbox, and returns within the shutdown timeout, with the failure if that was the cause.
func (a *Agent) Serve(ctx context.Context, ln net.Listener) error {
	if a.cfg.Target == "oss" {
		if err := a.cfg.OSSMissing(); err != nil {
			return fmt.Errorf("target is oss, but %w", err)
		}
	}
	if reason := a.cfg.PublicURLUnreachable(); reason != "" {
		a.log.Warn(reason)
	}
	for _, risk := range a.cfg.TLSRisks() {
		a.log.Warn(risk)
	}
	if err := a.warnDomainConflicts(); err != nil {
		return err
	}
	apiServer := a.httpServer(a.Handler())
	apiServer.RegisterOnShutdown(func() { close(a.stopping) })
	servers := []server{{apiServer, ln}}
	if addr := a.cfg.Metrics.Listen; addr != "" {
		mln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listening on %s (metrics.listen): %w", addr, err)
		}
		defer mln.Close() // on an early return; Shutdown closes it otherwise
		servers = append(servers, server{a.httpServer(a.metrics.tokenlessHandler()), mln})
		a.log.Info("serving /metrics without a token", "metrics_listen", mln.Addr().String())
	}
	if a.cfg.TLS.Enabled {
		certs, err := a.newCertificates()
		if err != nil {
			return err
		}
		defer certs.cache.Stop()
		a.certs.Store(certs)
		httpsLn, err := net.Listen("tcp", a.cfg.TLS.Listen)
		if err != nil {
			return fmt.Errorf("listening on %s (tls.listen): %w", a.cfg.TLS.Listen, err)
		}
		defer httpsLn.Close() // on an early return; Shutdown closes it otherwise
		httpLn, err := net.Listen("tcp", a.cfg.TLS.HTTPListen)
		if err != nil {
			return fmt.Errorf("listening on %s (tls.http_listen): %w", a.cfg.TLS.HTTPListen, err)
		}
		defer httpLn.Close()
		servers = append(servers, certs.servers(a, apiServer.Handler, httpsLn, httpLn)...)
		a.log.Info("serving HTTPS with certificates obtained on demand", "tls_listen", httpsLn.Addr().String(),
			"tls_http_listen", httpLn.Addr().String())
	}
	a.log.Info("agent started", "listen", ln.Addr().String(), "public_url", a.cfg.PublicURL,
		"data_dir", a.cfg.DataDir, "version", a.version)
	workCtx, stopWork := context.WithCancelCause(context.Background())
	defer stopWork(nil)
	if err := a.startWorkers(workCtx); err != nil {
		return err
	}
	clusterFailed, err := a.startCluster(workCtx)
	if err != nil {
		return err
	}
	pollerDone := a.startPoller(workCtx)
	outboxCtx, stopOutbox := context.WithCancel(context.Background())
	waitOutbox := a.startOutbox(outboxCtx)
	go a.domain.RunPurges(workCtx, purgeInterval)
	serveErr := make(chan error, len(servers))
	for _, s := range servers {
		go func() {
			if err := s.http.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("serving on %s: %w", s.ln.Addr(), err)
			}
		}()
	}
	// A failed listener stops the agent the way a signal does, so that the store, closed by the
	// caller once Serve returns, is never closed under a running build.
	var failure error
	select {
	case failure = <-serveErr:
		a.log.Error("a listener failed", "err", failure)
	case failure = <-clusterFailed:
		a.log.Error("stopping the agent", "err", failure)
	case <-ctx.Done():
	}
	a.log.Info("shutting down", "timeout", a.cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	// Stop accepting requests and stop the builds at the same time: both must fit in the timeout.
	shutdownErr := make(chan error, len(servers))
	for _, s := range servers {
		go func() { shutdownErr <- s.http.Shutdown(sctx) }()
	}
	stopWork(errShutdown) // running builds end and are queued again, and the poller stops
	a.stopWorkers(sctx)
	select {
	case <-pollerDone:
	case <-sctx.Done():
		a.log.Warn("the poller did not stop in time")
	}
	var shutdownFailure error
	for range servers {
		// Past the deadline, handlers still running were cut off; what they acknowledged is already durable.
		if e := <-shutdownErr; e != nil && !errors.Is(e, context.DeadlineExceeded) {
			shutdownFailure = e
		}
	}
	// Last, as the builds and handlers stopped above may have enqueued messages (a send cut off here
	// stays in the store for the next start), and before the caller closes the store.
	stopOutbox()
	waitOutbox()
	a.log.Info("shutdown complete")
	if failure != nil {
		return failure
	}
	return shutdownFailure
}
