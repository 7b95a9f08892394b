package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// isolate clears every variable Load reads so the machine's environment cannot leak into a test.
func isolate(t *testing.T) string {
	t.Helper()
	for _, names := range envNames {
		for _, name := range names {
			t.Setenv(name, "")
		}
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("MIAOBU_CONFIG", "")
	return home
}

func TestDefaults(t *testing.T) {
	home := isolate(t)
	cfg, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != filepath.Join(home, ".local", "share", "miaobu") || cfg.File != filepath.Join(home, ".config", "miaobu", "config.yaml") {
		t.Errorf("paths %q %q", cfg.DataDir, cfg.File)
	}
	if cfg.Listen != "127.0.0.1:8000" || cfg.PublicURL != "http://127.0.0.1:8000" || cfg.AgentURL != "http://127.0.0.1:8000" {
		t.Errorf("addresses %q %q %q", cfg.Listen, cfg.PublicURL, cfg.AgentURL)
	}
	if cfg.Build.Concurrency != 2 || cfg.Build.Timeout != 15*time.Minute || cfg.Build.Sandbox != "auto" ||
		cfg.Retention.Deployments != 10 || cfg.Retention.CacheBytes != 2<<30 || cfg.Retention.Previews != 168*time.Hour || cfg.ShutdownTimeout != 10*time.Second || cfg.Target != "local" ||
		cfg.OSS.Prefix != "projects/{slug}/" || cfg.OSS.Concurrency != 16 || cfg.OSS.MaxDelete != 1000 ||
		cfg.CDN.Provider != "none" || cfg.CDN.MaxURLs != 500 || cfg.Sites.Domain != "localhost" ||
		cfg.GitHub.APIURL != "https://api.github.com/" || strings.Join(cfg.TrustedProxies, ",") != "127.0.0.0/8,::1/128" ||
		cfg.Webhook.MaxInflightBytes != 67108864 || !cfg.GitHub.Statuses || !cfg.GitHub.Deployments ||
		cfg.SMTP != (SMTP{Port: 587}) || cfg.Notifications.AllowPrivateNetworks ||
		cfg.Poll.Interval != time.Minute || cfg.Reconcile.Interval != 10*time.Minute {
		t.Errorf("defaults %+v", cfg)
	}
	t.Setenv("XDG_DATA_HOME", "/xdg/data")
	t.Setenv("XDG_CONFIG_HOME", "/xdg/config")
	cfg, err = Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/xdg/data/miaobu" || cfg.File != "/xdg/config/miaobu/config.yaml" {
		t.Errorf("XDG paths %q %q", cfg.DataDir, cfg.File)
	}
}

// TestDefaultsFunctionIgnoresTheOutside checks that Defaults is what Load gives with nothing set,
// even where the environment and a config file set every kind of key.
func TestDefaultsFunctionIgnoresTheOutside(t *testing.T) {
	isolate(t)
	loaded, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte("target: oss\nsites:\n  domain: sites.example.com\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MIAOBU_CONFIG", file)
	t.Setenv("MIAOBU_LISTEN", "0.0.0.0:9000")
	t.Setenv("MIAOBU_BUILD_CONCURRENCY", "7")
	t.Setenv("GITHUB_TOKEN", "ghp_from_the_environment")
	cfg, err := Defaults("/srv/miaobu")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/srv/miaobu" || cfg.File != "" {
		t.Errorf("data dir %q, file %q", cfg.DataDir, cfg.File)
	}
	cfg.DataDir, cfg.File = loaded.DataDir, loaded.File
	if !reflect.DeepEqual(cfg, loaded) {
		t.Errorf("Defaults %+v\nLoad with nothing set %+v", cfg, loaded)
	}
}

