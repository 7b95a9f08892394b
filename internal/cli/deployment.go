package cli

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/api"
)

// newCmdDeployment builds `miaobu deployment`.
func newCmdDeployment(f *factory) *cobra.Command {
	cmd := &cobra.Command{Use: "deployment", Aliases: []string{"deployments"}, Short: "Inspect and control deployments"}
	cmd.AddCommand(newCmdDeploymentList(f, nil), newCmdDeploymentShow(f, nil), newCmdDeploymentLogs(f, nil),
		newCmdDeploymentCancel(f, nil))
	return cmd
}

// deploymentPath is the API path of a deployment.
func deploymentPath(id string) string { return api.PathDeployments + "/" + url.PathEscape(id) }

// deploymentID checks that a deployment argument is a number.
func deploymentID(arg string) (string, error) {
	if _, err := strconv.ParseInt(arg, 10, 64); err != nil {
		return "", usageError{fmt.Errorf("deployment id must be a number, not %q", arg)}
	}
	return arg, nil
}

// historyOptions are the inputs of a history listing: of deployments or of webhook deliveries.
type historyOptions struct {
	IO     *ioStreams
	Client func() (*client, error)
	// Project is the project whose history is listed; empty means every project's.
	Project string
	Limit   int
	JSON    bool
}

// newHistoryCommand builds a history listing of what, with an optional PROJECT, that fills opts
// and runs run.
func newHistoryCommand(f *factory, opts *historyOptions, use, short, what string, run func(context.Context) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Limit < 1 {
				return usageError{fmt.Errorf("--limit must be at least 1")}
			}
			if len(args) == 1 {
				opts.Project = args[0]
			}
			return run(cmd.Context())
		},
	}
	cmd.ValidArgsFunction = completeProject(f)
	cmd.Flags().IntVar(&opts.Limit, "limit", 20, "how many "+what+" to show")
	jsonFlag(cmd, &opts.JSON)
	return cmd
}

// deploymentListOptions are the inputs of `miaobu deployment list`.
type deploymentListOptions struct {
	historyOptions
	// Environment is production or preview, and Alias one preview's alias; empty means any.
	Environment, Alias string
}

// newCmdDeploymentList builds `miaobu deployment list`; a test's runF runs instead of deploymentListRun.
func newCmdDeploymentList(f *factory, runF func(context.Context, *deploymentListOptions) error) *cobra.Command {
	runF = runOr(runF, deploymentListRun)
	opts := &deploymentListOptions{historyOptions: historyOptions{IO: f.IO, Client: f.Client}}
	cmd := newHistoryCommand(f, &opts.historyOptions, "list [PROJECT] [--limit N] [--environment production|preview] [--alias ALIAS]",
		"List deployments, newest first", "deployments", func(ctx context.Context) error {
			if opts.Environment != "" && opts.Environment != "production" && opts.Environment != "preview" {
				return usageError{fmt.Errorf("--environment must be production or preview, not %q", opts.Environment)}
			}
			return runF(ctx, opts)
		})
	cmd.Aliases = []string{"ls"}
	cmd.Flags().StringVar(&opts.Environment, "environment", "", "only production or only preview deployments")
	cmd.Flags().StringVar(&opts.Alias, "alias", "", "only the deployments of one preview alias, such as pr-12")
	return cmd
}

// environmentOf names where a deployment goes: production, or its preview alias.
func environmentOf(d api.Deployment) string {
	if d.Alias == "" {
		return "production"
	}
	return "preview " + d.Alias
}

// deploymentListRun lists the deployments.
func deploymentListRun(ctx context.Context, opts *deploymentListOptions) error {
	filters := url.Values{}
	if opts.Environment != "" {
		filters.Set("environment", opts.Environment)
	}
	if opts.Alias != "" {
		filters.Set("alias", opts.Alias)
	}
	deployments, slugs, err := fetchHistory[api.Deployment](ctx, &opts.historyOptions, api.PathDeployments, filters, "No deployments yet.")
	if err != nil || slugs == nil {
		return err
	}
	t := opts.IO.Term
	rows := make([][]string, 0, len(deployments))
	for _, d := range deployments {
		status := t.status(d.Status)
		if d.Live {
			status += " " + t.green("(live)")
		}
		rows = append(rows, []string{strconv.FormatInt(d.ID, 10), slugs[d.ProjectID], status,
			shortSHA(d.CommitSHA), d.Branch, environmentOf(d), d.Trigger, ago(d.CreatedAt), firstLine(d.CommitMessage)})
	}
	return t.table(opts.IO.Out, []string{"ID", "PROJECT", "STATUS", "COMMIT", "BRANCH", "TO", "TRIGGER", "CREATED", "MESSAGE"}, rows)
}

