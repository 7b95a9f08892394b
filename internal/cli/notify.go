package cli

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/event"
)

// newCmdNotify builds `miaobu notify`.
func newCmdNotify(f *factory) *cobra.Command {
	cmd := &cobra.Command{Use: "notify", Short: "Tell Slack, Discord, a signed webhook or an email address about deployments"}
	cmd.AddCommand(newCmdNotifyAdd(f, nil), newCmdNotifyList(f, nil), newCmdNotifyRemove(f, nil), newCmdNotifyTest(f, nil))
	return cmd
}

// notifyAddOptions are the inputs of `miaobu notify add`.
type notifyAddOptions struct {
	IO     *ioStreams
	Client func() (*client, error)
	// Type is slack, discord, webhook or email, and Target its URL or address.
	Type, Target string
	// Project limits the target to one project's deployments; empty means every project's.
	Project string
	// Events are the events sent; none means the agent's default ones.
	Events []string
	JSON   bool
}

// newCmdNotifyAdd builds `miaobu notify add`; a test's runF runs instead of notifyAddRun.
func newCmdNotifyAdd(f *factory, runF func(context.Context, *notifyAddOptions) error) *cobra.Command {
	runF = runOr(runF, notifyAddRun)
	opts := &notifyAddOptions{IO: f.IO, Client: f.Client}
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
			opts.Type, opts.Target = args[0], args[1]
			return runF(cmd.Context(), opts)
		},
	}
	cmd.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return api.NotificationTypes, cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	cmd.Flags().StringVar(&opts.Project, "project", "", "only this project's deployments (default: every project)")
	cmd.Flags().StringSliceVar(&opts.Events, "events", nil, "events to send, comma-separated (default "+strings.Join(event.Defaults, ",")+")")
	_ = cmd.RegisterFlagCompletionFunc("project", func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return projectCompletions(cmd, f, toComplete), cobra.ShellCompDirectiveNoFileComp
	})
	_ = cmd.RegisterFlagCompletionFunc("events", cobra.FixedCompletions(event.All, cobra.ShellCompDirectiveNoFileComp))
	jsonFlag(cmd, &opts.JSON)
	return cmd
}

// notifyAddRun adds the target and shows it, with a webhook's signing secret this once.
func notifyAddRun(ctx context.Context, opts *notifyAddOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	req := api.NotificationCreate{Type: opts.Type, Target: opts.Target, Events: opts.Events}
	if opts.Project != "" {
		var p api.Project
		if err := c.do(ctx, "GET", projectPath(opts.Project), nil, &p); err != nil {
			return err
		}
		req.ProjectID = &p.ID
	}
	var n api.Notification
	if err := c.do(ctx, "POST", api.PathNotifications, req, &n); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, n)
	}
	cleanStrings(&n)
	fmt.Fprintf(opts.IO.ErrOut, "%s Added %s notification %d for %s\n", opts.IO.ErrTerm.green("✓"), n.Type, n.ID, strings.Join(n.Events, ", "))
	pairs := [][2]string{{"Target", n.Target}}
	if n.Secret != "" {
		pairs = append(pairs, [2]string{"Secret", n.Secret})
	}
	if err := opts.IO.Term.fields(opts.IO.Out, pairs); err != nil {
		return err
	}
	if n.Secret != "" {
		fmt.Fprintln(opts.IO.ErrOut, "The signing secret is shown only this once: give it to the receiver to verify the webhook-signature header.")
	}
	fmt.Fprintf(opts.IO.ErrOut, "Try it with `miaobu notify test %d`.\n", n.ID)
	return nil
}

// completeNotification completes a command's notification ID, its first argument, with the
// agent's targets.
func completeNotification(f *factory) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := completionContext(cmd, f)
		defer cancel()
		var targets []api.Notification
		if call(ctx, f.Client, "GET", api.PathNotifications, nil, &targets) != nil {
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

// notifyListOptions are the inputs of `miaobu notify list`.
type notifyListOptions struct {
	IO     *ioStreams
	Client func() (*client, error)
	JSON   bool
}

// newCmdNotifyList builds `miaobu notify list`; a test's runF runs instead of notifyListRun.
func newCmdNotifyList(f *factory, runF func(context.Context, *notifyListOptions) error) *cobra.Command {
	runF = runOr(runF, notifyListRun)
	opts := &notifyListOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List notification targets",
		Args:    exactArgs(0),
		RunE:    func(cmd *cobra.Command, _ []string) error { return runF(cmd.Context(), opts) },
	}
	jsonFlag(cmd, &opts.JSON)
	return cmd
}

