package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/trigger"
)

// newCmdPreview builds `miaobu preview`.
func newCmdPreview(f *factory) *cobra.Command {
	cmd := &cobra.Command{Use: "preview", Aliases: []string{"previews"}, Short: "Inspect, approve and remove previews of pull requests and branches"}
	cmd.AddCommand(newCmdPreviewList(f, nil), newCmdPreviewApprove(f, nil), newCmdPreviewRemove(f, nil))
	return cmd
}

// newCmdPreviewList builds `miaobu preview list`; a test's runF runs instead of previewListRun.
func newCmdPreviewList(f *factory, runF func(context.Context, *projectOptions) error) *cobra.Command {
	cmd := newProjectCommand(f, "list PROJECT", "List a project's previews: each alias, its deployment and URL", runOr(runF, previewListRun))
	cmd.Aliases = []string{"ls"}
	return cmd
}

// previewListRun lists the project's previews.
func previewListRun(ctx context.Context, opts *projectOptions) error {
	var previews []api.Preview
	if err := call(ctx, opts.Client, "GET", api.PreviewsPath(opts.Project), nil, &previews); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, previews)
	}
	if len(previews) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "No previews yet: pull requests and pushes to preview branches (project set --preview-branches) deploy them.")
		return nil
	}
	return printPreviews(opts.IO, previews)
}

// printPreviews shows previews as a table.
func printPreviews(ios *ioStreams, previews []api.Preview) error {
	cleanStrings(&previews)
	rows := make([][]string, 0, len(previews))
	for _, p := range previews {
		rows = append(rows, []string{p.Alias, previewSource(p), previewState(ios.Term, p), p.URL})
	}
	return ios.Term.table(ios.Out, []string{"ALIAS", "FROM", "STATE", "URL"}, rows)
}

// previewSource says where a preview's commits come from: its pull request or its branch.
func previewSource(p api.Preview) string {
	if p.PullRequest == nil {
		return "branch " + p.Branch
	}
	source := fmt.Sprintf("PR #%d (%s)", *p.PullRequest, p.Branch)
	if p.Fork {
		source += " from a fork"
	}
	return source
}

// previewState says whether a preview is live, waiting, or removed.
func previewState(t *terminal, p api.Preview) string {
	switch {
	case p.RemovedAt != nil:
		return t.faint("removed " + ago(*p.RemovedAt))
	case p.AwaitingApproval:
		return t.yellow("awaiting approval of " + shortSHA(p.HeadSHA))
	case p.DeploymentID == nil:
		return "no deployment live yet"
	}
	return t.green(fmt.Sprintf("live #%d", *p.DeploymentID))
}

// previewOptions are the inputs of a command on one preview of a project: approve or remove.
type previewOptions struct {
	IO      *ioStreams
	Client  func() (*client, error)
	Project string
	// Alias is the preview's alias: pr-<number> for a pull request's.
	Alias string
	// Commit is, for approve, the head commit the reviewer looked at ("" for the current head).
	Commit string
	JSON   bool
}

// newCmdPreviewApprove builds `miaobu preview approve`; a test's runF runs instead of previewApproveRun.
func newCmdPreviewApprove(f *factory, runF func(context.Context, *previewOptions) error) *cobra.Command {
	runF = runOr(runF, previewApproveRun)
	opts := &previewOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:   "approve PROJECT PR [--commit SHA]",
		Short: "Build the current head commit of a pull request from a fork",
		Long: "Approve the current head commit of a pull request from a fork and build it as the preview\n" +
			"pr-<PR>, without the project's variables, token or cache, in the sandbox. Each new head\n" +
			"commit needs a new approval; adding the label miaobu:preview on GitHub does the same.\n" +
			"With --commit, the approval applies only if the head is still the commit you reviewed.",
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimPrefix(args[1], "#"), "pr-"))
			if err != nil || n < 1 {
				return usageError{fmt.Errorf("PR must be a pull request number such as 12, not %q", args[1])}
			}
			opts.Project, opts.Alias = args[0], trigger.PullRequestAlias(n)
			return runF(cmd.Context(), opts)
		},
	}
	cmd.ValidArgsFunction = completePreview(f, func(p api.Preview) (string, bool) {
		if p.PullRequest == nil || !p.AwaitingApproval {
			return "", false
		}
		return strconv.Itoa(*p.PullRequest), true
	})
	cmd.Flags().StringVar(&opts.Commit, "commit", "", "full SHA of the head commit you reviewed: nothing is approved if the head is another")
	jsonFlag(cmd, &opts.JSON)
	return cmd
}

// previewApproveRun approves the pull request's head commit and says which commit that is.
func previewApproveRun(ctx context.Context, opts *previewOptions) error {
	var answer api.WebhookAnswer
	if err := call(ctx, opts.Client, "POST", api.ApprovePath(opts.Project, opts.Alias), api.ApproveRequest{CommitSHA: opts.Commit}, &answer); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, answer)
	}
	fmt.Fprintf(opts.IO.ErrOut, "%s Approved commit %s for preview %s\n", opts.IO.ErrTerm.green("✓"), clean(answer.CommitSHA), opts.Alias)
	fmt.Fprintln(opts.IO.ErrOut, clean(answer.Message))
	if answer.DeploymentID != 0 {
		fmt.Fprintf(opts.IO.ErrOut, "Follow it with: miaobu deployment logs %d -f\n", answer.DeploymentID)
	}
	return nil
}

