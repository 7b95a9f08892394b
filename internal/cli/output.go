package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
	"golang.org/x/term"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/termsafe"
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

// colour reports whether text for the terminal is coloured: on a terminal, without NO_COLOR.
func (t *terminal) colour() bool { return t.renderer.ColorProfile() != termenv.Ascii }

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
			if _, err := fmt.Fprintln(out, joinCells(row)); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, t.bold(strings.Join(header, "\t")))
	for _, row := range rows {
		fmt.Fprintln(tw, joinCells(row))
	}
	return tw.Flush()
}

// cellSpace turns the tabs and newlines inside a table cell or field into spaces, so that a value
// can neither add a column nor a row.
var cellSpace = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ")

// joinCells joins a table row's cells with tabs.
func joinCells(row []string) string {
	cells := make([]string, len(row))
	for i, c := range row {
		cells[i] = cellSpace.Replace(c)
	}
	return strings.Join(cells, "\t")
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
		if _, err := fmt.Fprintf(out, "%s  %s\n", t.faint(label), cellSpace.Replace(p[1])); err != nil {
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

// until says how long until a time to come, as "in 40s"; a time past is "due now".
func until(at time.Time) string {
	d := time.Until(at)
	switch {
	case d < time.Second:
		return "due now"
	case d < time.Minute:
		return fmt.Sprintf("in %ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("in %dm", int(d.Minutes()))
	}
	return fmt.Sprintf("in %dh", int(d.Hours()))
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

// clean returns s without what a terminal would act on: control characters other than newline and
// tab, escape sequences (colours included), invalid UTF-8 and bidirectional overrides. Everything
// the CLI shows that came from outside (commit messages, authors, branch names, error messages,
// names) goes through it.
func clean(s string) string {
	return termsafe.Sanitizer{}.Clean(s)
}

// cleanStrings cleans, in place, every string held in *v, a value decoded from the agent's answer,
// through its structs, pointers, slices and maps, so that no field that a human printer shows is
// missed.
func cleanStrings(v any) {
	cleanValue(reflect.ValueOf(v))
}

// cleanValue is cleanStrings on a reflected value.
func cleanValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			cleanValue(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Field(i).CanSet() {
				cleanValue(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			cleanValue(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			cleanValue(e)
			v.SetMapIndex(k, e)
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString(clean(v.String()))
		}
	}
}

// logWriter writes a build log to w through a termsafe.Sanitizer, keeping colours when keepSGR is set.
type logWriter struct {
	w   io.Writer
	san termsafe.Sanitizer
	buf []byte
}

// newLogWriter returns a logWriter on w.
func newLogWriter(w io.Writer, keepSGR bool) *logWriter {
	return &logWriter{w: w, san: termsafe.Sanitizer{KeepSGR: keepSGR}}
}

// Write sanitizes p and writes what is left.
func (l *logWriter) Write(p []byte) (int, error) {
	l.buf = l.san.Append(l.buf[:0], p)
	if _, err := l.w.Write(l.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close writes what the sanitizer still holds: a character cut off at the end.
func (l *logWriter) Close() error {
	_, err := l.w.Write(l.san.Finish(nil))
	return err
}
