package cli

import (
	"context"
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/api"
)

// newCmdDomain builds `miaobu domain`.
func newCmdDomain(f *factory) *cobra.Command {
	cmd := &cobra.Command{Use: "domain", Short: "Serve a project's site at custom domains"}
	cmd.AddCommand(newCmdDomainAdd(f, nil), newCmdDomainRemove(f, nil), newCmdDomainList(f, nil))
	return cmd
}

// domainOptions are the inputs of `miaobu domain add` and `miaobu domain remove`.
type domainOptions struct {
	IO      *ioStreams
	Client  func() (*client, error)
	Project string
	Domain  string
	JSON    bool
}

// newDomainCommand builds a command named by use on a PROJECT and a DOMAIN that runs run.
func newDomainCommand(f *factory, use, short string, run func(context.Context, *domainOptions) error) *cobra.Command {
	opts := &domainOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Project, opts.Domain = args[0], args[1]
			return run(cmd.Context(), opts)
		},
	}
	cmd.ValidArgsFunction = completeProject(f)
	jsonFlag(cmd, &opts.JSON)
	return cmd
}

// newCmdDomainAdd builds `miaobu domain add`; a test's runF runs instead of domainAddRun.
func newCmdDomainAdd(f *factory, runF func(context.Context, *domainOptions) error) *cobra.Command {
	return newDomainCommand(f, "add PROJECT DOMAIN", "Serve the project's live site at DOMAIN and show the DNS record to create",
		runOr(runF, domainAddRun))
}

// domainAddRun attaches the domain and tells which DNS record to create.
func domainAddRun(ctx context.Context, opts *domainOptions) error {
	var added api.DomainAdded
	if err := call(ctx, opts.Client, "POST", api.DomainsPath(opts.Project), api.DomainCreate{Domain: opts.Domain}, &added); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, added)
	}
	printDomainAdded(opts.IO, added)
	return nil
}

// printDomainAdded tells where a new domain is served, the DNS records to create and whether the
// name already points at the agent.
func printDomainAdded(io *ioStreams, added api.DomainAdded) {
	name := clean(added.Domain.Domain)
	fmt.Fprintf(io.ErrOut, "%s %s now serves %s\n", io.ErrTerm.green("✓"), name, clean(added.Project))
	if len(added.DNSRecords) == 0 {
		fmt.Fprintf(io.Out, "Create an A (and AAAA) record for %s with this server's public address.\n", name)
	} else {
		fmt.Fprintln(io.Out, "Create this DNS record:")
		for _, r := range added.DNSRecords {
			fmt.Fprintf(io.Out, "  %s\t%s\t%s\n", clean(r.Name), clean(r.Type), clean(r.Value))
		}
	}
	switch {
	case len(added.Addresses) == 0:
		fmt.Fprintf(io.ErrOut, "%s does not resolve yet.\n", name)
	case added.PointsHere:
		fmt.Fprintf(io.ErrOut, "%s %s already points at this server.\n", io.ErrTerm.green("✓"), name)
	default:
		fmt.Fprintf(io.ErrOut, "%s %s resolves to %s, not to this server.\n", io.ErrTerm.yellow("!"), name, clean(fmt.Sprint(added.Addresses)))
	}
}

// newCmdDomainRemove builds `miaobu domain remove`; a test's runF runs instead of domainRemoveRun.
func newCmdDomainRemove(f *factory, runF func(context.Context, *domainOptions) error) *cobra.Command {
	cmd := newDomainCommand(f, "remove PROJECT DOMAIN", "Stop serving the project's site at DOMAIN", runOr(runF, domainRemoveRun))
	cmd.Aliases = []string{"rm"}
	return cmd
}

// domainRemoveRun detaches the domain.
func domainRemoveRun(ctx context.Context, opts *domainOptions) error {
	var left []api.Domain
	if err := call(ctx, opts.Client, "DELETE", api.DomainsPath(opts.Project)+"/"+url.PathEscape(opts.Domain), nil, &left); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, left)
	}
	name, err := api.DomainName(opts.Domain)
	if err != nil {
		name = opts.Domain
	}
	fmt.Fprintf(opts.IO.ErrOut, "%s Removed %s from %s\n", opts.IO.ErrTerm.green("✓"), clean(name), clean(opts.Project))
	return nil
}

// domainListOptions are the inputs of `miaobu domain list`.
type domainListOptions struct {
	IO     *ioStreams
	Client func() (*client, error)
	// Project is the project whose domains to list; "" lists those of every project.
	Project string
	JSON    bool
}

// newCmdDomainList builds `miaobu domain list`; a test's runF runs instead of domainListRun.
func newCmdDomainList(f *factory, runF func(context.Context, *domainListOptions) error) *cobra.Command {
	runF = runOr(runF, domainListRun)
	opts := &domainListOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:     "list [PROJECT]",
		Aliases: []string{"ls"},
		Short:   "List custom domains, of one project or of all",
		Args:    wrapArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Project = args[0]
			}
			return runF(cmd.Context(), opts)
		},
	}
	cmd.ValidArgsFunction = completeProject(f)
	jsonFlag(cmd, &opts.JSON)
	return cmd
}

// domainListRun lists the domains of the project, or of every project, as a table.
func domainListRun(ctx context.Context, opts *domainListOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	var refs []string
	if opts.Project != "" {
		refs = []string{opts.Project}
	} else {
		var projects []api.Project
		if err := c.do(ctx, "GET", api.PathProjects, nil, &projects); err != nil {
			return err
		}
		for _, p := range projects {
			refs = append(refs, fmt.Sprint(p.ID))
		}
	}
	domains := []api.Domain{}
	for _, ref := range refs {
		var some []api.Domain
		if err := c.do(ctx, "GET", api.DomainsPath(ref), nil, &some); err != nil {
			return err
		}
		domains = append(domains, some...)
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, domains)
	}
	if len(domains) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "No custom domains.")
		return nil
	}
	rows := make([][]string, 0, len(domains))
	for _, d := range domains {
		rows = append(rows, []string{clean(d.Domain), clean(d.Project)})
	}
	return opts.IO.Term.table(opts.IO.Out, []string{"DOMAIN", "PROJECT"}, rows)
}
