package cli

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/api"
)

// newCmdEnv builds `miaobu env`.
func newCmdEnv(f *factory) *cobra.Command {
	cmd := &cobra.Command{Use: "env", Short: "Manage a project's build variables (values are never shown again)"}
	cmd.AddCommand(newCmdEnvSet(f, nil), newCmdEnvUnset(f, nil), newCmdEnvList(f, nil))
	return cmd
}

// envSetOptions are the inputs of `miaobu env set`.
type envSetOptions struct {
	IO      *ioStreams
	Client  func() (*client, error)
	Project string
	Vars    map[string]string
	JSON    bool
}

// newCmdEnvSet builds `miaobu env set`; a test's runF runs instead of envSetRun.
func newCmdEnvSet(f *factory, runF func(context.Context, *envSetOptions) error) *cobra.Command {
	runF = runOr(runF, envSetRun)
	opts := &envSetOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:   "set PROJECT KEY=VALUE...",
		Short: "Set build variables",
		Args:  wrapArgs(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Project, opts.Vars = args[0], map[string]string{}
			for _, arg := range args[1:] {
				name, value, ok := strings.Cut(arg, "=")
				if !ok || name == "" {
					return usageError{fmt.Errorf("%q is not KEY=VALUE", arg)}
				}
				opts.Vars[name] = value
			}
			return runF(cmd.Context(), opts)
		},
	}
	cmd.ValidArgsFunction = completeProject(f)
	jsonFlag(cmd, &opts.JSON)
	return cmd
}

// envSetRun sets the variables.
func envSetRun(ctx context.Context, opts *envSetOptions) error {
	var out []api.EnvVar
	if err := call(ctx, opts.Client, "PUT", projectPath(opts.Project)+"/env", opts.Vars, &out); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, out)
	}
	fmt.Fprintf(opts.IO.ErrOut, "%s Set %d variable(s) of %s; they apply from the next deployment\n", opts.IO.ErrTerm.green("✓"), len(opts.Vars), opts.Project)
	return nil
}

// envUnsetOptions are the inputs of `miaobu env unset`.
type envUnsetOptions struct {
	IO      *ioStreams
	Client  func() (*client, error)
	Project string
	Names   []string
	JSON    bool
}

// newCmdEnvUnset builds `miaobu env unset`; a test's runF runs instead of envUnsetRun.
func newCmdEnvUnset(f *factory, runF func(context.Context, *envUnsetOptions) error) *cobra.Command {
	runF = runOr(runF, envUnsetRun)
	opts := &envUnsetOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:   "unset PROJECT KEY...",
		Short: "Remove build variables",
		Args:  wrapArgs(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Project, opts.Names = args[0], args[1:]
			return runF(cmd.Context(), opts)
		},
	}
	cmd.ValidArgsFunction = completeProject(f)
	jsonFlag(cmd, &opts.JSON)
	return cmd
}

// envUnsetRun removes the variables, one request each.
func envUnsetRun(ctx context.Context, opts *envUnsetOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	var out []api.EnvVar
	for _, name := range opts.Names {
		if err := c.do(ctx, "DELETE", projectPath(opts.Project)+"/env/"+url.PathEscape(name), nil, &out); err != nil {
			return err
		}
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, out)
	}
	fmt.Fprintf(opts.IO.ErrOut, "%s Removed %s from %s\n", opts.IO.ErrTerm.green("✓"), strings.Join(opts.Names, ", "), opts.Project)
	return nil
}

// newCmdEnvList builds `miaobu env list`; a test's runF runs instead of envListRun.
func newCmdEnvList(f *factory, runF func(context.Context, *projectOptions) error) *cobra.Command {
	cmd := newProjectCommand(f, "list PROJECT", "List the names of build variables", runOr(runF, envListRun))
	cmd.Aliases = []string{"ls"}
	return cmd
}

// envListRun shows the variables' names, one a line.
func envListRun(ctx context.Context, opts *projectOptions) error {
	var vars []api.EnvVar
	if err := call(ctx, opts.Client, "GET", projectPath(opts.Project)+"/env", nil, &vars); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, vars)
	}
	if len(vars) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "No build variables.")
		return nil
	}
	for _, v := range vars {
		fmt.Fprintln(opts.IO.Out, clean(v.Name))
	}
	return nil
}
