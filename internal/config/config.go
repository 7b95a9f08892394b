// Package config owns miaobu's configuration: the one Config struct, its defaults, and loading it
// from flags, the environment and the YAML config file, in that order of precedence.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Config is everything miaobu can be told; each field's comment is its user documentation.
type Config struct {
	// File is the config file that was looked for (it may not exist).
	File string `mapstructure:"-"`
	// DataDir holds the store, the admin token, build logs and published sites.
	DataDir string `mapstructure:"data_dir"`
	// Listen is the agent's listen address.
	Listen string `mapstructure:"listen"`
	// PublicURL is how GitHub reaches the agent; webhook URLs are built from it.
	PublicURL string `mapstructure:"public_url"`
	// AgentURL is where the CLI finds the agent.
	AgentURL string `mapstructure:"agent_url"`
	// Token is the CLI's admin token; empty means the contents of <data_dir>/admin-token.
	Token string `mapstructure:"token"`
	// GitHub configures the GitHub REST client.
	GitHub GitHub `mapstructure:"github"`
	// Sites configures how the agent serves the local target.
	Sites Sites `mapstructure:"sites"`
	// Build configures the build workers.
	Build Build `mapstructure:"build"`
	// Retention says how much history is kept.
	Retention Retention `mapstructure:"retention"`
	// CORS lists the browser origins the admin API answers.
	CORS CORS `mapstructure:"cors"`
	// ShutdownTimeout bounds how long the agent takes to stop.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	// Metrics configures a listener of its own for Prometheus.
	Metrics Metrics `mapstructure:"metrics"`
	// TLS configures HTTPS served by the agent itself.
	TLS TLS `mapstructure:"tls"`
	// Target is the default publish target of new projects: local or oss.
	Target string `mapstructure:"target"`
	// OSS configures the Alibaba Cloud OSS target.
	OSS OSS `mapstructure:"oss"`
	// CDN configures the CDN purge after an OSS publish.
	CDN CDN `mapstructure:"cdn"`
	// Poll configures how projects with trigger poll look for new commits.
	Poll Poll `mapstructure:"poll"`
	// Reconcile configures the comparison of every project's branch heads with its deployments.
	Reconcile Reconcile `mapstructure:"reconcile"`
	// TrustedProxies are the reverse proxies, as CIDRs or single addresses, whose X-Forwarded-For
	// header names the client of a request; other peers are the client themselves.
	TrustedProxies []string `mapstructure:"trusted_proxies"`
	// Webhook configures the webhook receiver.
	Webhook Webhook `mapstructure:"webhook"`
	// SMTP is the mail server that email notifications are sent through.
	SMTP SMTP `mapstructure:"smtp"`
	// Notifications configures outgoing notifications.
	Notifications Notifications `mapstructure:"notifications"`
	// Cluster makes the agent one of several that run as one on embedded NATS JetStream.
	Cluster Cluster `mapstructure:"cluster"`
}

// MinClusterVoters is how many voting nodes a cluster needs: fewer survive no failure.
const MinClusterVoters = 3

// Cluster configures several agents that run as one (contract section 14).
type Cluster struct {
	// Node is this agent's stable name, unique in the cluster.
	Node string `mapstructure:"node"`
	// Listen is the host:port of the route connections between the nodes.
	Listen string `mapstructure:"listen"`
	// Peers are the nats-route://host:port URLs of every voting node, this one included; set, the
	// agent runs clustered.
	Peers []string `mapstructure:"peers"`
	// Secret authenticates and encrypts the route connections; the same on every node.
	Secret string `mapstructure:"secret"`
	// LeaseTTL is how long a node's lease on a project's build outlives its last renewal: how soon
	// another node takes over the build of a node that died.
	LeaseTTL time.Duration `mapstructure:"lease_ttl"`
}

// Enabled reports whether the agent runs clustered.
func (c Cluster) Enabled() bool { return len(c.Peers) > 0 }

