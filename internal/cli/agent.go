package cli

import (
	"context"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/agent"
	"github.com/miaobu/miaobu/internal/config"
)

// agentOptions are the inputs of `miaobu agent`; its flags are read by Config.
type agentOptions struct {
	IO     *ioStreams
	Config func() (*config.Config, error)
	// Version is what the agent reports as its version.
	Version string
}

// newCmdAgent builds `miaobu agent`; a test's runF runs instead of agentRun.
func newCmdAgent(f *factory, runF func(context.Context, *agentOptions) error) *cobra.Command {
	runF = runOr(runF, agentRun)
	opts := &agentOptions{IO: f.IO, Config: f.Config, Version: f.Build.String()}
	cmd := &cobra.Command{
		Use:   "agent [--listen ADDR] [--public-url URL] [--cluster-node N --cluster-listen ADDR --cluster-peers URL,...]",
		Short: "Run the daemon: receive webhooks, build and serve sites",
		Args:  exactArgs(0),
		RunE:  func(cmd *cobra.Command, _ []string) error { return runF(cmd.Context(), opts) },
	}
	cmd.Flags().String("listen", "", "listen address (default 127.0.0.1:8000)")
	cmd.Flags().String("public-url", "", "URL GitHub uses to reach this agent (default http://<listen>)")
	cmd.Flags().String("cluster-node", "", "this node's stable name in a cluster of agents")
	cmd.Flags().String("cluster-listen", "", "host:port of the route connections between clustered agents")
	cmd.Flags().StringSlice("cluster-peers", nil, "nats-route://host:port of every voting node, this one included")
	return cmd
}

// agentRun runs the agent until ctx is done, which Main's SIGINT and SIGTERM handling does.
func agentRun(ctx context.Context, opts *agentOptions) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(opts.IO.ErrOut, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return agent.Run(ctx, cfg, log, opts.Version)
}
