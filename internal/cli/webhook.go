package cli

import (
	"fmt"

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
	)
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
				fmt.Fprintf(a.errOut, "%s %s\n", et.yellow("!"), answer.Warning)
			}
			if asJSON {
				return printJSON(a.out, answer)
			}
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
	jsonFlag(cmd, &asJSON)
	return cmd
}