// MinClusterSecret is the fewest characters of cluster.secret: 32 random ones, as
// `openssl rand -base64 32` gives 44, cannot be guessed.
const MinClusterSecret = 32

// validate checks a clustered configuration: a node name, a route listener, a secret and at
// least MinClusterVoters peers.
func (c Cluster) validate() error {
	if !c.Enabled() {
		return nil
	}
	switch {
	case c.Node == "":
		return errors.New("cluster.node is required when cluster.peers is set: a stable name unique in the cluster")
	case c.Listen == "":
		return errors.New("cluster.listen is required when cluster.peers is set: the host:port of the route connections")
	case c.Secret == "":
		return errors.New("cluster.secret is required when cluster.peers is set: it authenticates and encrypts the route connections")
	case len(c.Secret) < MinClusterSecret:
		return fmt.Errorf("cluster.secret has %d characters, fewer than %d: the route connections' keys are derived from it, "+
			"so it must not be guessable; make one with `openssl rand -base64 32`", len(c.Secret), MinClusterSecret)
	case c.LeaseTTL < time.Second:
		return fmt.Errorf("cluster.lease_ttl must be at least 1s, not %s", c.LeaseTTL)
	case len(c.Peers) < MinClusterVoters:
		return fmt.Errorf("cluster.peers lists %d voting nodes: a cluster needs at least %d, since fewer survive no failure",
			len(c.Peers), MinClusterVoters)
	}
	return nil
}

// SMTP is the mail server that email notifications are sent through.
type SMTP struct {
	// Host is the server's name; empty means email notifications cannot be sent.
	Host string `mapstructure:"host"`
	// Port is 587 (STARTTLS when the server offers it) or 465 (TLS from the start).
	Port int `mapstructure:"port"`
	// Username and Password log in (AUTH PLAIN, only over TLS or to this machine); none: no login.
	Username string `mapstructure:"username"`
	Password string `mapstructure:"password"`
	// From is the sender address of notification emails.
	From string `mapstructure:"from"`
}

// Notifications configures outgoing notifications.
type Notifications struct {
	// AllowPrivateNetworks lets notification targets resolve to loopback, private or link-local
	// addresses, which are refused by default so that a target cannot reach internal services.
	AllowPrivateNetworks bool `mapstructure:"allow_private_networks"`
}

// MinPollInterval is the shortest poll.interval.
const MinPollInterval = 15 * time.Second

// MinReconcileInterval is the shortest reconcile.interval other than 0.
const MinReconcileInterval = time.Minute

// Poll configures how projects with trigger poll look for new commits.
type Poll struct {
	// Interval is how often each project's branch heads are read (±10%), at least MinPollInterval.
	Interval time.Duration `mapstructure:"interval"`
}

// Reconcile configures the comparison of every project's branch heads with its deployments, which
// deploys the heads that have none (a push missed while the agent was down).
type Reconcile struct {
	// Interval is how often it runs after the run at start, at least MinReconcileInterval; 0 runs it
	// at start only.
	Interval time.Duration `mapstructure:"interval"`
}

// DefaultWebhookMaxInflightBytes is the default of webhook.max_inflight_bytes: two of the largest bodies.
const DefaultWebhookMaxInflightBytes = 64 << 20

// Webhook configures the webhook receiver.
type Webhook struct {
	// MaxInflightBytes caps the webhook bodies held in memory at once, before their signature is
	// checked; past it a delivery waits up to 5 s for room, then gets 503. A body larger than the
	// whole cap (when it is below 32 MiB) is refused as too large.
	MaxInflightBytes int64 `mapstructure:"max_inflight_bytes"`
}

// InflightBytes returns MaxInflightBytes, or its default in a Config that was not loaded (built in code).
func (w Webhook) InflightBytes() int64 {
	if w.MaxInflightBytes <= 0 {
		return DefaultWebhookMaxInflightBytes
	}
	return w.MaxInflightBytes
}

