package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/config"
)

// loginCheckTimeout bounds the check that the agent accepts the token, so a wrong host fails fast.
const loginCheckTimeout = 30 * time.Second

// loginOptions are the inputs of `miaobu login`; the agent's URL and the token are read by Config.
type loginOptions struct {
	IO         *ioStreams
	Config     func() (*config.Config, error)
	HTTPClient func() (*http.Client, error)
}

// newCmdLogin builds `miaobu login`; a test's runF runs instead of loginRun.
func newCmdLogin(f *factory, runF func(context.Context, *loginOptions) error) *cobra.Command {
	runF = runOr(runF, loginRun)
	opts := &loginOptions{IO: f.IO, Config: f.Config, HTTPClient: f.HTTPClient}
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
			return runF(cmd.Context(), opts)
		},
	}
}

// loginRun checks that the agent accepts the token, then saves both.
func loginRun(ctx context.Context, opts *loginOptions) error {
	cfg, err := opts.Config()
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
		fmt.Fprintf(opts.IO.ErrOut, "%s %s sends the admin token in clear text: put TLS in front of the agent and use https://\n", opts.IO.ErrTerm.yellow("warning:"), cfg.AgentURL)
	}

	ctx, cancel := context.WithTimeout(ctx, loginCheckTimeout)
	defer cancel()
	hc, err := opts.HTTPClient()
	if err != nil {
		return err
	}
	var projects []api.Project
	if err := newClient(cfg, hc).do(ctx, "GET", api.PathProjects, nil, &projects); err != nil {
		return fmt.Errorf("login failed, nothing was saved: %w", err)
	}
	if err := config.SetKeys(cfg.File, map[string]string{"agent_url": cfg.AgentURL, "token": cfg.Token}); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "%s Logged in to %s: agent_url and token saved in %s\n", opts.IO.ErrTerm.green("✓"), cfg.AgentURL, cfg.File)
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
