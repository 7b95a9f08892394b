package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/api"
)

// newWebhookCommand builds `miaobu webhook`.
func newWebhookCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "webhook", Short: "Create, remove or re-key a project's GitHub webhook"}
	cmd.AddCommand(
		newWebhookActionCommand(a, "setup", "Create the project's GitHub webhook (or adopt one with the project's URL)", "POST", api.WebhookSetupPath),
		newWebhookActionCommand(a, "delete", "Delete the project's GitHub webhook", "DELETE", api.WebhookDeletePath),
		newWebhookActionCommand(a, "rotate", "Replace the webhook secret, on GitHub too (or print it once for a hand-made hook)", "POST", api.WebhookRotatePath),
		newWebhookDeliveriesCommand(a),
	)
	return cmd
}

// newWebhookDeliveriesCommand builds `miaobu webhook deliveries`: what the agent recorded of the
// signed deliveries it received, newest first.
func newWebhookDeliveriesCommand(a *app) *cobra.Command {
	var (
		limit  int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "deliveries [PROJECT] [--limit N]",
		Short: "List the webhook deliveries the agent received and what it did with each",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			query, err := historyQuery(limit, args)
			if err != nil {
				return err
			}
			var deliveries []api.Delivery
			if err := a.call(cmd.Context(), "GET", api.PathDeliveries+query, nil, &deliveries); err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.out, deliveries)
			}
			cleanStrings(&deliveries)
			if len(deliveries) == 0 {
				fmt.Fprintln(a.errOut, "No deliveries recorded yet.")
				return nil
			}
			slugs, err := projectSlugs(cmd.Context(), a)
			if err != nil {
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
			return a.term.table(a.out, []string{"RECEIVED", "PROJECT", "EVENT", "OUTCOME", "DEPLOYMENT", "DELIVERY", "FROM"}, rows)
		},
	}
	cmd.ValidArgsFunction = completeProject(a)
	cmd.Flags().IntVar(&limit, "limit", 20, "how many deliveries to show")
	jsonFlag(cmd, &asJSON)
	return cmd
}

// newWebhookActionCommand builds one webhook subcommand: a call of the route that path names.
func newWebhookActionCommand(a *app, name, short, method string, path func(string) string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   name + " PROJECT",
		Short: short,
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var answer api.WebhookAnswer
			if err := c.do(cmd.Context(), method, path(args[0]), nil, &answer); err != nil {
				return err
			}
			t, et := a.term, a.errTerm
			if answer.Warning != "" {
				fmt.Fprintf(a.errOut, "%s %s\n", et.yellow("!"), clean(answer.Warning))
			}
			if asJSON {
				return printJSON(a.out, answer)
			}
			cleanStrings(&answer)
			mark := et.green("✓")
			if answer.Status != "success" {
				mark = et.faint("·")
			}
			fmt.Fprintf(a.errOut, "%s %s\n", mark, answer.Message)
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
			if err := t.fields(a.out, pairs); err != nil {
				return err
			}
			if answer.WebhookSecret != "" {
				fmt.Fprintln(a.errOut, "The secret is shown only this once: paste it into the repository's webhook settings.")
			}
			return nil
		},
	}
	cmd.ValidArgsFunction = completeProject(a)
	jsonFlag(cmd, &asJSON)
	return cmd
}