// GitHub configures the GitHub REST client.
type GitHub struct {
	// Token is a personal access token with repo and admin:repo_hook scopes.
	Token string `mapstructure:"token"`
	// APIURL is the REST API root, for GitHub Enterprise or a test server.
	APIURL string `mapstructure:"api_url"`
	// Statuses sets a commit status miaobu/<slug> on each deployed commit (needs repo:status).
	Statuses bool `mapstructure:"statuses"`
	// Deployments records each deployment as a GitHub Deployment (needs repo_deployment).
	Deployments bool `mapstructure:"deployments"`
	// WriteInterval is the least time between two requests that create content on GitHub (reports,
	// comments, hooks), under GitHub's secondary rate limit of about 80 a minute; 0 sends them at once.
	WriteInterval time.Duration `mapstructure:"write_interval"`
}

// Sites configures the local target's web server.
type Sites struct {
	// Domain is the parent domain of sites: <slug>.<domain> serves a project.
	Domain string `mapstructure:"domain"`
}

// Build configures the build workers.
type Build struct {
	// Concurrency is how many builds run at once; 0 pauses building.
	Concurrency int `mapstructure:"concurrency"`
	// Timeout bounds one whole build.
	Timeout time.Duration `mapstructure:"timeout"`
	// Sandbox is auto, bwrap or none.
	Sandbox string `mapstructure:"sandbox"`
}

// Retention says how much history is kept.
type Retention struct {
	// Deployments is how many successful deployments are kept per project, for production and for
	// each preview apart.
	Deployments int `mapstructure:"deployments"`
	// Previews is how long the files of a closed pull request's or deleted branch's preview are
	// kept after it was taken down.
	Previews time.Duration `mapstructure:"previews"`
	// CacheBytes bounds each project's build cache: past it, after a successful deployment, the
	// package managers' stores go first, then the framework caches, then the rest; 0 sets no bound.
	CacheBytes int64 `mapstructure:"cache_bytes"`
}

// CORS lists the browser origins the admin API answers.
type CORS struct {
	// AllowedOrigins are origins such as https://admin.example.com.
	AllowedOrigins []string `mapstructure:"allowed_origins"`
}

// Metrics configures a listener of its own for Prometheus.
type Metrics struct {
	// Listen is a host:port where GET /metrics is also served, without the admin token (and
	// nothing else is); empty serves metrics only on the agent's listener, behind the token.
	Listen string `mapstructure:"listen"`
}

// TLS configures HTTPS served by the agent itself, with certificates from an ACME CA obtained at
// the first handshake for each name the agent serves.
type TLS struct {
	// Enabled turns HTTPS on.
	Enabled bool `mapstructure:"enabled"`
	// Email is the ACME account's contact; may be empty.
	Email string `mapstructure:"email"`
	// CA is the ACME directory URL; empty: Let's Encrypt's production directory.
	CA string `mapstructure:"ca"`
	// CARoot is a PEM file trusted for the ACME server, for a test CA; empty: the system's roots.
	CARoot string `mapstructure:"ca_root"`
	// Listen is the host:port of HTTPS.
	Listen string `mapstructure:"listen"`
	// HTTPListen is the host:port that answers ACME HTTP challenges and redirects the rest to HTTPS.
	HTTPListen string `mapstructure:"http_listen"`
}

// OSS configures the Alibaba Cloud OSS target.
type OSS struct {
	// Endpoint is a URL such as https://oss-cn-hangzhou.aliyuncs.com; a bare host means https.
	Endpoint string `mapstructure:"endpoint"`
	// Bucket is the bucket sites are uploaded to.
	Bucket string `mapstructure:"bucket"`
	// Prefix is the key prefix of a site; {slug} expands to the project's slug.
	Prefix string `mapstructure:"prefix"`
	// Concurrency is how many uploads run at once.
	Concurrency int `mapstructure:"concurrency"`
	// MaxDelete caps how many stale objects one deploy deletes.
	MaxDelete int `mapstructure:"max_delete"`
	// AccessKeyID is the Alibaba Cloud access key id, also used by the CDN client.
	AccessKeyID string `mapstructure:"access_key_id"`
	// AccessKeySecret is the Alibaba Cloud access key secret.
	AccessKeySecret string `mapstructure:"access_key_secret"`
}

