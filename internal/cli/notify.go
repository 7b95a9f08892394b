package cli

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/event"
)

// newNotifyCommand builds `miaobu notify`.
func newNotifyCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "notify", Short: "Tell Slack, Discord, a signed webhook or an email address about deployments"}
	cmd.AddCommand(newNotifyAddCommand(a), newNotifyListCommand(a), newNotifyRemoveCommand(a), newNotifyTestCommand(a))
	return cmd
}

func newNotifyAddCommand(a *app) *cobra.Command {
	var (
		project string
		events  []string
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "add slack|discord|webhook URL | add email ADDRESS",
		Short: "Add a notification target (events: " + strings.Join(event.Defaults, ", ") + " unless --events)",
		Long: "Add a notification target. Events: " + strings.Join(event.All, ", ") + ".\n" +
			"A webhook target is signed with Standard Webhooks; its secret is printed once.",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageError{fmt.Errorf("notify add takes a type (%s) and one URL or email address, not %d arguments",
					strings.Join(api.NotificationTypes, ", "), len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(api.NotificationTypes, args[0]) {
				return usageError{fmt.Errorf("unknown notification type %q: use %s", args[0], strings.Join(api.NotificationTypes, ", "))}
			}
			req := api.NotificationCreate{Type: args[0], Target: args[1], Events: events}
			if project != "" {
				var p api.Project
				if err := a.call(cmd.Context(), "GET", projectPath(project), nil, &p); err != nil {
					return err
				}
				req.ProjectID = &p.ID
			}
			var n api.Notification
			if err := a.call(cmd.Context(), "POST", api.PathNotifications, req, &n); err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.out, n)
			}
			cleanStrings(&n)
			fmt.Fprintf(a.errOut, "%s Added %s notification %d for %s\n", a.errTerm.green("✓"), n.Type, n.ID, strings.Join(n.Events, ", "))
			pairs := [][2]string{{"Target", n.Target}}
			if n.Secret != "" {
				pairs = append(pairs, [2]string{"Secret", n.Secret})
			}
			if err := a.term.fields(a.out, pairs); err != nil {
				return err
			}
			if n.Secret != "" {
				fmt.Fprintln(a.errOut, "The signing secret is shown only this once: give it to the receiver to verify the webhook-signature header.")
			}
			fmt.Fprintf(a.errOut, "Try it with `miaobu notify test %d`.\n", n.ID)
			return nil
		},
	}
	cmd.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return api.NotificationTypes, cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	cmd.Flags().StringVar(&project, "project", "", "only this project's deployments (default: every project)")
	cmd.Flags().StringSliceVar(&events, "events", nil, "events to send, comma-separated (default "+strings.Join(event.Defaults, ",")+")")
	_ = cmd.RegisterFlagCompletionFunc("project", func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return projectCompletions(cmd, a, toComplete), cobra.ShellCompDirectiveNoFileComp
	})
	_ = cmd.RegisterFlagCompletionFunc("events", cobra.FixedCompletions(event.All, cobra.ShellCompDirectiveNoFileComp))
	jsonFlag(cmd, &asJSON)
	return cmd
}

// listNotifications fetches the agent's notification targets.
func listNotifications(cmd *cobra.Command, a *app) ([]api.Notification, error) {
	var targets []api.Notification
	err := a.call(cmd.Context(), "GET", api.PathNotifications, nil, &targets)
	return targets, err
}

// completeNotification completes a command's notification ID, its first argument, with the
// agent's targets.
func completeNotification(a *app) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := completionContext(cmd, a)
		defer cancel()
		cmd.SetContext(ctx)
		targets, err := listNotifications(cmd, a)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, n := range targets {
			if id := strconv.FormatInt(n.ID, 10); strings.HasPrefix(id, toComplete) {
				out = append(out, cobra.CompletionWithDesc(id, clean(n.Type+" "+n.Target)))
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func newNotifyListCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List notification targets",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			targets, err := listNotifications(cmd, a)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.out, targets)
			}
			cleanStrings(&targets)
			if len(targets) == 0 {
				fmt.Fprintln(a.errOut, "No notification targets: add one with `miaobu notify add`.")
				return nil
			}
			slugs, err := projectSlugs(cmd.Context(), a)
			if err != nil {
				return err
			}
			rows := make([][]string, 0, len(targets))
			for _, n := range targets {
				project, state := "(all)", a.term.green("enabled")
				if n.ProjectID != nil {
					project = slugs[*n.ProjectID]
				}
				if n.DisabledReason != nil {
					state = a.term.red("disabled: " + *n.DisabledReason)
				}
				rows = append(rows, []string{strconv.FormatInt(n.ID, 10), n.Type, n.Target, project, strings.Join(n.Events, ","), state})
			}
			return a.term.table(a.out, []string{"ID", "TYPE", "TARGET", "PROJECT", "EVENTS", "STATE"}, rows)
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}

func newNotifyRemoveCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "remove ID",
		Aliases: []string{"rm"},
		Short:   "Remove a notification target",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var n api.Notification
			if err := a.call(cmd.Context(), "DELETE", api.NotificationPath(args[0]), nil, &n); err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.out, n)
			}
			fmt.Fprintf(a.errOut, "%s Removed %s notification %d\n", a.errTerm.green("✓"), clean(n.Type), n.ID)
			return nil
		},
	}
	cmd.ValidArgsFunction = completeNotification(a)
	jsonFlag(cmd, &asJSON)
	return cmd
}

func newNotifyTestCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "test ID",
		Short: "Send a test message now and show what the receiver answered",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var answer api.NotificationTest
			if err := a.call(cmd.Context(), "POST", api.NotificationPath(args[0])+"/test", nil, &answer); err != nil {
				return err
			}
			ok := answer.StatusCode >= 200 && answer.StatusCode < 300
			if asJSON {
				if err := printJSON(a.out, answer); err != nil || ok {
					return err
				}
				return silentError{}
			}
			mark := a.errTerm.green("✓")
			if !ok {
				mark = a.errTerm.red("✗")
			}
			fmt.Fprintf(a.out, "%s The receiver answered %d: %s\n", mark, answer.StatusCode, orDash(clean(answer.Response)))
			if !ok {
				return silentError{}
			}
			return nil
		},
	}
	cmd.ValidArgsFunction = completeNotification(a)
	jsonFlag(cmd, &asJSON)
	return cmd
}
