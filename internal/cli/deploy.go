package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/api"
)

// deployOptions are the inputs of `miaobu deploy`.
type deployOptions struct {
	IO      *ioStreams
	Client  func() (*client, error)
	Project string
	Commit  string
	Branch  string
	Wait    bool
	NoCache bool
	JSON    bool
}

// newCmdDeploy builds `miaobu deploy`; a test's runF runs instead of deployRun.
func newCmdDeploy(f *factory, runF func(context.Context, *deployOptions) error) *cobra.Command {
	runF = runOr(runF, deployRun)
	opts := &deployOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:   "deploy PROJECT [--commit SHA | --branch B] [--wait] [--no-cache]",
		Short: "Deploy a commit now (default: the tip of the project's branch)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Project = args[0]
			if opts.Commit != "" && opts.Branch != "" {
				return usageError{fmt.Errorf("give --commit or --branch, not both")}
			}
			return runF(cmd.Context(), opts)
		},
	}
	cmd.ValidArgsFunction = completeProject(f)
	cmd.Flags().StringVar(&opts.Commit, "commit", "", "full SHA of the commit to deploy")
	cmd.Flags().StringVar(&opts.Branch, "branch", "", "deploy the tip of this branch")
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "show progress until the deployment ends; exit non-zero if it fails")
	cmd.Flags().BoolVar(&opts.NoCache, "no-cache", false, "clear the project's build cache first: the build starts from nothing")
	jsonFlag(cmd, &opts.JSON)
	return cmd
}

// deployRun queues the deployment and, with --wait, follows it to its end.
func deployRun(ctx context.Context, opts *deployOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	var d api.Deployment
	req := api.DeployRequest{CommitSHA: opts.Commit, Branch: opts.Branch, NoCache: opts.NoCache}
	if err := c.do(ctx, "POST", projectPath(opts.Project)+"/deploy", req, &d); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "Queued deployment #%d of %s (%s)\n", d.ID, clean(shortSHA(d.CommitSHA)), clean(d.Branch))
	if opts.Wait {
		id := d.ID
		if d, err = waitForDeployment(ctx, opts.IO, c, id); err != nil {
			if errors.Is(err, context.Canceled) {
				return interruptedError{fmt.Sprintf("deployment #%d goes on in the agent; follow it with: miaobu deployment logs %d -f", id, id)}
			}
			return err
		}
	}
	if opts.JSON {
		if err := printJSON(opts.IO.Out, d); err != nil {
			return err
		}
	}
	return deploymentOutcome(ctx, opts.IO, c, d, opts.Wait)
}

// waitForDeployment shows a deployment's build log as it is written and returns the deployment once
// it has ended.
func waitForDeployment(ctx context.Context, ios *ioStreams, c *client, id int64) (api.Deployment, error) {
	ref := strconv.FormatInt(id, 10)
	if err := copyLog(ctx, c, ref, true, ios.ErrOut, ios.ErrTerm.colour()); err != nil {
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
func deploymentOutcome(ctx context.Context, ios *ioStreams, c *client, d api.Deployment, waited bool) error {
	cleanStrings(&d)
	if !waited {
		if !ios.Term.isTTY {
			return nil
		}
		fmt.Fprintf(ios.ErrOut, "Follow it with: miaobu deployment logs %d -f\n", d.ID)
		return nil
	}
	switch d.Status {
	case api.StatusDeployed:
		if !d.Live {
			fmt.Fprintf(ios.ErrOut, "%s Deployed: %s (a newer deployment is live)\n", ios.ErrTerm.green("✓"), d.URL)
			return nil
		}
		if d.Environment == "preview" {
			fmt.Fprintf(ios.ErrOut, "%s Live at %s\n", ios.ErrTerm.green("✓"), d.URL)
			return nil
		}
		var p api.Project
		if err := c.do(ctx, "GET", projectPath(strconv.FormatInt(d.ProjectID, 10)), nil, &p); err != nil {
			return err
		}
		cleanStrings(&p)
		fmt.Fprintf(ios.ErrOut, "%s Live at %s\n", ios.ErrTerm.green("✓"), p.SiteURL)
		if d.URL != p.SiteURL {
			fmt.Fprintf(ios.ErrOut, "  This deployment stays at %s\n", d.URL)
		}
		return nil
	case api.StatusCancelled:
		fmt.Fprintf(ios.ErrOut, "%s Deployment #%d was cancelled: %s\n", ios.ErrTerm.yellow("!"), d.ID, d.ErrorMessage)
	default:
		fmt.Fprintf(ios.ErrOut, "%s Deployment #%d failed: %s\n", ios.ErrTerm.red("✗"), d.ID, d.ErrorMessage)
		fmt.Fprintf(ios.ErrOut, "See the build log with: miaobu deployment logs %d\n", d.ID)
	}
	return silentError{}
}

// rollbackOptions are the inputs of `miaobu rollback`.
type rollbackOptions struct {
	IO      *ioStreams
	Client  func() (*client, error)
	Project string
	// DeploymentID is the deployment to make live; 0 means the one before the live one.
	DeploymentID int64
	JSON         bool
}

// newCmdRollback builds `miaobu rollback`; a test's runF runs instead of rollbackRun.
func newCmdRollback(f *factory, runF func(context.Context, *rollbackOptions) error) *cobra.Command {
	runF = runOr(runF, rollbackRun)
	opts := &rollbackOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:   "rollback PROJECT [DEPLOYMENT]",
		Short: "Make an earlier successful deployment live again (default: the one before the live one)",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Project = args[0]
			if len(args) == 2 {
				id, err := strconv.ParseInt(args[1], 10, 64)
				if err != nil {
					return usageError{fmt.Errorf("deployment id must be a number, not %q", args[1])}
				}
				opts.DeploymentID = id
			}
			return runF(cmd.Context(), opts)
		},
	}
	cmd.ValidArgsFunction = completeRollback(f)
	jsonFlag(cmd, &opts.JSON)
	return cmd
}

// rollbackRun makes the deployment live again.
func rollbackRun(ctx context.Context, opts *rollbackOptions) error {
	var d api.Deployment
	if err := call(ctx, opts.Client, "POST", projectPath(opts.Project)+"/rollback", api.RollbackRequest{DeploymentID: opts.DeploymentID}, &d); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, d)
	}
	cleanStrings(&d)
	fmt.Fprintf(opts.IO.ErrOut, "%s Deployment #%d (%s) is live again: %s\n", opts.IO.ErrTerm.green("✓"), d.ID, shortSHA(d.CommitSHA), d.URL)
	return nil
}
