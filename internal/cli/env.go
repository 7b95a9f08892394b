package cli

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/api"
)

// newEnvCommand builds `miaobu env`.
func newEnvCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "env", Short: "Manage a project's build variables (values are never shown again)"}
	cmd.AddCommand(newEnvSetCommand(a), newEnvUnsetCommand(a), newEnvListCommand(a))
	return cmd
}

// printEnv shows variable names, one a line.
func printEnv(a *app, vars []api.EnvVar, asJSON bool) error {
	if asJSON {
		return printJSON(a.out, vars)
	}
	if len(vars) == 0 {
		fmt.Fprintln(a.errOut, "No build variables.")
		return nil
	}
	for _, v := range vars {
		fmt.Fprintln(a.out, clean(v.Name))
	}
	return nil
}

func newEnvSetCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "set PROJECT KEY=VALUE...",
		Short: "Set build variables",
		Args:  wrapArgs(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			vars := map[string]string{}
			for _, arg := range args[1:] {
				name, value, ok := strings.Cut(arg, "=")
				if !ok || name == "" {
					return usageError{fmt.Errorf("%q is not KEY=VALUE", arg)}
				}
				vars[name] = value
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var out []api.EnvVar
			if err := c.do(cmd.Context(), "PUT", projectPath(args[0])+"/env", vars, &out); err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.out, out)
			}
			fmt.Fprintf(a.errOut, "%s Set %d variable(s) of %s; they apply from the next deployment\n", a.errTerm.green("✓"), len(vars), args[0])
			return nil
		},
	}
	cmd.ValidArgsFunction = completeProject(a)
	jsonFlag(cmd, &asJSON)
	return cmd
}

func newEnvUnsetCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "unset PROJECT KEY...",
		Short: "Remove build variables",
		Args:  wrapArgs(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var out []api.EnvVar
			for _, name := range args[1:] {
				if err := c.do(cmd.Context(), "DELETE", projectPath(args[0])+"/env/"+url.PathEscape(name), nil, &out); err != nil {
					return err
				}
			}
			if asJSON {
				return printJSON(a.out, out)
			}
			fmt.Fprintf(a.errOut, "%s Removed %s from %s\n", a.errTerm.green("✓"), strings.Join(args[1:], ", "), args[0])
			return nil
		},
	}
	cmd.ValidArgsFunction = completeProject(a)
	jsonFlag(cmd, &asJSON)
	return cmd
}

func newEnvListCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list PROJECT",
		Aliases: []string{"ls"},
		Short:   "List the names of build variables",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var out []api.EnvVar
			if err := c.do(cmd.Context(), "GET", projectPath(args[0])+"/env", nil, &out); err != nil {
				return err
			}
			return printEnv(a, out, asJSON)
		},
	}
	cmd.ValidArgsFunction = completeProject(a)
	jsonFlag(cmd, &asJSON)
	return cmd
}