// projectSlugs maps every project's id to its slug, for tables that name projects.
func projectSlugs(ctx context.Context, c *client) (map[int64]string, error) {
	var projects []api.Project
	if err := c.do(ctx, "GET", api.PathProjects, nil, &projects); err != nil {
		return nil, err
	}
	cleanStrings(&projects)
	slugs := make(map[int64]string, len(projects))
	for _, p := range projects {
		slugs[p.ID] = p.Slug
	}
	return slugs, nil
}

// fetchHistory GETs the history listing at path, narrowed by filters, and, unless it printed it as
// JSON or said none (nothing more to show: slugs is nil), returns its rows with the slugs of the
// projects they name.
func fetchHistory[T any](ctx context.Context, opts *historyOptions, path string, filters url.Values, none string) (rows []T, slugs map[int64]string, err error) {
	c, err := opts.Client()
	if err != nil {
		return nil, nil, err
	}
	if err := c.do(ctx, "GET", path+historyQuery(opts.Limit, opts.Project, filters), nil, &rows); err != nil {
		return nil, nil, err
	}
	if opts.JSON {
		return nil, nil, printJSON(opts.IO.Out, rows)
	}
	cleanStrings(&rows)
	if len(rows) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, none)
		return nil, nil, nil
	}
	slugs, err = projectSlugs(ctx, c)
	return rows, slugs, err
}

// historyQuery is the query string of a history listing: the limit, the project unless it is
// empty, and filters.
func historyQuery(limit int, project string, filters url.Values) string {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	for name, values := range filters {
		q[name] = values
	}
	if project != "" {
		q.Set("project_id", project)
	}
	return "?" + q.Encode()
}

// getDeployment fetches one deployment.
func getDeployment(ctx context.Context, c *client, id string) (api.Deployment, error) {
	var d api.Deployment
	err := c.do(ctx, "GET", deploymentPath(id), nil, &d)
	return d, err
}

// printDeployment shows a deployment's details.
func printDeployment(ios *ioStreams, d api.Deployment) error {
	cleanStrings(&d)
	t := ios.Term
	status := t.status(d.Status)
	if d.Live {
		status += " " + t.green("(live)")
	}
	pairs := [][2]string{
		{"Deployment", fmt.Sprintf("#%d of project %d", d.ID, d.ProjectID)},
		{"Status", status},
		{"Commit", fmt.Sprintf("%s %s", shortSHA(d.CommitSHA), firstLine(d.CommitMessage))},
		{"Author", orDash(d.CommitAuthor)},
		{"Branch", d.Branch},
		{"To", environmentOf(d)},
		{"Trigger", d.Trigger},
		{"Created", d.CreatedAt.Local().Format("2006-01-02 15:04:05")},
	}
	if d.BuildTimeSeconds != nil {
		pairs = append(pairs, [2]string{"Build time", fmt.Sprintf("%.1fs", *d.BuildTimeSeconds)})
	}
	if d.URL != "" {
		pairs = append(pairs, [2]string{"URL", d.URL})
	}
	// The first line of an error says what failed; the excerpt of the build's output follows the fields.
	first, excerpt, _ := strings.Cut(d.ErrorMessage, "\n")
	if first != "" {
		pairs = append(pairs, [2]string{"Error", t.red(first)})
	}
	if err := t.fields(ios.Out, pairs); err != nil || excerpt == "" {
		return err
	}
	_, err := fmt.Fprintf(ios.Out, "\n%s\n", excerpt)
	return err
}

// deploymentActionOptions are the inputs of a command on one deployment: show or cancel.
type deploymentActionOptions struct {
	IO     *ioStreams
	Client func() (*client, error)
	ID     string
	JSON   bool
}

// newCmdDeploymentShow builds `miaobu deployment show`; a test's runF runs instead of deploymentShowRun.
func newCmdDeploymentShow(f *factory, runF func(context.Context, *deploymentActionOptions) error) *cobra.Command {
	cmd := newDeploymentActionCommand(f, "show", "Show a deployment", runOr(runF, deploymentShowRun))
	cmd.ValidArgsFunction = completeDeployment(f, anyDeployment)
	return cmd
}

