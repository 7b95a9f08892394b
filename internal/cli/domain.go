package cli

import (
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/api"
)

// newDomainCommand builds `miaobu domain`.
func newDomainCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "domain", Short: "Serve a project's site at custom domains"}
	cmd.AddCommand(newDomainAddCommand(a), newDomainRemoveCommand(a), newDomainListCommand(a))
	return cmd
}

func newDomainAddCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "add PROJECT DOMAIN",
		Short: "Serve the project's live site at DOMAIN and show the DNS record to create",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var added api.DomainAdded
			if err := a.call(cmd.Context(), "POST", api.DomainsPath(args[0]), api.DomainCreate{Domain: args[1]}, &added); err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.out, added)
			}
			printDomainAdded(a, added)
			return nil
		},
	}
	cmd.ValidArgsFunction = completeProject(a)
	jsonFlag(cmd, &asJSON)
	return cmd
}

// printDomainAdded tells where a new domain is served, the DNS records to create and whether the
// name already points at the agent.
func printDomainAdded(a *app, added api.DomainAdded) {
	name := clean(added.Domain.Domain)
	fmt.Fprintf(a.errOut, "%s %s now serves %s\n", a.errTerm.green("✓"), name, clean(added.Project))
	if len(added.DNSRecords) == 0 {
		fmt.Fprintf(a.out, "Create an A (and AAAA) record for %s with this server's public address.\n", name)
	} else {
		fmt.Fprintln(a.out, "Create this DNS record:")
		for _, r := range added.DNSRecords {
			fmt.Fprintf(a.out, "  %s\t%s\t%s\n", clean(r.Name), clean(r.Type), clean(r.Value))
		}
	}
	switch {
	case len(added.Addresses) == 0:
		fmt.Fprintf(a.errOut, "%s does not resolve yet.\n", name)
	case added.PointsHere:
		fmt.Fprintf(a.errOut, "%s %s already points at this server.\n", a.errTerm.green("✓"), name)
	default:
		fmt.Fprintf(a.errOut, "%s %s resolves to %s, not to this server.\n", a.errTerm.yellow("!"), name, clean(fmt.Sprint(added.Addresses)))
	}
}

func newDomainRemoveCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "remove PROJECT DOMAIN",
		Aliases: []string{"rm"},
		Short:   "Stop serving the project's site at DOMAIN",
		Args:    exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var left []api.Domain
			if err := a.call(cmd.Context(), "DELETE", api.DomainsPath(args[0])+"/"+url.PathEscape(args[1]), nil, &left); err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.out, left)
			}
			fmt.Fprintf(a.errOut, "%s Removed %s from %s\n", a.errTerm.green("✓"), clean(args[1]), clean(args[0]))
			return nil
		},
	}
	cmd.ValidArgsFunction = completeProject(a)
	jsonFlag(cmd, &asJSON)
	return cmd
}

func newDomainListCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list [PROJECT]",
		Aliases: []string{"ls"},
		Short:   "List custom domains, of one project or of all",
		Args:    wrapArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			refs := args
			if len(refs) == 0 {
				var projects []api.Project
				if err := a.call(cmd.Context(), "GET", api.PathProjects, nil, &projects); err != nil {
					return err
				}
				for _, p := range projects {
					refs = append(refs, fmt.Sprint(p.ID))
				}
			}
			domains := []api.Domain{}
			for _, ref := range refs {
				var some []api.Domain
				if err := a.call(cmd.Context(), "GET", api.DomainsPath(ref), nil, &some); err != nil {
					return err
				}
				domains = append(domains, some...)
			}
			if asJSON {
				return printJSON(a.out, domains)
			}
			if len(domains) == 0 {
				fmt.Fprintln(a.errOut, "No custom domains.")
				return nil
			}
			rows := make([][]string, 0, len(domains))
			for _, d := range domains {
				rows = append(rows, []string{clean(d.Domain), clean(d.Project)})
			}
			return a.term.table(a.out, []string{"DOMAIN", "PROJECT"}, rows)
		},
	}
	cmd.ValidArgsFunction = completeProject(a)
	jsonFlag(cmd, &asJSON)
	return cmd
}
