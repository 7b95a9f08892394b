package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/config"
)

// loginCheckTimeout bounds the check that the agent accepts the token, so a wrong host fails fast.
const loginCheckTimeout = 30 * time.Second

// loginOptions are the inputs of `miaobu login`.
type loginOptions struct {
	app *app
}

func newLoginCommand(a *app) *cobra.Command {
	opts := &loginOptions{app: a}
	return &cobra.Command{
		Use:   "login --agent URL --token TOKEN",
		Short: "Save a remote agent's address and admin token in the CLI's config file",
		Long: "login checks that the agent at URL accepts TOKEN, then saves both as agent_url and token in the\n" +
			"CLI's config file (mode 0600), so later commands manage that agent. The token may also come from\n" +
			"MIAOBU_TOKEN, which keeps it out of the shell's history.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("agent") {
				return usageError{errors.New("--agent URL is required")}
			}
			return opts.run(cmd.Context())
		},
	}
}

func (o *loginOptions) run(ctx context.Context) error {
	cfg, err := config.Load(o.app.flags)
	if err != nil {
		return err
	}
	if cfg.Token == "" {
		return usageError{errors.New("--token TOKEN (or MIAOBU_TOKEN) is required: it is in the agent's admin-token file")}
	}
	u, err := url.Parse(cfg.AgentURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return usageError{fmt.Errorf("--agent must be an http(s) URL such as https://miaobu.example.com, not %q", cfg.AgentURL)}
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		fmt.Fprintf(o.app.errOut, "%s %s sends the admin token in clear text: put TLS in front of the agent and use https://\n", o.app.errTerm.yellow("warning:"), cfg.AgentURL)
	}

	ctx, cancel := context.WithTimeout(ctx, loginCheckTimeout)
	defer cancel()
	var projects []api.Project
	if err := newClient(cfg).do(ctx, "GET", api.PathProjects, nil, &projects); err != nil {
		return fmt.Errorf("login failed, nothing was saved: %w", err)
	}
	if err := config.SetKeys(cfg.File, map[string]string{"agent_url": cfg.AgentURL, "token": cfg.Token}); err != nil {
		return err
	}
	fmt.Fprintf(o.app.errOut, "%s Logged in to %s: agent_url and token saved in %s\n", o.app.errTerm.green("✓"), cfg.AgentURL, cfg.File)
	return nil
}

// isLoopback reports whether host names this machine, where a clear-text token does not cross a network.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
