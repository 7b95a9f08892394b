package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/charmbracelet/lipgloss"
	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/api"
)

// statusOptions are the inputs of `miaobu status`.
type statusOptions struct {
	IO     *ioStreams
	Client func() (*client, error)
	JSON   bool
}

// newCmdStatus builds `miaobu status`; a test's runF runs instead of statusRun.
func newCmdStatus(f *factory, runF func(context.Context, *statusOptions) error) *cobra.Command {
	runF = runOr(runF, statusRun)
	opts := &statusOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the agent's health, queue and each project's live deployment",
		Args:  exactArgs(0),
		RunE:  func(cmd *cobra.Command, _ []string) error { return runF(cmd.Context(), opts) },
	}
	jsonFlag(cmd, &opts.JSON)
	return cmd
}

// statusRun shows the agent's status.
func statusRun(ctx context.Context, opts *statusOptions) error {
	var st api.Status
	if err := call(ctx, opts.Client, "GET", api.PathStatus, nil, &st); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, st)
	}
	cleanStrings(&st)
	return printStatus(opts.IO, st)
}

// printStatus shows the status screen: a summary box, then one line per project.
func printStatus(ios *ioStreams, st api.Status) error {
	t := ios.Term
	queue := fmt.Sprintf("%d queued, %d building", st.Queue.Queued, st.Queue.Running)
	if st.Queue.Concurrency == 0 {
		queue += " " + t.yellow("(building paused: build.concurrency is 0)")
	}
	sandbox := t.green(st.Sandbox)
	if st.Sandbox == "none" {
		sandbox = t.yellow("none: builds can read the agent's files; install bubblewrap")
	}
	summary := [][2]string{
		{"Agent", t.green("● "+st.Status) + "  " + t.faint("since "+st.StartedAt.Local().Format("2006-01-02 15:04"))},
		{"Version", st.Version},
		{"Public URL", st.PublicURL},
		{"Queue", queue},
		{"Sandbox", sandbox},
	}
	if c := st.Cluster; c != nil {
		quorum := t.green("quorum")
		if !c.Quorum {
			quorum = t.red("no quorum: webhooks get 503 until a majority of nodes is back")
		}
		summary = append(summary, [2]string{"Cluster", fmt.Sprintf("node %s, %d members, ", c.Node, len(c.Members)) + quorum})
	}
	if t.isTTY {
		box := t.style().Border(lipgloss.RoundedBorder()).BorderForeground(lipgloss.Color("8")).Padding(0, 1)
		var lines string
		for i, p := range summary {
			if i > 0 {
				lines += "\n"
			}
			lines += fmt.Sprintf("%s %s", t.faint(fmt.Sprintf("%-11s", p[0]+":")), p[1])
		}
		fmt.Fprintln(ios.Out, box.Render(lines))
	} else if err := t.fields(ios.Out, summary); err != nil {
		return err
	}
	fmt.Fprintln(ios.Out)
	if err := printMembers(ios, st.Cluster); err != nil {
		return err
	}
	if st.Cluster != nil && !st.Cluster.Quorum {
		fmt.Fprintln(ios.Out, "Projects unknown: they cannot be read without a quorum.")
		return nil
	}
	if len(st.Projects) == 0 {
		fmt.Fprintln(ios.Out, "No projects yet. Add one with `miaobu import OWNER/REPO` or `miaobu project add NAME --repo-url URL`.")
		return nil
	}
	rows := make([][]string, 0, len(st.Projects))
	for _, p := range st.Projects {
		live, last := "-", "-"
		if p.Live != nil {
			live = fmt.Sprintf("#%d %s %s", p.Live.ID, shortSHA(p.Live.CommitSHA), firstLine(p.Live.CommitMessage))
		}
		if p.Last != nil {
			last = fmt.Sprintf("#%d %s %s", p.Last.ID, t.status(p.Last.Status), ago(p.Last.CreatedAt))
		}
		trigger := t.webhookBadge(p.WebhookConfigured)
		if p.Trigger == api.ProjectTriggerPoll {
			trigger = "⟳ Polled: " + pollSummary(t, p.PollStatus)
		}
		rows = append(rows, []string{strconv.FormatInt(p.ID, 10), p.Slug, trigger, live, last,
			strconv.Itoa(p.Previews), formatSize(p.CacheBytes), p.SiteURL})
	}
	if err := t.table(ios.Out, []string{"ID", "PROJECT", "WEBHOOK", "LIVE", "LAST", "PREVIEWS", "CACHE", "URL"}, rows); err != nil {
		return err
	}
	for _, p := range st.Projects {
		if len(p.WebhookEventsMissing) > 0 {
			fmt.Fprintln(ios.ErrOut, t.yellow(p.Slug+": "+eventsMissing(p.Slug, p.WebhookEventsMissing)))
		}
		if p.LastReconcileError != nil && p.ReconcileRetryAt != nil {
			fmt.Fprintln(ios.ErrOut, t.red(fmt.Sprintf("%s: reconciliation failed, tried again %s: %s",
				p.Slug, until(*p.ReconcileRetryAt), *p.LastReconcileError)))
		}
	}
	return printCertificates(ios, st.Certificates)
}

// printCertificates shows the certificates of the agent's own HTTPS, if it has any: each name, when
// its certificate expires and the error of its last failed attempt.
func printCertificates(ios *ioStreams, certs []api.Certificate) error {
	if len(certs) == 0 {
		return nil
	}
	t := ios.Term
	rows := make([][]string, 0, len(certs))
	for _, c := range certs {
		expires, lastError := "-", "-"
		if c.ExpiresAt != nil {
			expires = c.ExpiresAt.Local().Format("2006-01-02 15:04")
		}
		if c.LastError != nil {
			lastError = t.red(firstLine(*c.LastError))
		}
		rows = append(rows, []string{c.Name, expires, lastError})
	}
	fmt.Fprintln(ios.Out)
	return t.table(ios.Out, []string{"CERTIFICATE", "EXPIRES", "LAST ERROR"}, rows)
}

// printMembers shows the members of the agent's cluster, if it belongs to one: each node, its route
// address, whether it leads and whether it is current.
func printMembers(ios *ioStreams, c *api.Cluster) error {
	if c == nil {
		return nil
	}
	t := ios.Term
	rows := make([][]string, 0, len(c.Members))
	for _, m := range c.Members {
		role, state := "", t.green("current")
		if m.Leader {
			role = "leader"
		}
		if !m.Current {
			state = t.red("unreachable or behind")
		}
		name := m.Node
		if m.Node == c.Node {
			name += " (this node)"
		}
		rows = append(rows, []string{name, m.Address, role, state})
	}
	if err := t.table(ios.Out, []string{"NODE", "ADDRESS", "ROLE", "STATE"}, rows); err != nil {
		return err
	}
	fmt.Fprintln(ios.Out)
	return nil
}
