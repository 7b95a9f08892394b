// Package cli is miaobu's command line: cobra commands, one file per noun, talking to the agent's
// HTTP API; Main maps errors to exit codes in one place.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/miaobu/miaobu/internal/config"
)

// Exit statuses of the CLI.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError is a mistake in how a command was called; it exits with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// silentError is a failure already reported to the user; it only sets the exit status.
type silentError struct{}

func (silentError) Error() string { return "" }

// app is what every command shares: the streams and the lazily loaded configuration and client.
type app struct {
	out, errOut io.Writer
	flags       *pflag.FlagSet // the running command's flags, inherited ones included
	cfg         *config.Config
	term        *terminal // styles what goes to out
	errTerm     *terminal // styles what goes to errOut
}

// config loads the configuration once, from the root command's flags.
func (a *app) config() (*config.Config, error) {
	if a.cfg == nil {
		cfg, err := config.Load(a.flags)
		if err != nil {
			return nil, err
		}
		a.cfg = cfg
	}
	return a.cfg, nil
}

// client returns an agent client built from the configuration.
func (a *app) client() (*client, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	return newClient(cfg), nil
}

// call sends one request to the agent, decoding the JSON answer into out when it is not nil.
func (a *app) call(ctx context.Context, method, path string, in, out any) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	return c.do(ctx, method, path, in, out)
}

// Main runs the command line with the process's arguments and streams and returns the exit status.
func Main() int {
	return Run(os.Args[1:], os.Stdout, os.Stderr)
}

// Run runs the command line with the given arguments and streams and returns the exit status.
func Run(args []string, stdout, stderr io.Writer) int {
	a := &app{out: stdout, errOut: stderr, term: newTerminal(stdout), errTerm: newTerminal(stderr)}
	root := newRootCommand(a)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, new(silentError)):
		return exitFailure
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "error: %s\nRun '%s --help' for usage.\n", clean(err.Error()), commandPath(root, args))
		return exitUsage
	default:
		// An error may quote what the agent or GitHub said.
		fmt.Fprintf(stderr, "error: %s\n", clean(err.Error()))
		return exitFailure
	}
}

// commandPath names the command args would run, for the usage hint.
func commandPath(root *cobra.Command, args []string) string {
	if cmd, _, err := root.Find(args); err == nil {
		return cmd.CommandPath()
	}
	return root.Name()
}

// newRootCommand builds the command tree.
func newRootCommand(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:           "miaobu",
		Short:         "Push-to-deploy for static frontends, on your own server",
		Long:          "miaobu deploys static frontends on every git push: `miaobu agent` receives GitHub webhooks and builds,\nevery other command talks to the agent's API.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	flags := root.PersistentFlags()
	flags.String("config", "", "config file (default $XDG_CONFIG_HOME/miaobu/config.yaml)")
	flags.String("data-dir", "", "data directory (default $XDG_DATA_HOME/miaobu)")
	flags.String("agent", "", "agent URL (default http://<listen>)")
	flags.String("token", "", "admin token (default: the agent's <data_dir>/admin-token)")
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) { a.flags = cmd.Flags() }
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newAgentCommand(a),
		newImportCommand(a),
		newProjectCommand(a),
		newWebhookCommand(a),
		newDeploymentCommand(a),
		newDeployCommand(a),
		newEnvCommand(a),
		newRollbackCommand(a),
		newCacheCommand(a),
		newStatusCommand(a),
		newBackupCommand(a),
		newNotifyCommand(a),
		newDomainCommand(a),
		newLoginCommand(a),
		newVersionCommand(a),
	)
	requireSubcommands(root)
	return root
}

// requireSubcommands makes a command group called with no subcommand, or an unknown one, a usage
// error (exit status 2) instead of printing help and succeeding; bare `miaobu` still shows help.
func requireSubcommands(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		requireSubcommands(sub)
	}
	if !cmd.HasSubCommands() || cmd.Runnable() {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usageError{fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
		}
		if !cmd.HasParent() {
			return cmd.Help()
		}
		var names []string
		for _, sub := range cmd.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		return usageError{fmt.Errorf("%s needs a subcommand: %s", cmd.CommandPath(), strings.Join(names, ", "))}
	}
}

// exactArgs is cobra.ExactArgs whose error is a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return wrapArgs(cobra.ExactArgs(n))
}

// rangeArgs is cobra.RangeArgs whose error is a usage error.
func rangeArgs(min, max int) cobra.PositionalArgs {
	return wrapArgs(cobra.RangeArgs(min, max))
}

// wrapArgs turns an argument validator's error into a usage error.
func wrapArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}
