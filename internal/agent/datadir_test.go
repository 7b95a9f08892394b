package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/store"
)

func TestRunRefusesLostStore(t *testing.T) {
	cfg := testConfig(t)
	cfg.Listen = "127.0.0.1:0"
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.AdminTokenFile(), []byte("token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	db := filepath.Join(cfg.DataDir, store.FileName)
	var damaged *store.DamagedError
	if !errors.As(err, &damaged) || !strings.Contains(err.Error(), db+" is missing") || !strings.Contains(err.Error(), "miaobu backup") {
		t.Fatalf("Run over a lost store: %v", err)
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("Run created a new store over the lost one")
	}

	// A brand-new data dir starts.
	cfg = testConfig(t)
	cfg.Listen = "127.0.0.1:0"
	if err := Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatalf("Run on a new data dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, store.FileName)); err != nil {
		t.Fatal(err)
	}
}