// CDN configures the CDN purge after an OSS publish.
type CDN struct {
	// Provider is none or aliyun.
	Provider string `mapstructure:"provider"`
	// Domain is the CDN domain of a site; {slug} may appear in it.
	Domain string `mapstructure:"domain"`
	// Endpoint overrides the provider's API endpoint (a URL).
	Endpoint string `mapstructure:"endpoint"`
	// MaxURLs is how many changed URLs one deploy purges before folding them into directories.
	MaxURLs int `mapstructure:"max_urls"`
}

// envNames maps each key to its environment variables, first match wins.
var envNames = map[string][]string{
	"data_dir":              {"MIAOBU_DATA_DIR"},
	"listen":                {"MIAOBU_LISTEN"},
	"public_url":            {"MIAOBU_PUBLIC_URL", "BACKEND_URL"},
	"agent_url":             {"MIAOBU_AGENT_URL"},
	"token":                 {"MIAOBU_TOKEN"},
	"github.token":          {"MIAOBU_GITHUB_TOKEN", "GITHUB_TOKEN", "GH_TOKEN"},
	"github.api_url":        {"MIAOBU_GITHUB_API_URL"},
	"github.statuses":       {"MIAOBU_GITHUB_STATUSES"},
	"github.deployments":    {"MIAOBU_GITHUB_DEPLOYMENTS"},
	"github.write_interval": {"MIAOBU_GITHUB_WRITE_INTERVAL"},
	"sites.domain":          {"MIAOBU_SITES_DOMAIN"},
	"build.concurrency":     {"MIAOBU_BUILD_CONCURRENCY"},
	"build.timeout":         {"MIAOBU_BUILD_TIMEOUT"},
	"build.sandbox":         {"MIAOBU_BUILD_SANDBOX"},
	"retention.deployments": {"MIAOBU_RETENTION_DEPLOYMENTS"},
	"retention.previews":    {"MIAOBU_RETENTION_PREVIEWS"},
	"retention.cache_bytes": {"MIAOBU_RETENTION_CACHE_BYTES"},
	"cors.allowed_origins":  {"MIAOBU_CORS_ALLOWED_ORIGINS"},
	"shutdown_timeout":      {"MIAOBU_SHUTDOWN_TIMEOUT"},
	"metrics.listen":        {"MIAOBU_METRICS_LISTEN"},
	"tls.enabled":           {"MIAOBU_TLS"},
	"tls.email":             {"MIAOBU_TLS_EMAIL"},
	"tls.ca":                {"MIAOBU_TLS_CA"},
	"tls.ca_root":           {"MIAOBU_TLS_CA_ROOT"},
	"tls.listen":            {"MIAOBU_TLS_LISTEN"},
	"tls.http_listen":       {"MIAOBU_TLS_HTTP_LISTEN"},
	"target":                {"MIAOBU_TARGET"},
	"oss.endpoint":          {"MIAOBU_OSS_ENDPOINT"},
	"oss.bucket":            {"MIAOBU_OSS_BUCKET"},
	"oss.prefix":            {"MIAOBU_OSS_PREFIX"},
	"oss.concurrency":       {"MIAOBU_OSS_CONCURRENCY"},
	"oss.max_delete":        {"MIAOBU_OSS_MAX_DELETE"},
	"oss.access_key_id":     {"MIAOBU_OSS_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_ID"},
	"oss.access_key_secret": {"MIAOBU_OSS_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"},
	"cdn.provider":          {"MIAOBU_CDN_PROVIDER"},
	"cdn.domain":            {"MIAOBU_CDN_DOMAIN"},
	"cdn.endpoint":          {"MIAOBU_CDN_ENDPOINT"},
	"cdn.max_urls":          {"MIAOBU_CDN_MAX_URLS"},
	"poll.interval":         {"MIAOBU_POLL_INTERVAL"},
	"reconcile.interval":    {"MIAOBU_RECONCILE_INTERVAL"},
	"trusted_proxies":       {"MIAOBU_TRUSTED_PROXIES"},

	"webhook.max_inflight_bytes":           {"MIAOBU_WEBHOOK_MAX_INFLIGHT_BYTES"},
	"smtp.host":                            {"MIAOBU_SMTP_HOST"},
	"smtp.port":                            {"MIAOBU_SMTP_PORT"},
	"smtp.username":                        {"MIAOBU_SMTP_USERNAME"},
	"smtp.password":                        {"MIAOBU_SMTP_PASSWORD"},
	"smtp.from":                            {"MIAOBU_SMTP_FROM"},
	"notifications.allow_private_networks": {"MIAOBU_NOTIFICATIONS_ALLOW_PRIVATE_NETWORKS"},
	"cluster.node":                         {"MIAOBU_CLUSTER_NODE"},
	"cluster.listen":                       {"MIAOBU_CLUSTER_LISTEN"},
	"cluster.peers":                        {"MIAOBU_CLUSTER_PEERS"},
	"cluster.secret":                       {"MIAOBU_CLUSTER_SECRET"},
	"cluster.lease_ttl":                    {"MIAOBU_CLUSTER_LEASE_TTL"},
}