// deploymentShowRun shows the deployment.
func deploymentShowRun(ctx context.Context, opts *deploymentActionOptions) error {
	return deploymentAction(ctx, opts, "GET", "", func(d api.Deployment) error { return printDeployment(opts.IO, d) })
}

// newCmdDeploymentCancel builds `miaobu deployment cancel`; a test's runF runs instead of
// deploymentCancelRun.
func newCmdDeploymentCancel(f *factory, runF func(context.Context, *deploymentActionOptions) error) *cobra.Command {
	cmd := newDeploymentActionCommand(f, "cancel", "Cancel a queued or running deployment", runOr(runF, deploymentCancelRun))
	cmd.ValidArgsFunction = completeDeployment(f, unfinished)
	return cmd
}

// deploymentCancelRun cancels the deployment.
func deploymentCancelRun(ctx context.Context, opts *deploymentActionOptions) error {
	return deploymentAction(ctx, opts, "POST", "/cancel", func(d api.Deployment) error {
		_, err := fmt.Fprintf(opts.IO.ErrOut, "%s Cancelled deployment #%d\n", opts.IO.ErrTerm.green("✓"), d.ID)
		return err
	})
}

// newDeploymentActionCommand builds a command named name on one deployment ID that runs run.
func newDeploymentActionCommand(f *factory, name, short string, run func(context.Context, *deploymentActionOptions) error) *cobra.Command {
	opts := &deploymentActionOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:   name + " ID",
		Short: short,
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := deploymentID(args[0])
			if err != nil {
				return err
			}
			opts.ID = id
			return run(cmd.Context(), opts)
		},
	}
	jsonFlag(cmd, &opts.JSON)
	return cmd
}

// deploymentAction sends method to the deployment's route plus suffix and shows the deployment
// answered, as JSON with --json.
func deploymentAction(ctx context.Context, opts *deploymentActionOptions, method, suffix string, show func(api.Deployment) error) error {
	var d api.Deployment
	if err := call(ctx, opts.Client, method, deploymentPath(opts.ID)+suffix, nil, &d); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, d)
	}
	return show(d)
}

// logsPath is the API path of a deployment's build log.
func logsPath(id string, follow bool) string {
	p := deploymentPath(id) + "/logs"
	if follow {
		p += "?follow=1"
	}
	return p
}

// copyLog writes a deployment's build log to out, following it until the deployment ends when follow
// is set. The log is the output of a repository's build: escape sequences other than colours are
// always dropped, and colours too unless keepColour is set.
func copyLog(ctx context.Context, c *client, id string, follow bool, out io.Writer, keepColour bool) error {
	body, err := c.stream(ctx, logsPath(id, follow))
	if err != nil {
		return err
	}
	defer body.Close()
	log := newLogWriter(out, keepColour)
	if _, err := io.Copy(log, body); err != nil && ctx.Err() == nil {
		return fmt.Errorf("reading the log of deployment %s: %w", id, err)
	}
	if err := log.Close(); err != nil {
		return err
	}
	return ctx.Err()
}

// deploymentLogsOptions are the inputs of `miaobu deployment logs`.
type deploymentLogsOptions struct {
	IO     *ioStreams
	Client func() (*client, error)
	ID     string
	Follow bool
}

// newCmdDeploymentLogs builds `miaobu deployment logs`; a test's runF runs instead of deploymentLogsRun.
func newCmdDeploymentLogs(f *factory, runF func(context.Context, *deploymentLogsOptions) error) *cobra.Command {
	runF = runOr(runF, deploymentLogsRun)
	opts := &deploymentLogsOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:   "logs ID [-f]",
		Short: "Show a deployment's build log",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := deploymentID(args[0])
			if err != nil {
				return err
			}
			opts.ID = id
			return runF(cmd.Context(), opts)
		},
	}
	cmd.ValidArgsFunction = completeDeployment(f, anyDeployment)
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "follow the log until the deployment ends")
	return cmd
}

// deploymentLogsRun writes the build log to stdout.
func deploymentLogsRun(ctx context.Context, opts *deploymentLogsOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	return copyLog(ctx, c, opts.ID, opts.Follow, opts.IO.Out, opts.IO.Term.colour())
}
