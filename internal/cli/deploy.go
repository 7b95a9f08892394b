package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/api"
)

// deployOptions are the inputs of `miaobu deploy`.
type deployOptions struct {
	app     *app
	project string
	commit  string
	branch  string
	wait    bool
	noCache bool
	json    bool
}

func newDeployCommand(a *app) *cobra.Command {
	opts := &deployOptions{app: a}
	cmd := &cobra.Command{
		Use:   "deploy PROJECT [--commit SHA | --branch B] [--wait] [--no-cache]",
		Short: "Deploy a commit now (default: the tip of the project's branch)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.project = args[0]
			if opts.commit != "" && opts.branch != "" {
				return usageError{fmt.Errorf("give --commit or --branch, not both")}
			}
			return opts.run(cmd.Context())
		},
	}
	cmd.ValidArgsFunction = completeProject(a)
	cmd.Flags().StringVar(&opts.commit, "commit", "", "full SHA of the commit to deploy")
	cmd.Flags().StringVar(&opts.branch, "branch", "", "deploy the tip of this branch")
	cmd.Flags().BoolVar(&opts.wait, "wait", false, "show progress until the deployment ends; exit non-zero if it fails")
	cmd.Flags().BoolVar(&opts.noCache, "no-cache", false, "clear the project's build cache first: the build starts from nothing")
	jsonFlag(cmd, &opts.json)
	return cmd
}

func (o *deployOptions) run(ctx context.Context) error {
	c, err := o.app.client()
	if err != nil {
		return err
	}
	var d api.Deployment
	req := api.DeployRequest{CommitSHA: o.commit, Branch: o.branch, NoCache: o.noCache}
	if err := c.do(ctx, "POST", projectPath(o.project)+"/deploy", req, &d); err != nil {
		return err
	}
	fmt.Fprintf(o.app.errOut, "Queued deployment #%d of %s (%s)\n", d.ID, clean(shortSHA(d.CommitSHA)), clean(d.Branch))
	if o.wait {
		if d, err = waitForDeployment(ctx, o.app, c, d.ID); err != nil {
			return err
		}
	}
	if o.json {
		if err := printJSON(o.app.out, d); err != nil {
			return err
		}
	}
	return deploymentOutcome(o.app, d, o.wait)
}

// waitForDeployment shows a deployment's build log as it is written and returns the deployment once
// it has ended.
func waitForDeployment(ctx context.Context, a *app, c *client, id int64) (api.Deployment, error) {
	ref := strconv.FormatInt(id, 10)
	if err := copyLog(ctx, c, ref, true, a.errOut, a.errTerm.colour()); err != nil {
		return api.Deployment{}, err
	}
	// The log ends when the deployment does, or when the agent stops: then wait for its status.
	for {
		d, err := getDeployment(ctx, c, ref)
		if err != nil {
			return d, err
		}
		switch d.Status {
		case api.StatusDeployed, api.StatusFailed, api.StatusCancelled:
			return d, nil
		}
		select {
		case <-ctx.Done():
			return d, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// deploymentOutcome reports how a waited-for deployment ended and fails the command if it did not succeed.
func deploymentOutcome(a *app, d api.Deployment, waited bool) error {
	cleanStrings(&d)
	if !waited {
		if !a.term.isTTY {
			return nil
		}
		fmt.Fprintf(a.errOut, "Follow it with: miaobu deployment logs %d -f\n", d.ID)
		return nil
	}
	switch d.Status {
	case api.StatusDeployed:
		if !d.Live {
			fmt.Fprintf(a.errOut, "%s Deployed: %s (a newer deployment is live)\n", a.errTerm.green("✓"), d.URL)
			return nil
		}
		var p api.Project
		if err := a.call(context.Background(), "GET", projectPath(strconv.FormatInt(d.ProjectID, 10)), nil, &p); err != nil {
			return err
		}
		cleanStrings(&p)
		fmt.Fprintf(a.errOut, "%s Live at %s\n", a.errTerm.green("✓"), p.SiteURL)
		if d.URL != p.SiteURL {
			fmt.Fprintf(a.errOut, "  This deployment stays at %s\n", d.URL)
		}
		return nil
	case api.StatusCancelled:
		fmt.Fprintf(a.errOut, "%s Deployment #%d was cancelled: %s\n", a.errTerm.yellow("!"), d.ID, d.ErrorMessage)
	default:
		fmt.Fprintf(a.errOut, "%s Deployment #%d failed: %s\n", a.errTerm.red("✗"), d.ID, d.ErrorMessage)
		fmt.Fprintf(a.errOut, "See the build log with: miaobu deployment logs %d\n", d.ID)
	}
	return silentError{}
}

func newRollbackCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rollback PROJECT [DEPLOYMENT]",
		Short: "Make an earlier successful deployment live again (default: the one before the live one)",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req api.RollbackRequest
			if len(args) == 2 {
				id, err := strconv.ParseInt(args[1], 10, 64)
				if err != nil {
					return usageError{fmt.Errorf("deployment id must be a number, not %q", args[1])}
				}
				req.DeploymentID = id
			}
			var d api.Deployment
			if err := a.call(cmd.Context(), "POST", projectPath(args[0])+"/rollback", req, &d); err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.out, d)
			}
			cleanStrings(&d)
			fmt.Fprintf(a.errOut, "%s Deployment #%d (%s) is live again: %s\n", a.errTerm.green("✓"), d.ID, shortSHA(d.CommitSHA), d.URL)
			return nil
		},
	}
	cmd.ValidArgsFunction = completeRollback(a)
	jsonFlag(cmd, &asJSON)
	return cmd
}