// flagNames maps keys to the flags that can set them, when the command defines those flags.
var flagNames = map[string]string{
	"data_dir":   "data-dir",
	"listen":     "listen",
	"public_url": "public-url",
	"agent_url":  "agent",
	"token":      "token",

	"cluster.node":   "cluster-node",
	"cluster.listen": "cluster-listen",
	"cluster.peers":  "cluster-peers",
}

// Load reads the configuration with the precedence flag > environment > config file > default.
// flags may be nil; the config file comes from --config, then MIAOBU_CONFIG, then the XDG default,
// and a missing file is fine (`miaobu login` creates it).
func Load(flags *pflag.FlagSet) (*Config, error) {
	return load(flags, true)
}

// Defaults returns the configuration that Load gives when no flag, environment variable or config
// file sets anything, on dataDir: every key at its default, for code that must not depend on the
// process's environment, such as tests that run agents side by side.
func Defaults(dataDir string) (*Config, error) {
	cfg, err := load(nil, false)
	if err != nil {
		return nil, err
	}
	cfg.DataDir = dataDir
	return cfg, nil
}

// load is Load; without outside, it reads neither flags, the environment nor a config file.
func load(flags *pflag.FlagSet, outside bool) (*Config, error) {
	v := viper.New()
	home, _ := os.UserHomeDir()
	v.SetDefault("data_dir", xdgDir("XDG_DATA_HOME", filepath.Join(home, ".local", "share")))
	v.SetDefault("listen", "127.0.0.1:8000")
	v.SetDefault("public_url", "")
	v.SetDefault("agent_url", "")
	v.SetDefault("token", "")
	v.SetDefault("github.token", "")
	v.SetDefault("github.api_url", "https://api.github.com/")
	v.SetDefault("github.statuses", true)
	v.SetDefault("github.deployments", true)
	v.SetDefault("github.write_interval", time.Second)
	v.SetDefault("sites.domain", "localhost")
	v.SetDefault("build.concurrency", 2)
	v.SetDefault("build.timeout", 15*time.Minute)
	v.SetDefault("build.sandbox", "auto")
	v.SetDefault("retention.deployments", 10)
	v.SetDefault("retention.previews", 168*time.Hour)
	v.SetDefault("retention.cache_bytes", 2<<30)
	v.SetDefault("cors.allowed_origins", []string{})
	v.SetDefault("shutdown_timeout", 10*time.Second)
	v.SetDefault("metrics.listen", "")
	v.SetDefault("tls.enabled", false)
	v.SetDefault("tls.email", "")
	v.SetDefault("tls.ca", "")
	v.SetDefault("tls.ca_root", "")
	v.SetDefault("tls.listen", ":443")
	v.SetDefault("tls.http_listen", ":80")
	v.SetDefault("target", "local")
	v.SetDefault("oss.endpoint", "")
	v.SetDefault("oss.bucket", "")
	v.SetDefault("oss.prefix", "projects/{slug}/")
	v.SetDefault("oss.concurrency", 16)
	v.SetDefault("oss.max_delete", 1000)
	v.SetDefault("oss.access_key_id", "")
	v.SetDefault("oss.access_key_secret", "")
	v.SetDefault("cdn.provider", "none")
	v.SetDefault("cdn.domain", "")
	v.SetDefault("cdn.endpoint", "")
	v.SetDefault("cdn.max_urls", 500)
	v.SetDefault("poll.interval", time.Minute)
	v.SetDefault("reconcile.interval", 10*time.Minute)
	v.SetDefault("trusted_proxies", []string{"127.0.0.0/8", "::1/128"})
	v.SetDefault("webhook.max_inflight_bytes", DefaultWebhookMaxInflightBytes)
	v.SetDefault("smtp.host", "")
	v.SetDefault("smtp.port", 587)
	v.SetDefault("smtp.username", "")
	v.SetDefault("smtp.password", "")
	v.SetDefault("smtp.from", "")
	v.SetDefault("notifications.allow_private_networks", false)
	v.SetDefault("cluster.node", "")
	v.SetDefault("cluster.listen", "")
	v.SetDefault("cluster.peers", []string{})
	v.SetDefault("cluster.secret", "")
	v.SetDefault("cluster.lease_ttl", time.Minute)

	var file string
	if outside {
		var err error
		if file, err = readOutside(v, flags, home); err != nil {
			return nil, err
		}
	}

	cfg := &Config{}
	if err := v.Unmarshal(cfg); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg.File = file
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + cfg.Listen
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if cfg.AgentURL == "" {
		cfg.AgentURL = "http://" + dialable(cfg.Listen)
	}
	cfg.AgentURL = strings.TrimRight(cfg.AgentURL, "/")
	return cfg, cfg.validate()
}