func TestPrecedence(t *testing.T) {
	isolate(t)
	file := filepath.Join(t.TempDir(), "config.yaml")
	yaml := "listen: 127.0.0.1:7000\npublic_url: https://file.example.com\nbuild:\n  concurrency: 5\n  timeout: 1m\ngithub:\n  token: from-file\ncors:\n  allowed_origins: [https://a.example.com]\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MIAOBU_CONFIG", file)
	cfg, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:7000" || cfg.Build.Concurrency != 5 || cfg.Build.Timeout != time.Minute || cfg.GitHub.Token != "from-file" ||
		len(cfg.CORS.AllowedOrigins) != 1 || cfg.PublicURL != "https://file.example.com" {
		t.Fatalf("file values %+v", cfg)
	}

	t.Setenv("MIAOBU_LISTEN", "127.0.0.1:7100")
	t.Setenv("BACKEND_URL", "https://backend.example.com/")
	t.Setenv("GH_TOKEN", "from-gh")
	t.Setenv("MIAOBU_BUILD_CONCURRENCY", "0")
	t.Setenv("MIAOBU_RETENTION_CACHE_BYTES", "0")
	t.Setenv("MIAOBU_CORS_ALLOWED_ORIGINS", "https://b.example.com,https://c.example.com")
	t.Setenv("MIAOBU_RETENTION_PREVIEWS", "36h")
	t.Setenv("MIAOBU_WEBHOOK_MAX_INFLIGHT_BYTES", "2097152")
	cfg, err = Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:7100" || cfg.PublicURL != "https://backend.example.com" || cfg.GitHub.Token != "from-gh" || cfg.Webhook.MaxInflightBytes != 2<<20 ||
		cfg.Retention.Previews != 36*time.Hour || cfg.Build.Concurrency != 0 || cfg.Retention.CacheBytes != 0 || strings.Join(cfg.CORS.AllowedOrigins, " ") != "https://b.example.com https://c.example.com" {
		t.Fatalf("environment values %+v", cfg)
	}
	t.Setenv("MIAOBU_PUBLIC_URL", "https://miaobu.example.com")
	t.Setenv("MIAOBU_GITHUB_TOKEN", "from-miaobu")
	cfg, _ = Load(nil)
	if cfg.PublicURL != "https://miaobu.example.com" || cfg.GitHub.Token != "from-miaobu" {
		t.Fatalf("MIAOBU_ variables must win over aliases: %q %q", cfg.PublicURL, cfg.GitHub.Token)
	}

	flags := pflag.NewFlagSet("agent", pflag.ContinueOnError)
	flags.String("listen", "", "")
	flags.String("public-url", "", "")
	flags.String("config", "", "")
	if err := flags.Parse([]string{"--listen", "0.0.0.0:9000"}); err != nil {
		t.Fatal(err)
	}
	cfg, err = Load(flags)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "0.0.0.0:9000" || cfg.AgentURL != "http://127.0.0.1:9000" {
		t.Fatalf("flag values %q %q", cfg.Listen, cfg.AgentURL)
	}
}

// TestGitHubReportSwitches turns each kind of report off, one in the file and one in the environment.
func TestGitHubReportSwitches(t *testing.T) {
	isolate(t)
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte("github:\n  deployments: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MIAOBU_CONFIG", file)
	cfg, err := Load(nil)
	if err != nil || !cfg.GitHub.Statuses || cfg.GitHub.Deployments {
		t.Fatalf("from the file: statuses %v deployments %v, %v", cfg.GitHub.Statuses, cfg.GitHub.Deployments, err)
	}
	t.Setenv("MIAOBU_GITHUB_STATUSES", "false")
	t.Setenv("MIAOBU_GITHUB_DEPLOYMENTS", "true")
	cfg, err = Load(nil)
	if err != nil || cfg.GitHub.Statuses || !cfg.GitHub.Deployments {
		t.Fatalf("from the environment: statuses %v deployments %v, %v", cfg.GitHub.Statuses, cfg.GitHub.Deployments, err)
	}
}

func TestInvalidValues(t *testing.T) {
	for env, value := range map[string]string{
		"MIAOBU_BUILD_SANDBOX":              "docker",
		"MIAOBU_TARGET":                     "s3",
		"MIAOBU_CDN_PROVIDER":               "cloudflare",
		"MIAOBU_BUILD_CONCURRENCY":          "-1",
		"MIAOBU_RETENTION_CACHE_BYTES":      "-1",
		"MIAOBU_BUILD_TIMEOUT":              "soon",
		"MIAOBU_LISTEN":                     "8000",
		"MIAOBU_PUBLIC_URL":                 "ftp://x",
		"MIAOBU_WEBHOOK_MAX_INFLIGHT_BYTES": "64",
		"MIAOBU_POLL_INTERVAL":              "10s",
		"MIAOBU_RECONCILE_INTERVAL":         "-1m",
		"MIAOBU_RETENTION_PREVIEWS":         "-1h",
	} {
		isolate(t)
		t.Setenv(env, value)
		if _, err := Load(nil); err == nil {
			t.Errorf("%s=%s accepted", env, value)
		}
	}
	isolate(t)
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	t.Setenv("MIAOBU_CONFIG", missing)
	if cfg, err := Load(nil); err != nil || cfg.File != missing {
		t.Errorf("a named config file that is missing is fine (login creates it): %v", err)
	}
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(broken, []byte("listen: [unclosed"), 0o600); err != nil {
		t.Fatal(err)
	}
	isolate(t)
	t.Setenv("MIAOBU_POLL_INTERVAL", "15s")
	t.Setenv("MIAOBU_RECONCILE_INTERVAL", "0")
	if cfg, err := Load(nil); err != nil || cfg.Poll.Interval != 15*time.Second || cfg.Reconcile.Interval != 0 {
		t.Errorf("the shortest poll.interval and reconcile.interval 0: %+v %v", cfg, err)
	}
	t.Setenv("MIAOBU_CONFIG", broken)
	if _, err := Load(nil); err == nil || !strings.Contains(err.Error(), "broken.yaml") {
		t.Errorf("a config file that is not YAML: %v", err)
	}
}

