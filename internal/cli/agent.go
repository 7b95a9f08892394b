package cli

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/agent"
)

// agentOptions are the flags of `miaobu agent`.
type agentOptions struct {
	app *app
}

// newAgentCommand builds `miaobu agent`.
func newAgentCommand(a *app) *cobra.Command {
	opts := &agentOptions{app: a}
	cmd := &cobra.Command{
		Use:   "agent [--listen ADDR] [--public-url URL]",
		Short: "Run the daemon: receive webhooks, build and serve sites",
		Args:  exactArgs(0),
		RunE:  func(cmd *cobra.Command, _ []string) error { return opts.run(cmd.Context()) },
	}
	cmd.Flags().String("listen", "", "listen address (default 127.0.0.1:8000)")
	cmd.Flags().String("public-url", "", "URL GitHub uses to reach this agent (default http://<listen>)")
	return cmd
}

// run runs the agent until SIGINT or SIGTERM.
func (o *agentOptions) run(ctx context.Context) error {
	cfg, err := o.app.config()
	if err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	agent.Version = versionString()
	log := slog.New(slog.NewTextHandler(o.app.errOut, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return agent.Run(ctx, cfg, log)
}
