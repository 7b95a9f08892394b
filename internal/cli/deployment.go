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

// newDeploymentCommand builds `miaobu deployment`.
func newDeploymentCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "deployment", Aliases: []string{"deployments"}, Short: "Inspect and control deployments"}
	cmd.AddCommand(newDeploymentListCommand(a), newDeploymentShowCommand(a), newDeploymentLogsCommand(a),
		newDeploymentCancelCommand(a))
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

func newDeploymentListCommand(a *app) *cobra.Command {
	var (
		limit              int
		environment, alias string
		asJSON             bool
	)
	cmd := &cobra.Command{
		Use:     "list [PROJECT] [--limit N] [--environment production|preview] [--alias ALIAS]",
		Aliases: []string{"ls"},
		Short:   "List deployments, newest first",
		Args:    rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			query, err := historyQuery(limit, args)
			if err != nil {
				return err
			}
			if environment != "" && environment != "production" && environment != "preview" {
				return usageError{fmt.Errorf("--environment must be production or preview, not %q", environment)}
			}
			for name, value := range map[string]string{"environment": environment, "alias": alias} {
				if value != "" {
					query += "&" + name + "=" + url.QueryEscape(value)
				}
			}
			var deployments []api.Deployment
			if err := a.call(cmd.Context(), "GET", api.PathDeployments+query, nil, &deployments); err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.out, deployments)
			}
			cleanStrings(&deployments)
			if len(deployments) == 0 {
				fmt.Fprintln(a.errOut, "No deployments yet.")
				return nil
			}
			slugs, err := projectSlugs(cmd.Context(), a)
			if err != nil {
				return err
			}
			rows := make([][]string, 0, len(deployments))
			for _, d := range deployments {
				status := a.term.status(d.Status)
				if d.Live {
					status += " " + a.term.green("(live)")
				}
				rows = append(rows, []string{strconv.FormatInt(d.ID, 10), slugs[d.ProjectID], status,
					shortSHA(d.CommitSHA), d.Branch, environmentOf(d), d.Trigger, ago(d.CreatedAt), firstLine(d.CommitMessage)})
			}
			return a.term.table(a.out, []string{"ID", "PROJECT", "STATUS", "COMMIT", "BRANCH", "TO", "TRIGGER", "CREATED", "MESSAGE"}, rows)
		},
	}
	cmd.ValidArgsFunction = completeProject(a)
	cmd.Flags().IntVar(&limit, "limit", 20, "how many deployments to show")
	cmd.Flags().StringVar(&environment, "environment", "", "only production or only preview deployments")
	cmd.Flags().StringVar(&alias, "alias", "", "only the deployments of one preview alias, such as pr-12")
	jsonFlag(cmd, &asJSON)
	return cmd
}

// environmentOf names where a deployment goes: production, or its preview alias.
func environmentOf(d api.Deployment) string {
	if d.Alias == "" {
		return "production"
	}
	return "preview " + d.Alias
}

// projectSlugs maps every project's id to its slug, for tables that name projects.
func projectSlugs(ctx context.Context, a *app) (map[int64]string, error) {
	var projects []api.Project
	if err := a.call(ctx, "GET", api.PathProjects, nil, &projects); err != nil {
		return nil, err
	}
	cleanStrings(&projects)
	slugs := make(map[int64]string, len(projects))
	for _, p := range projects {
		slugs[p.ID] = p.Slug
	}
	return slugs, nil
}

// historyQuery is the query string of a history listing: --limit, and the optional PROJECT argument.
func historyQuery(limit int, args []string) (string, error) {
	if limit < 1 {
		return "", usageError{fmt.Errorf("--limit must be at least 1")}
	}
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if len(args) == 1 {
		q.Set("project_id", args[0])
	}
	return "?" + q.Encode(), nil
}

// getDeployment fetches one deployment.
func getDeployment(ctx context.Context, c *client, id string) (api.Deployment, error) {
	var d api.Deployment
	err := c.do(ctx, "GET", deploymentPath(id), nil, &d)
	return d, err
}

// printDeployment shows a deployment's details.
func printDeployment(a *app, d api.Deployment) error {
	cleanStrings(&d)
	status := a.term.status(d.Status)
	if d.Live {
		status += " " + a.term.green("(live)")
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
		pairs = append(pairs, [2]string{"Error", a.term.red(first)})
	}
	if err := a.term.fields(a.out, pairs); err != nil || excerpt == "" {
		return err
	}
	_, err := fmt.Fprintf(a.out, "\n%s\n", excerpt)
	return err
}

func newDeploymentShowCommand(a *app) *cobra.Command {
	cmd := newDeploymentActionCommand(a, "show", "Show a deployment", "GET", "",
		func(d api.Deployment) error { return printDeployment(a, d) })
	cmd.ValidArgsFunction = completeDeployment(a, anyDeployment)
	return cmd
}

func newDeploymentCancelCommand(a *app) *cobra.Command {
	cmd := newDeploymentActionCommand(a, "cancel", "Cancel a queued or running deployment", "POST", "/cancel",
		func(d api.Deployment) error {
			_, err := fmt.Fprintf(a.errOut, "%s Cancelled deployment #%d\n", a.errTerm.green("✓"), d.ID)
			return err
		})
	cmd.ValidArgsFunction = completeDeployment(a, unfinished)
	return cmd
}

// newDeploymentActionCommand builds a command on one deployment ID: it sends method to the
// deployment's route plus suffix and shows the deployment answered, as JSON with --json.
func newDeploymentActionCommand(a *app, name, short, method, suffix string, show func(api.Deployment) error) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   name + " ID",
		Short: short,
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := deploymentID(args[0])
			if err != nil {
				return err
			}
			var d api.Deployment
			if err := a.call(cmd.Context(), method, deploymentPath(id)+suffix, nil, &d); err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.out, d)
			}
			return show(d)
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
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

func newDeploymentLogsCommand(a *app) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs ID [-f]",
		Short: "Show a deployment's build log",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := deploymentID(args[0])
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			return copyLog(cmd.Context(), c, id, follow, a.out, a.term.colour())
		},
	}
	cmd.ValidArgsFunction = completeDeployment(a, anyDeployment)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the log until the deployment ends")
	return cmd
}
