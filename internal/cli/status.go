package cli

import (
	"fmt"
	"strconv"

	"github.com/charmbracelet/lipgloss"
	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/api"
)

func newStatusCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the agent's health, queue and each project's live deployment",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st api.Status
			if err := a.call(cmd.Context(), "GET", api.PathStatus, nil, &st); err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.out, st)
			}
			cleanStrings(&st)
			return printStatus(a, st)
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}

// printStatus shows the status screen: a summary box, then one line per project.
func printStatus(a *app, st api.Status) error {
	t := a.term
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
	if t.isTTY {
		box := t.style().Border(lipgloss.RoundedBorder()).BorderForeground(lipgloss.Color("8")).Padding(0, 1)
		var lines string
		for i, p := range summary {
			if i > 0 {
				lines += "\n"
			}
			lines += fmt.Sprintf("%s %s", t.faint(fmt.Sprintf("%-11s", p[0]+":")), p[1])
		}
		fmt.Fprintln(a.out, box.Render(lines))
	} else if err := t.fields(a.out, summary); err != nil {
		return err
	}
	fmt.Fprintln(a.out)
	if len(st.Projects) == 0 {
		fmt.Fprintln(a.out, "No projects yet. Add one with `miaobu import OWNER/REPO` or `miaobu project add NAME --repo-url URL`.")
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
		rows = append(rows, []string{strconv.FormatInt(p.ID, 10), p.Slug, t.webhookBadge(p.WebhookConfigured), live, last,
			formatSize(p.CacheBytes), p.SiteURL})
	}
	if err := t.table(a.out, []string{"ID", "PROJECT", "WEBHOOK", "LIVE", "LAST", "CACHE", "URL"}, rows); err != nil {
		return err
	}
	for _, p := range st.Projects {
		if len(p.WebhookEventsMissing) > 0 {
			fmt.Fprintln(a.errOut, t.yellow(p.Slug+": "+eventsMissing(p.Slug, p.WebhookEventsMissing)))
		}
	}
	return printCertificates(a, st.Certificates)
}

// printCertificates shows the certificates of the agent's own HTTPS, if it has any: each name, when
// its certificate expires and the error of its last failed attempt.
func printCertificates(a *app, certs []api.Certificate) error {
	if len(certs) == 0 {
		return nil
	}
	t := a.term
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
	fmt.Fprintln(a.out)
	return t.table(a.out, []string{"CERTIFICATE", "EXPIRES", "LAST ERROR"}, rows)
}
