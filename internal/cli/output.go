package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
	"golang.org/x/term"

	"github.com/miaobu/miaobu/internal/api"
)

// terminal knows whether stdout is a terminal and styles text for it: colour only on a terminal and
// never when NO_COLOR is set.
type terminal struct {
	isTTY    bool
	renderer *lipgloss.Renderer
}

// newTerminal inspects out.
func newTerminal(out io.Writer) *terminal {
	t := &terminal{renderer: lipgloss.NewRenderer(out)}
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		t.isTTY = true
	}
	if !t.isTTY || os.Getenv("NO_COLOR") != "" {
		t.renderer.SetColorProfile(termenv.Ascii)
	}
	return t
}

// style returns a style bound to the terminal's renderer.
func (t *terminal) style() lipgloss.Style { return t.renderer.NewStyle() }

// green, red, yellow and faint colour text when colour is on.
func (t *terminal) green(s string) string { return t.style().Foreground(lipgloss.Color("2")).Render(s) }
func (t *terminal) red(s string) string   { return t.style().Foreground(lipgloss.Color("1")).Render(s) }
func (t *terminal) yellow(s string) string {
	return t.style().Foreground(lipgloss.Color("3")).Render(s)
}
func (t *terminal) faint(s string) string { return t.style().Faint(true).Render(s) }
func (t *terminal) bold(s string) string  { return t.style().Bold(true).Render(s) }

// webhookBadge is the contract's badge: ✓ Enabled in green, or ✗ Not configured.
func (t *terminal) webhookBadge(configured bool) string {
	if configured {
		return t.green("✓ Enabled")
	}
	return t.red("✗ Not configured")
}

// status colours a deployment status by how it went.
func (t *terminal) status(s string) string {
	switch s {
	case api.StatusDeployed:
		return t.green(s)
	case api.StatusFailed:
		return t.red(s)
	case api.StatusCancelled:
		return t.faint(s)
	default:
		return t.yellow(s)
	}
}

// table writes rows under a header: aligned columns on a terminal, tab-separated on a pipe.
func (t *terminal) table(out io.Writer, header []string, rows [][]string) error {
	if !t.isTTY {
		for _, row := range rows {
			if _, err := fmt.Fprintln(out, strings.Join(row, "\t")); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, t.bold(strings.Join(header, "\t")))
	for _, row := range rows {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// printJSON writes v as one indented JSON value.
func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// fields writes label/value lines aligned on the labels.
func (t *terminal) fields(out io.Writer, pairs [][2]string) error {
	width := 0
	for _, p := range pairs {
		width = max(width, len(p[0]))
	}
	for _, p := range pairs {
		label := p[0] + ":" + strings.Repeat(" ", width-len(p[0]))
		if _, err := fmt.Fprintf(out, "%s  %s\n", t.faint(label), p[1]); err != nil {
			return err
		}
	}
	return nil
}

// ago says how long ago t was, compactly.
func ago(at time.Time) string {
	d := time.Since(at)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// orDash returns s, or "-" when s is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shortSHA is the first 7 characters of a commit SHA.
func shortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// firstLine is the first line of a commit message.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