// TestUnitlessReconcileInterval writes reconcile.interval without a unit, which YAML reads as
// nanoseconds: it is refused like a poll.interval under its minimum, not run in a busy loop.
func TestUnitlessReconcileInterval(t *testing.T) {
	for value, shown := range map[string]string{"10": "10ns (a number without a unit is nanoseconds: write a duration such as 10m)", "1ns": "1ns (", "59s": "59s"} {
		isolate(t)
		file := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(file, []byte("reconcile:\n  interval: "+value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("MIAOBU_CONFIG", file)
		_, err := Load(nil)
		if err == nil || !strings.Contains(err.Error(), "reconcile.interval must be 0 (at start only) or at least 1m0s, not "+shown) {
			t.Errorf("reconcile.interval %s: %v", value, err)
		}
	}
	isolate(t)
	t.Setenv("MIAOBU_RECONCILE_INTERVAL", "1m")
	if cfg, err := Load(nil); err != nil || cfg.Reconcile.Interval != time.Minute {
		t.Errorf("the shortest reconcile.interval: %v", err)
	}
}

func TestTrustedProxies(t *testing.T) {
	isolate(t)
	t.Setenv("MIAOBU_TRUSTED_PROXIES", "10.1.2.3/8, 192.0.2.1,2001:db8::/32,::ffff:198.51.100.7")
	cfg, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	prefixes, err := cfg.TrustedProxyPrefixes()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range prefixes {
		got = append(got, p.String())
	}
	if want := "10.0.0.0/8 192.0.2.1/32 2001:db8::/32 198.51.100.7/32"; strings.Join(got, " ") != want {
		t.Errorf("prefixes %q, want %q", got, want)
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.example.com", "10.0.0.0/8,nope"} {
		t.Setenv("MIAOBU_TRUSTED_PROXIES", bad)
		if _, err := Load(nil); err == nil || !strings.Contains(err.Error(), "trusted_proxies") {
			t.Errorf("MIAOBU_TRUSTED_PROXIES=%s: %v", bad, err)
		}
	}
}

func TestPublicURLChecks(t *testing.T) {
	for url, want := range map[string][2]bool{
		"http://0.0.0.0:8000":          {true, false},
		"http://127.0.0.1:8000":        {false, true},
		"http://localhost:8000":        {false, true},
		"https://abc.ngrok-free.app":   {false, false},
		"https://deploy.example.com/x": {false, false},
	} {
		cfg := &Config{PublicURL: url}
		if got := [2]bool{cfg.PublicURLUnreachable() != "", cfg.PublicURLIsLoopback()}; got != want {
			t.Errorf("%s: unreachable, loopback = %v, want %v", url, got, want)
		}
	}
}

func TestMetricsListen(t *testing.T) {
	isolate(t)
	listen := func() string {
		t.Helper()
		cfg, err := Load(nil)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Metrics.Listen
	}
	if got := listen(); got != "" {
		t.Fatalf("default metrics.listen %q, want none", got)
	}
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte("metrics:\n  listen: 127.0.0.1:9100\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MIAOBU_CONFIG", file)
	if got := listen(); got != "127.0.0.1:9100" {
		t.Fatalf("metrics.listen from the file: %q", got)
	}
	t.Setenv("MIAOBU_METRICS_LISTEN", "[::1]:9200")
	if got := listen(); got != "[::1]:9200" {
		t.Fatalf("MIAOBU_METRICS_LISTEN: %q", got)
	}
	t.Setenv("MIAOBU_METRICS_LISTEN", "9100")
	if _, err := Load(nil); err == nil || !strings.Contains(err.Error(), "metrics.listen") {
		t.Fatalf("a metrics.listen without a host: %v", err)
	}
}

func TestNotificationSettingsFromTheEnvironment(t *testing.T) {
	isolate(t)
	t.Setenv("MIAOBU_SMTP_HOST", "smtp.example.com")
	t.Setenv("MIAOBU_SMTP_PORT", "465")
	t.Setenv("MIAOBU_SMTP_USERNAME", "miaobu")
	t.Setenv("MIAOBU_SMTP_PASSWORD", "s3cret")
	t.Setenv("MIAOBU_SMTP_FROM", "miaobu@example.com")
	t.Setenv("MIAOBU_NOTIFICATIONS_ALLOW_PRIVATE_NETWORKS", "true")
	cfg, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := SMTP{Host: "smtp.example.com", Port: 465, Username: "miaobu", Password: "s3cret", From: "miaobu@example.com"}
	if cfg.SMTP != want || !cfg.Notifications.AllowPrivateNetworks {
		t.Fatalf("smtp %+v, allow_private_networks %v", cfg.SMTP, cfg.Notifications.AllowPrivateNetworks)
	}
}

func TestTLSKeys(t *testing.T) {
	isolate(t)
	cfg, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (TLS{Listen: ":443", HTTPListen: ":80"}); cfg.TLS != want {
		t.Errorf("defaults %+v, want %+v", cfg.TLS, want)
	}
	for name, value := range map[string]string{"MIAOBU_TLS": "true", "MIAOBU_TLS_EMAIL": "ops@example.com",
		"MIAOBU_TLS_CA": "https://ca.example.com/dir", "MIAOBU_TLS_CA_ROOT": "/etc/ca.pem",
		"MIAOBU_TLS_LISTEN": "127.0.0.1:8443", "MIAOBU_TLS_HTTP_LISTEN": "127.0.0.1:8080"} {
		t.Setenv(name, value)
	}
	if cfg, err = Load(nil); err != nil {
		t.Fatal(err)
	}
	want := TLS{Enabled: true, Email: "ops@example.com", CA: "https://ca.example.com/dir", CARoot: "/etc/ca.pem",
		Listen: "127.0.0.1:8443", HTTPListen: "127.0.0.1:8080"}
	if cfg.TLS != want {
		t.Errorf("from the environment %+v, want %+v", cfg.TLS, want)
	}
}

func TestTLSRisks(t *testing.T) {
	tests := []struct {
		tls        TLS
		sites, url string
		want       []string
	}{
		{TLS{}, "localhost", "http://127.0.0.1:8000", nil},
		{TLS{Enabled: true}, "sites.example.com", "https://deploy.example.com", nil},
		{TLS{Enabled: true, CA: "https://ca.example.com/dir"}, "localhost", "https://deploy.example.com", nil},
		{TLS{Enabled: true}, "Localhost.", "https://deploy.example.com", []string{"tls.enabled with Let's Encrypt (no tls.ca) gets no certificate " +
			"for the sites under sites.domain localhost: set sites.domain to a domain whose DNS points at this server, or tls.ca to an ACME CA of your own"}},
		{TLS{Enabled: true}, "apps.localhost", "https://deploy.example.com", []string{"tls.enabled with Let's Encrypt (no tls.ca) gets no certificate " +
			"for the sites under sites.domain apps.localhost: set sites.domain to a domain whose DNS points at this server, or tls.ca to an ACME CA of your own"}},
		{TLS{Enabled: true, CA: "https://ca.example.com/dir"}, "sites.example.com", "https://[2001:db8::1]:8443", []string{"public_url " +
			"https://[2001:db8::1]:8443 names an IP address, which gets no certificate on demand, so HTTPS to it fails: give public_url a host name whose DNS points at this server"}},
		{TLS{Enabled: true, CA: "https://ca.example.com/dir"}, "sites.example.com", "http://deploy.example.com", []string{"public_url " +
			"http://deploy.example.com is http:// while tls.enabled: webhook URLs, links and logins go over plain HTTP; set public_url to its https:// form"}},
	}
	for _, tt := range tests {
		cfg := &Config{TLS: tt.tls, Sites: Sites{Domain: tt.sites}, PublicURL: tt.url}
		if got := cfg.TLSRisks(); !slices.Equal(got, tt.want) {
			t.Errorf("%+v, %s, %s: %q, want %q", tt.tls, tt.sites, tt.url, got, tt.want)
		}
	}
}

func TestClusterSecretMustNotBeGuessable(t *testing.T) {
	isolate(t)
	t.Setenv("MIAOBU_CLUSTER_NODE", "node-1")
	t.Setenv("MIAOBU_CLUSTER_LISTEN", "10.0.0.1:6222")
	t.Setenv("MIAOBU_CLUSTER_PEERS", "nats-route://10.0.0.1:6222,nats-route://10.0.0.2:6222,nats-route://10.0.0.3:6222")
	t.Setenv("MIAOBU_CLUSTER_SECRET", "hunter2")
	if _, err := Load(nil); err == nil || !strings.Contains(err.Error(), "cluster.secret has 7 characters, fewer than 32") ||
		strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a short cluster.secret: %v", err)
	}
	t.Setenv("MIAOBU_CLUSTER_SECRET", strings.Repeat("k", MinClusterSecret))
	if cfg, err := Load(nil); err != nil || !cfg.Cluster.Enabled() {
		t.Errorf("a secret of %d characters: %v", MinClusterSecret, err)
	}
}