// readOutside binds v to the environment and to flags, reads the config file into it and returns the
// file's path.
func readOutside(v *viper.Viper, flags *pflag.FlagSet, home string) (string, error) {
	for key, names := range envNames {
		if err := v.BindEnv(append([]string{key}, names...)...); err != nil {
			return "", err
		}
	}
	if flags != nil {
		for key, name := range flagNames {
			if f := flags.Lookup(name); f != nil {
				if err := v.BindPFlag(key, f); err != nil {
					return "", err
				}
			}
		}
	}

	file := os.Getenv("MIAOBU_CONFIG")
	if flags != nil {
		if f := flags.Lookup("config"); f != nil && f.Changed {
			file = f.Value.String()
		}
	}
	if file == "" {
		file = filepath.Join(xdgDir("XDG_CONFIG_HOME", filepath.Join(home, ".config")), "config.yaml")
	}
	v.SetConfigFile(file)
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("reading config file %s: %w", file, err)
		}
	}
	return file, nil
}

// xdgDir returns $env/miaobu when env is set, else fallback/miaobu.
func xdgDir(env, fallback string) string {
	if d := os.Getenv(env); d != "" {
		return filepath.Join(d, "miaobu")
	}
	return filepath.Join(fallback, "miaobu")
}

// dialable turns a listen address on all interfaces into one a client on this machine can dial.
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// validate rejects values that would only fail later and further from their cause.
func (c *Config) validate() error {
	if err := c.Cluster.validate(); err != nil {
		return err
	}
	switch c.Build.Sandbox {
	case "auto", "bwrap", "none":
	default:
		return fmt.Errorf("build.sandbox must be auto, bwrap or none, not %q", c.Build.Sandbox)
	}
	switch c.Target {
	case "local", "oss":
	default:
		return fmt.Errorf("target must be local or oss, not %q", c.Target)
	}
	switch c.CDN.Provider {
	case "none", "aliyun":
	default:
		return fmt.Errorf("cdn.provider must be none or aliyun, not %q", c.CDN.Provider)
	}
	if c.Build.Concurrency < 0 {
		return fmt.Errorf("build.concurrency must be 0 or more, not %d", c.Build.Concurrency)
	}
	if c.Build.Timeout <= 0 || c.ShutdownTimeout <= 0 {
		return errors.New("build.timeout and shutdown_timeout must be positive durations such as 15m or 10s")
	}
	if c.Poll.Interval < MinPollInterval {
		return fmt.Errorf("poll.interval must be at least %s, not %s%s", MinPollInterval, c.Poll.Interval, unitHint(c.Poll.Interval, "60s"))
	}
	if c.GitHub.WriteInterval < 0 {
		return fmt.Errorf("github.write_interval must be 0 (no pacing) or a positive duration, not %s", c.GitHub.WriteInterval)
	}
	if c.Reconcile.Interval != 0 && c.Reconcile.Interval < MinReconcileInterval {
		return fmt.Errorf("reconcile.interval must be 0 (at start only) or at least %s, not %s%s",
			MinReconcileInterval, c.Reconcile.Interval, unitHint(c.Reconcile.Interval, "10m"))
	}
	if c.Retention.Deployments < 1 {
		return fmt.Errorf("retention.deployments must be at least 1, not %d", c.Retention.Deployments)
	}
	if c.Retention.Previews < 0 {
		return fmt.Errorf("retention.previews must be a duration such as 168h, not %s", c.Retention.Previews)
	}
	if c.Retention.CacheBytes < 0 {
		return fmt.Errorf("retention.cache_bytes must be 0 (no bound) or more, not %d", c.Retention.CacheBytes)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen must be host:port, not %q", c.Listen)
	}
	if _, _, err := net.SplitHostPort(c.Metrics.Listen); c.Metrics.Listen != "" && err != nil {
		return fmt.Errorf("metrics.listen must be host:port, such as 127.0.0.1:9100, not %q", c.Metrics.Listen)
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("public_url must be an http(s) URL, not %q", c.PublicURL)
	}
	if _, err := c.TrustedProxyPrefixes(); err != nil {
		return err
	}
	if c.Webhook.MaxInflightBytes < minWebhookInflightBytes {
		return fmt.Errorf("webhook.max_inflight_bytes must be at least %d (1 MiB), not %d", minWebhookInflightBytes, c.Webhook.MaxInflightBytes)
	}
	return nil
}