// notifyListRun lists the targets.
func notifyListRun(ctx context.Context, opts *notifyListOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	var targets []api.Notification
	if err := c.do(ctx, "GET", api.PathNotifications, nil, &targets); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, targets)
	}
	cleanStrings(&targets)
	if len(targets) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "No notification targets: add one with `miaobu notify add`.")
		return nil
	}
	slugs, err := projectSlugs(ctx, c)
	if err != nil {
		return err
	}
	t := opts.IO.Term
	rows := make([][]string, 0, len(targets))
	for _, n := range targets {
		project, state := "(all)", t.green("enabled")
		if n.ProjectID != nil {
			project = slugs[*n.ProjectID]
		}
		if n.DisabledReason != nil {
			state = t.red("disabled: " + *n.DisabledReason)
		}
		rows = append(rows, []string{strconv.FormatInt(n.ID, 10), n.Type, n.Target, project, strings.Join(n.Events, ","), state})
	}
	return t.table(opts.IO.Out, []string{"ID", "TYPE", "TARGET", "PROJECT", "EVENTS", "STATE"}, rows)
}

// notificationOptions are the inputs of a command on one notification target: remove or test.
type notificationOptions struct {
	IO     *ioStreams
	Client func() (*client, error)
	ID     string
	JSON   bool
}

// newNotificationCommand builds a command named by use on one notification ID that runs run.
func newNotificationCommand(f *factory, use, short string, run func(context.Context, *notificationOptions) error) *cobra.Command {
	opts := &notificationOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			return run(cmd.Context(), opts)
		},
	}
	cmd.ValidArgsFunction = completeNotification(f)
	jsonFlag(cmd, &opts.JSON)
	return cmd
}

// newCmdNotifyRemove builds `miaobu notify remove`; a test's runF runs instead of notifyRemoveRun.
func newCmdNotifyRemove(f *factory, runF func(context.Context, *notificationOptions) error) *cobra.Command {
	cmd := newNotificationCommand(f, "remove ID", "Remove a notification target", runOr(runF, notifyRemoveRun))
	cmd.Aliases = []string{"rm"}
	return cmd
}

// notifyRemoveRun removes the target.
func notifyRemoveRun(ctx context.Context, opts *notificationOptions) error {
	var n api.Notification
	if err := call(ctx, opts.Client, "DELETE", api.NotificationPath(opts.ID), nil, &n); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, n)
	}
	fmt.Fprintf(opts.IO.ErrOut, "%s Removed %s notification %d\n", opts.IO.ErrTerm.green("✓"), clean(n.Type), n.ID)
	return nil
}

// newCmdNotifyTest builds `miaobu notify test`; a test's runF runs instead of notifyTestRun.
func newCmdNotifyTest(f *factory, runF func(context.Context, *notificationOptions) error) *cobra.Command {
	return newNotificationCommand(f, "test ID", "Send a test message now and show what the receiver answered", runOr(runF, notifyTestRun))
}

// notifyTestRun sends a test message and shows the receiver's answer; the command fails unless it
// was a 2xx.
func notifyTestRun(ctx context.Context, opts *notificationOptions) error {
	var answer api.NotificationTest
	if err := call(ctx, opts.Client, "POST", api.NotificationPath(opts.ID)+"/test", nil, &answer); err != nil {
		return err
	}
	ok := answer.StatusCode >= 200 && answer.StatusCode < 300
	if opts.JSON {
		if err := printJSON(opts.IO.Out, answer); err != nil || ok {
			return err
		}
		return silentError{}
	}
	mark := opts.IO.ErrTerm.green("✓")
	if !ok {
		mark = opts.IO.ErrTerm.red("✗")
	}
	fmt.Fprintf(opts.IO.Out, "%s The receiver answered %d: %s\n", mark, answer.StatusCode, orDash(clean(answer.Response)))
	if !ok {
		return silentError{}
	}
	return nil
}