// newCmdPreviewRemove builds `miaobu preview remove`; a test's runF runs instead of previewRemoveRun.
func newCmdPreviewRemove(f *factory, runF func(context.Context, *previewOptions) error) *cobra.Command {
	runF = runOr(runF, previewRemoveRun)
	opts := &previewOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:     "remove PROJECT ALIAS",
		Aliases: []string{"rm"},
		Short:   "Take a preview down now (its files are deleted after retention.previews)",
		Args:    exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Project, opts.Alias = args[0], args[1]
			return runF(cmd.Context(), opts)
		},
	}
	cmd.ValidArgsFunction = completePreview(f, func(p api.Preview) (string, bool) { return p.Alias, p.RemovedAt == nil })
	jsonFlag(cmd, &opts.JSON)
	return cmd
}

// previewRemoveRun takes the preview down.
func previewRemoveRun(ctx context.Context, opts *previewOptions) error {
	var answer api.WebhookAnswer
	if err := call(ctx, opts.Client, "DELETE", api.PreviewPath(opts.Project, opts.Alias), nil, &answer); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, answer)
	}
	fmt.Fprintf(opts.IO.ErrOut, "%s %s\n", opts.IO.ErrTerm.green("✓"), clean(answer.Message))
	return nil
}

// triggerFlags are the trigger-rule flags that add, set and import share (contract section 7).
type triggerFlags struct {
	previewBranches, watchPaths globList
	prPreviews                  bool
	forkPreviews, trigger       string
}

// register adds the flags to cmd.
func (f *triggerFlags) register(cmd *cobra.Command) {
	cmd.Flags().Var(&f.previewBranches, "preview-branches", "branches whose pushes deploy a preview, as globs (G,...; !G excludes)")
	cmd.Flags().BoolVar(&f.prPreviews, "pr-previews", true, "deploy each pull request's head commit as a preview")
	cmd.Flags().StringVar(&f.forkPreviews, "fork-previews", "approve", "pull requests from forks: off, approve (after `miaobu preview approve`) or on")
	cmd.Flags().Var(&f.watchPaths, "watch-paths", "deploy a push only when it changes a matching path, as globs (G,...; !G excludes)")
	cmd.Flags().StringVar(&f.trigger, "trigger", "webhook", "how new commits are found: webhook, or poll (the agent checks the branch every poll.interval: no public URL needed)")
}

// settings returns the flags given on the command line as the API's trigger settings, or a usage
// error for a value the agent would refuse.
func (f *triggerFlags) settings(flags *pflag.FlagSet) (api.TriggerSettings, error) {
	var s api.TriggerSettings
	for _, globs := range []struct {
		name string
		list *globList
		to   **[]string
	}{{"preview-branches", &f.previewBranches, &s.PreviewBranches}, {"watch-paths", &f.watchPaths, &s.WatchPaths}} {
		if !flags.Changed(globs.name) {
			continue
		}
		if err := trigger.Validate(*globs.list); err != nil {
			return s, usageError{fmt.Errorf("--%s: %w", globs.name, err)}
		}
		list := []string(*globs.list)
		*globs.to = &list
	}
	if flags.Changed("pr-previews") {
		s.PRPreviews = &f.prPreviews
	}
	if flags.Changed("fork-previews") {
		if err := trigger.CheckForkPreviews(f.forkPreviews); err != nil {
			return s, usageError{fmt.Errorf("--fork-previews %w", err)}
		}
		s.ForkPreviews = &f.forkPreviews
	}
	if flags.Changed("trigger") {
		if err := trigger.CheckMode(f.trigger); err != nil {
			return s, usageError{fmt.Errorf("--trigger %w", err)}
		}
		s.Trigger = &f.trigger
	}
	return s, nil
}

// globList is a flag holding glob patterns separated by commas outside braces and brackets, so
// that src/**/*.{ts,tsx} stays one pattern; an empty value empties the list.
type globList []string

// String returns the patterns joined by commas.
func (g *globList) String() string { return strings.Join(*g, ",") }

// Type names the value in help.
func (g *globList) Type() string { return "globs" }

// Set replaces the list with the patterns of value.
func (g *globList) Set(value string) error {
	*g = globList{}
	depth, start := 0, 0
	for i, c := range value {
		switch {
		case c == '{' || c == '[':
			depth++
		case (c == '}' || c == ']') && depth > 0:
			depth--
		case c == ',' && depth == 0:
			g.add(value[start:i])
			start = i + 1
		}
	}
	g.add(value[start:])
	return nil
}

// add appends a pattern, trimmed, unless it is empty.
func (g *globList) add(pattern string) {
	if pattern = strings.TrimSpace(pattern); pattern != "" {
		*g = append(*g, pattern)
	}
}

// completePreview completes `preview approve|remove PROJECT X`: the project, then the word that
// word returns for each of its previews it accepts.
func completePreview(f *factory, word func(api.Preview) (string, bool)) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		switch len(args) {
		case 0:
			return projectCompletions(cmd, f, toComplete), cobra.ShellCompDirectiveNoFileComp
		case 1:
			ctx, cancel := completionContext(cmd, f)
			defer cancel()
			var previews []api.Preview
			if call(ctx, f.Client, "GET", api.PreviewsPath(args[0]), nil, &previews) != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, p := range previews {
				if w, ok := word(p); ok && strings.HasPrefix(w, toComplete) {
					out = append(out, cobra.CompletionWithDesc(w, previewSource(p)))
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}
