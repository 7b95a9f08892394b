// Package cli is miaobu's command line: cobra commands, one file per noun, talking to the agent's
// HTTP API; Main maps errors to exit codes in one place.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit statuses of the CLI; a command stopped by SIGINT or SIGTERM has failed and exits with
// exitFailure, as the contract allows no other status.
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

// interruptedError is a command stopped by SIGINT or SIGTERM; next, when set, says what became of
// the work it was watching.
type interruptedError struct{ next string }

func (e interruptedError) Error() string {
	if e.next == "" {
		return "interrupted"
	}
	return "interrupted: " + e.next
}

// Main runs the command line with the process's arguments and streams and returns the exit status;
// SIGINT and SIGTERM cancel the running command's context.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return execute(ctx, newFactory(os.Stdout, os.Stderr), os.Args[1:])
}

// execute runs the command line with args and the factory's streams until ctx is done, and returns
// the exit status.
func execute(ctx context.Context, f *factory, args []string) int {
	root := newCmdRoot(f)
	root.SetArgs(args)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	err := root.ExecuteContext(ctx)
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = interruptedError{}
	}
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, new(silentError)):
		return exitFailure
	case errors.As(err, new(usageError)):
		fmt.Fprintf(f.IO.ErrOut, "error: %s\nRun '%s --help' for usage.\n", clean(err.Error()), commandPath(root, args))
		return exitUsage
	default:
		// An error may quote what the agent or GitHub said.
		fmt.Fprintf(f.IO.ErrOut, "error: %s\n", clean(err.Error()))
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

// newCmdRoot builds the command tree.
func newCmdRoot(f *factory) *cobra.Command {
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
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) { f.flags = cmd.Flags() }
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newCmdAgent(f, nil),
		newCmdImport(f, nil),
		newCmdProject(f),
		newCmdWebhook(f),
		newCmdDeployment(f),
		newCmdDeploy(f, nil),
		newCmdEnv(f),
		newCmdRollback(f, nil),
		newCmdPreview(f),
		newCmdCache(f),
		newCmdStatus(f, nil),
		newCmdBackup(f, nil),
		newCmdNotify(f),
		newCmdDomain(f),
		newCmdDashboard(f, nil),
		newCmdLogin(f, nil),
		newCmdVersion(f, nil),
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

// runOr returns runF, which a test passes to see the options a command parsed, or else run.
func runOr[T any](runF, run func(context.Context, *T) error) func(context.Context, *T) error {
	if runF != nil {
		return runF
	}
	return run
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