// minWebhookInflightBytes keeps webhook.max_inflight_bytes from refusing ordinary deliveries, and
// catches a value meant in MiB.
const minWebhookInflightBytes = 1 << 20

// TrustedProxyPrefixes parses TrustedProxies; a single address stands for itself alone.
func (c *Config) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	prefixes := make([]netip.Prefix, 0, len(c.TrustedProxies))
	for _, s := range c.TrustedProxies {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if addr, err := netip.ParseAddr(s); err == nil {
			addr = addr.Unmap()
			prefixes = append(prefixes, netip.PrefixFrom(addr, addr.BitLen()))
			continue
		}
		prefix, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies: %q is neither a CIDR such as 10.0.0.0/8 nor an IP address", s)
		}
		prefixes = append(prefixes, prefix.Masked())
	}
	return prefixes, nil
}

// PublicURLUnreachable explains why GitHub cannot call the public URL, or returns "" when it can.
func (c *Config) PublicURLUnreachable() string {
	u, err := url.Parse(c.PublicURL)
	if err != nil {
		return "public_url is not a URL"
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Sprintf("public_url %s is an all-interfaces address that GitHub cannot call: set public_url (MIAOBU_PUBLIC_URL) to the agent's public address", c.PublicURL)
	}
	return ""
}

