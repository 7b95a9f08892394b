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
	"unicode/utf8"

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
	var san sanitizer
	return string(san.finish(san.append(make([]byte, 0, len(s)), []byte(s))))
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

// logWriter writes a build log to w through a sanitizer, keeping colours when keepSGR is set.
type logWriter struct {
	w   io.Writer
	san sanitizer
	buf []byte
}

// newLogWriter returns a logWriter on w.
func newLogWriter(w io.Writer, keepSGR bool) *logWriter {
	return &logWriter{w: w, san: sanitizer{keepSGR: keepSGR}}
}

// Write sanitizes p and writes what is left.
func (l *logWriter) Write(p []byte) (int, error) {
	l.buf = l.san.append(l.buf[:0], p)
	if _, err := l.w.Write(l.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close writes what the sanitizer still holds: a character cut off at the end.
func (l *logWriter) Close() error {
	_, err := l.w.Write(l.san.finish(nil))
	return err
}

// sanitizerState is where a sanitizer is in its input.
type sanitizerState uint8

const (
	inText                sanitizerState = iota
	inCharacter                          // a multi-byte UTF-8 character
	inEscape                             // after ESC
	inEscapeIntermediate                 // ESC and intermediate bytes: waiting for the final byte
	inCSI                                // ESC [ and parameters: waiting for the final byte
	inControlString                      // OSC, DCS, SOS, PM or APC: up to BEL or ESC \
	inControlStringEscape                // ESC inside a control string
)

// maxSGR is the longest colour sequence a sanitizer keeps; a longer one is dropped.
const maxSGR = 64

// sanitizer removes from a stream of bytes what a terminal would act on, as clean describes; with
// keepSGR it keeps whole, well-formed SGR (colour and style) sequences. It keeps its state between
// calls, so a sequence or character split between two writes is still recognised.
type sanitizer struct {
	keepSGR bool
	state   sanitizerState
	pending []byte // the character or CSI sequence being read
	need    int    // the length of the character being read
}

// append appends src, sanitized, to dst.
func (s *sanitizer) append(dst, src []byte) []byte {
	for _, b := range src {
		dst = s.byte(dst, b)
	}
	return dst
}

// finish appends what an input that ends now leaves: a replacement character for a cut-off
// character; an unfinished escape sequence is dropped.
func (s *sanitizer) finish(dst []byte) []byte {
	if s.state == inCharacter {
		dst = append(dst, string(utf8.RuneError)...)
	}
	s.state, s.pending = inText, s.pending[:0]
	return dst
}

// byte takes one byte of input and appends what it lets through to dst.
func (s *sanitizer) byte(dst []byte, b byte) []byte {
	switch s.state {
	case inCharacter:
		if b&0xc0 == 0x80 {
			if s.pending = append(s.pending, b); len(s.pending) < s.need {
				return dst
			}
			s.state = inText
			return appendCharacter(dst, s.pending)
		}
		dst = append(dst, string(utf8.RuneError)...)
		s.state = inText
	case inEscape:
		switch {
		case b == '[':
			s.state, s.pending = inCSI, append(s.pending[:0], 0x1b, b)
			return dst
		case b == ']' || b == 'P' || b == 'X' || b == '^' || b == '_':
			s.state = inControlString
			return dst
		case b >= 0x20 && b <= 0x2f:
			s.state = inEscapeIntermediate
			return dst
		case b >= 0x30 && b <= 0x7e:
			s.state = inText
			return dst
		}
		s.state = inText // a lone ESC: dropped, and b is text
	case inEscapeIntermediate:
		if b >= 0x20 && b <= 0x7e {
			if b >= 0x30 {
				s.state = inText
			}
			return dst
		}
		s.state = inText
	case inCSI:
		if b >= 0x20 && b <= 0x3f {
			if len(s.pending) < maxSGR {
				s.pending = append(s.pending, b)
			}
			return dst
		}
		s.state = inText
		if b >= 0x40 && b <= 0x7e {
			if s.keepSGR && b == 'm' && len(s.pending) < maxSGR && isSGRParameters(s.pending[2:]) {
				dst = append(append(dst, s.pending...), b)
			}
			return dst
		}
	case inControlString:
		switch b {
		case 0x1b:
			s.state = inControlStringEscape
			return dst
		case 0x07:
			s.state = inText
			return dst
		case '\n':
			// A control string never spans lines here, so that one left open cannot swallow the rest.
			s.state = inText
		default:
			return dst
		}
	case inControlStringEscape:
		if b == '\\' {
			s.state = inText
			return dst
		}
		// ESC ends the string and starts a sequence of its own.
		s.state = inEscape
		return s.byte(dst, b)
	}
	switch {
	case b == 0x1b:
		s.state = inEscape
	case b == '\n' || b == '\t' || b >= 0x20 && b < 0x7f:
		dst = append(dst, b)
	case b < 0x80: // other C0 controls and DEL
	case b >= 0xc2 && b <= 0xf4:
		s.state, s.pending = inCharacter, append(s.pending[:0], b)
		s.need = 2
		if b >= 0xe0 {
			s.need = 3
		}
		if b >= 0xf0 {
			s.need = 4
		}
	default:
		dst = append(dst, string(utf8.RuneError)...)
	}
	return dst
}

// appendCharacter appends the UTF-8 character c unless it is a C1 control or a bidirectional
// override, and a replacement character when c is not valid UTF-8.
func appendCharacter(dst, c []byte) []byte {
	r, _ := utf8.DecodeRune(c)
	switch {
	case !utf8.Valid(c):
		return append(dst, string(utf8.RuneError)...)
	case r >= 0x80 && r <= 0x9f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return dst
	}
	return append(dst, c...)
}

// isSGRParameters reports whether p is the parameter list of a colour sequence: digits, ';' and ':'.
func isSGRParameters(p []byte) bool {
	for _, b := range p {
		if (b < '0' || b > '9') && b != ';' && b != ':' {
			return false
		}
	}
	return true
}
