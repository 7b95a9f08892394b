package agent_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent"
	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/store"
)

func TestRunRefusesLostStore(t *testing.T) {
	t.Parallel()
	cfg := agenttest.Config(t)
	cfg.Listen = "127.0.0.1:0"
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.AdminTokenFile(), []byte("token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := agent.Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), agenttest.Version)
	db := filepath.Join(cfg.DataDir, store.FileName)
	var damaged *store.DamagedError
	if !errors.As(err, &damaged) || !strings.Contains(err.Error(), db+" is missing") || !strings.Contains(err.Error(), "miaobu backup") {
		t.Fatalf("Run over a lost store: %v", err)
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("Run created a new store over the lost one")
	}

	// A brand-new data dir starts, and so does one with an empty token made ready for the agent.
	for _, token := range []*string{nil, ptr(""), ptr("\n")} { // nil: no token file
		cfg = agenttest.Config(t)
		cfg.Listen = "127.0.0.1:0"
		if token != nil {
			if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cfg.AdminTokenFile(), []byte(*token), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := agent.Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), agenttest.Version); err != nil {
			t.Fatalf("Run on a new data dir (token %v): %v", token, err)
		}
		if _, err := os.Stat(filepath.Join(cfg.DataDir, store.FileName)); err != nil {
			t.Fatal(err)
		}
		if data, err := os.ReadFile(cfg.AdminTokenFile()); err != nil || len(strings.TrimSpace(string(data))) != 43 {
			t.Fatalf("token %v: the admin token is %q (%v)", token, data, err)
		}
	}
}

// startLog builds an agent with cfg on a store in its existing data dir and returns what it logged.
func startLog(t *testing.T, cfg *config.Config) string {
	t.Helper()
	st, err := store.Open(cfg.DataDir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var logs bytes.Buffer
	if _, err := agent.New(cfg, st, slog.New(slog.NewTextHandler(&logs, nil)), agenttest.Version); err != nil {
		t.Fatal(err)
	}
	return logs.String()
}

func TestWarnsAboutLoosePermissions(t *testing.T) {
	t.Parallel()
	cfg := agenttest.Config(t)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	start := func() string { return startLog(t, cfg) }
	if logs := start(); strings.Contains(logs, "WARN") {
		t.Fatalf("warnings about a private data dir:\n%s", logs)
	}
	if err := os.Chmod(cfg.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cfg.AdminTokenFile(), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := start()
	for _, want := range []string{
		"run chmod 700 " + cfg.DataDir, "path=" + cfg.DataDir + " mode=0755",
		"run chmod 600 " + cfg.AdminTokenFile(), "path=" + cfg.AdminTokenFile() + " mode=0644",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("no %q in:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, store.FileName+" is open") {
		t.Errorf("a warning about the store file, whose mode is 0600:\n%s", logs)
	}
}

// TestWarnsAboutExposures starts agents with a metrics listener on every interface and with
// trusted proxies that cover every address, and expects a warning naming each risk; the defaults
// and a loopback metrics listener give none.
func TestWarnsAboutExposures(t *testing.T) {
	t.Parallel()
	start := func(change func(cfg *config.Config)) string {
		t.Helper()
		cfg := agenttest.Config(t)
		change(cfg)
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		return startLog(t, cfg)
	}
	for _, listen := range []string{"", "127.0.0.1:9100", "localhost:9100", "[::1]:9100"} {
		if logs := start(func(cfg *config.Config) { cfg.Metrics.Listen = listen }); strings.Contains(logs, "WARN") {
			t.Errorf("metrics.listen %q, default trusted_proxies: warnings\n%s", listen, logs)
		}
	}
	logs := start(func(cfg *config.Config) {
		cfg.Metrics.Listen = ":9100"
		cfg.TrustedProxies = []string{"10.0.0.0/8", "0.0.0.0/0", "::/0"}
	})
	for _, want := range []string{
		"metrics.listen :9100 is not a loopback address: anyone who reaches it reads /metrics without a token",
		"trusted_proxies contains 0.0.0.0/0: every client is trusted to name its own address in X-Forwarded-For",
		"trusted_proxies contains ::/0: every client",
	} {
		if !strings.Contains(logs, "level=WARN msg=\""+want) {
			t.Errorf("no warning %q in:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "10.0.0.0/8") {
		t.Errorf("a warning about a narrow trusted proxy:\n%s", logs)
	}
	if logs := start(func(cfg *config.Config) { cfg.Metrics.Listen = "192.0.2.1:9100" }); !strings.Contains(logs, "metrics.listen 192.0.2.1:9100 is not a loopback address") {
		t.Errorf("no warning about a metrics listener on a public address:\n%s", logs)
	}
}
