package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/api"
)

// newCmdWebhook builds `miaobu webhook`.
func newCmdWebhook(f *factory) *cobra.Command {
	cmd := &cobra.Command{Use: "webhook", Short: "Create, remove or re-key a project's GitHub webhook"}
	cmd.AddCommand(
		newCmdWebhookAction(f, "setup", "Create the project's GitHub webhook (or adopt one with the project's URL)", "POST", api.WebhookSetupPath, nil),
		newCmdWebhookAction(f, "delete", "Delete the project's GitHub webhook", "DELETE", api.WebhookDeletePath, nil),
		newCmdWebhookAction(f, "rotate", "Replace the webhook secret, on GitHub too (or print it once for a hand-made hook)", "POST", api.WebhookRotatePath, nil),
		newCmdWebhookDeliveries(f, nil),
	)
	return cmd
}

// newCmdWebhookDeliveries builds `miaobu webhook deliveries`: what the agent recorded of the
// signed deliveries it received, newest first; a test's runF runs instead of webhookDeliveriesRun.
func newCmdWebhookDeliveries(f *factory, runF func(context.Context, *historyOptions) error) *cobra.Command {
	runF = runOr(runF, webhookDeliveriesRun)
	opts := &historyOptions{IO: f.IO, Client: f.Client}
	return newHistoryCommand(f, opts, "deliveries [PROJECT] [--limit N]", "List the webhook deliveries the agent received and what it did with each",
		"deliveries", func(ctx context.Context) error { return runF(ctx, opts) })
}

// webhookDeliveriesRun lists the deliveries.
func webhookDeliveriesRun(ctx context.Context, opts *historyOptions) error {
	deliveries, slugs, err := fetchHistory[api.Delivery](ctx, opts, api.PathDeliveries, nil, "No deliveries recorded yet.")
	if err != nil || slugs == nil {
		return err
	}
	rows := make([][]string, 0, len(deliveries))
	for _, d := range deliveries {
		deployment := "-"
		if d.DeploymentID != 0 {
			deployment = "#" + strconv.FormatInt(d.DeploymentID, 10)
		}
		rows = append(rows, []string{ago(d.ReceivedAt), slugs[d.ProjectID], d.Event, d.Outcome, deployment, d.GUID, d.RemoteAddr})
	}
	return opts.IO.Term.table(opts.IO.Out, []string{"RECEIVED", "PROJECT", "EVENT", "OUTCOME", "DEPLOYMENT", "DELIVERY", "FROM"}, rows)
}

// newCmdWebhookAction builds one webhook subcommand, a call of the route that path names; a test's
// runF runs instead of webhookActionRun.
func newCmdWebhookAction(f *factory, name, short, method string, path func(string) string, runF func(context.Context, *projectOptions) error) *cobra.Command {
	if runF == nil {
		runF = func(ctx context.Context, opts *projectOptions) error {
			return webhookActionRun(ctx, opts, method, path)
		}
	}
	return newProjectCommand(f, name+" PROJECT", short, runF)
}

// webhookActionRun sends method to the project's route that path names and shows the answer.
func webhookActionRun(ctx context.Context, opts *projectOptions, method string, path func(string) string) error {
	var answer api.WebhookAnswer
	if err := call(ctx, opts.Client, method, path(opts.Project), nil, &answer); err != nil {
		return err
	}
	t, et := opts.IO.Term, opts.IO.ErrTerm
	if answer.Warning != "" {
		fmt.Fprintf(opts.IO.ErrOut, "%s %s\n", et.yellow("!"), clean(answer.Warning))
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, answer)
	}
	cleanStrings(&answer)
	mark := et.green("✓")
	if answer.Status != "success" {
		mark = et.faint("·")
	}
	fmt.Fprintf(opts.IO.ErrOut, "%s %s\n", mark, answer.Message)
	var pairs [][2]string
	if answer.WebhookID != 0 {
		pairs = append(pairs, [2]string{"Hook id", fmt.Sprint(answer.WebhookID)})
	}
	if answer.WebhookURL != "" {
		pairs = append(pairs, [2]string{"Payload URL", answer.WebhookURL})
	}
	if answer.WebhookSecret != "" {
		pairs = append(pairs, [2]string{"Secret", answer.WebhookSecret})
	}
	if err := t.fields(opts.IO.Out, pairs); err != nil {
		return err
	}
	if answer.WebhookSecret != "" {
		fmt.Fprintln(opts.IO.ErrOut, "The secret is shown only this once: paste it into the repository's webhook settings.")
	}
	return nil
}
