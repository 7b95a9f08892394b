package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/miaobu/miaobu/internal/config"
)

// TestMain lets a test run this binary as a real agent process: with MIAOBU_TEST_AGENT=1 it runs the
// agent from the environment's configuration until SIGTERM, as `miaobu agent` does.
func TestMain(m *testing.M) {
	if os.Getenv("MIAOBU_TEST_AGENT") == "1" {
		os.Exit(runAgentProcess())
	}
	os.Exit(m.Run())
}

// runAgentProcess is the agent process of the durability tests.
func runAgentProcess() int {
	cfg, err := config.Load(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, nil))); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