// PublicURLIsLoopback reports whether the public URL points at this machine only, where GitHub cannot reach it.
func (c *Config) PublicURLIsLoopback() bool {
	u, err := url.Parse(c.PublicURL)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Exposures explains each setting that opens the agent wider than it may look: a metrics listener,
// which asks for no token, off loopback, and trusted proxies that cover every address.
func (c *Config) Exposures() []string {
	var out []string
	if host, _, err := net.SplitHostPort(c.Metrics.Listen); err == nil && host != "localhost" {
		if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
			out = append(out, fmt.Sprintf("metrics.listen %s is not a loopback address: anyone who reaches it reads /metrics without a token; "+
				"set it to 127.0.0.1:PORT, or firewall the port", c.Metrics.Listen))
		}
	}
	prefixes, _ := c.TrustedProxyPrefixes()
	for _, p := range prefixes {
		if p.Bits() == 0 {
			out = append(out, fmt.Sprintf("trusted_proxies contains %s: every client is trusted to name its own address in X-Forwarded-For, "+
				"so recorded and logged client addresses prove nothing; list only your reverse proxies", p))
		}
	}
	return out
}

// TLSRisks explains each way in which tls.enabled is set up to fail or to mislead: Let's Encrypt,
// the default CA, asked for names under localhost, which it refuses; a public URL whose host is an IP
// address, which gets no certificate on demand; a public URL over plain http. None without TLS.
func (c *Config) TLSRisks() []string {
	if !c.TLS.Enabled {
		return nil
	}
	var out []string
	sites := strings.ToLower(strings.Trim(c.Sites.Domain, "."))
	if c.TLS.CA == "" && (sites == "localhost" || strings.HasSuffix(sites, ".localhost")) {
		out = append(out, fmt.Sprintf("tls.enabled with Let's Encrypt (no tls.ca) gets no certificate for the sites under sites.domain %s: "+
			"set sites.domain to a domain whose DNS points at this server, or tls.ca to an ACME CA of your own", sites))
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil {
		return out
	}
	if net.ParseIP(u.Hostname()) != nil {
		out = append(out, fmt.Sprintf("public_url %s names an IP address, which gets no certificate on demand, so HTTPS to it fails: "+
			"give public_url a host name whose DNS points at this server", c.PublicURL))
	}
	if u.Scheme == "http" {
		out = append(out, fmt.Sprintf("public_url %s is http:// while tls.enabled: webhook URLs, links and logins go over plain HTTP; "+
			"set public_url to its https:// form", c.PublicURL))
	}
	return out
}

// AdminTokenFile is the file where the agent keeps its admin token.
func (c *Config) AdminTokenFile() string { return filepath.Join(c.DataDir, "admin-token") }

// CLIToken returns the admin token the CLI sends: the configured one, else the agent's token file.
func (c *Config) CLIToken() (string, error) {
	if c.Token != "" {
		return c.Token, nil
	}
	b, err := os.ReadFile(c.AdminTokenFile())
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// OSSMissing says which keys the oss target lacks to publish, or returns nil when it has them all.
func (c *Config) OSSMissing() error {
	var missing []string
	for _, f := range []struct{ key, value string }{
		{"oss.endpoint", c.OSS.Endpoint}, {"oss.bucket", c.OSS.Bucket},
		{"oss.access_key_id", c.OSS.AccessKeyID}, {"oss.access_key_secret", c.OSS.AccessKeySecret},
	} {
		if f.value == "" {
			missing = append(missing, f.key)
		}
	}
	if c.CDN.Provider == "aliyun" && c.CDN.Domain == "" {
		missing = append(missing, "cdn.domain")
	}
	if len(missing) > 0 {
		return fmt.Errorf("the oss target needs %s in the agent's configuration (or their MIAOBU_ variables)", strings.Join(missing, ", "))
	}
	return nil
}

// unitHint is what to add to the refusal of an interval d that is under a second, most likely a
// number written without its unit (YAML's 10 is 10ns): a reminder of the unit, such as example.
func unitHint(d time.Duration, example string) string {
	if d <= 0 || d >= time.Second {
		return ""
	}
	return " (a number without a unit is nanoseconds: write a duration such as " + example + ")"
}
