package dashboard

import (
	"html"
	"strconv"
	"strings"
)

// logStyle is the SGR state of a build log: colours 0-15 (-1 for the default) and attributes.
type logStyle struct {
	fg, bg                         int
	bold, faint, italic, underline bool
}

// plainStyle is the state a log starts in.
var plainStyle = logStyle{fg: -1, bg: -1}

// classes is the style as the stylesheet's class names, "" for the plain style.
func (s logStyle) classes() string {
	var c []string
	if s.fg >= 0 {
		c = append(c, "fg"+strconv.Itoa(s.fg))
	}
	if s.bg >= 0 {
		c = append(c, "bg"+strconv.Itoa(s.bg))
	}
	for _, a := range []struct {
		on   bool
		name string
	}{{s.bold, "bold"}, {s.faint, "faint"}, {s.italic, "italic"}, {s.underline, "underline"}} {
		if a.on {
			c = append(c, a.name)
		}
	}
	return strings.Join(c, " ")
}

// logRenderer turns a build log into HTML one line at a time: SGR colours and attributes become
// spans with classes, carried from line to line; every other escape sequence and control character
// is dropped, and all text is escaped, so nothing else in a log acts on the page.
type logRenderer struct {
	style logStyle
}

// newLogRenderer returns a renderer at the start of a log.
func newLogRenderer() *logRenderer { return &logRenderer{style: plainStyle} }

// line renders one line of the log, without its newline, as HTML.
func (r *logRenderer) line(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var out, text strings.Builder
	flush := func() {
		if text.Len() == 0 {
			return
		}
		escaped := html.EscapeString(text.String())
		if c := r.style.classes(); c != "" {
			out.WriteString(`<span class="` + c + `">` + escaped + `</span>`)
		} else {
			out.WriteString(escaped)
		}
		text.Reset()
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == 0x1b && i+1 < len(s) && s[i+1] == '[':
			end := i + 2
			for end < len(s) && (s[end] < 0x40 || s[end] > 0x7e) {
				end++
			}
			if end < len(s) && s[end] == 'm' {
				flush()
				r.apply(s[i+2 : end])
			}
			i = end + 1
		case c == 0x1b && i+1 < len(s) && s[i+1] == ']':
			// An operating system command (a title, a link) runs to BEL or ESC \, or to the line's end.
			end := i + 2
			for end < len(s) && s[end] != 0x07 && !(s[end] == 0x1b && end+1 < len(s) && s[end+1] == '\\') {
				end++
			}
			if end < len(s) && s[end] == 0x1b {
				end++
			}
			i = end + 1
		case c == 0x1b:
			// Any other escape: intermediate bytes, then one final byte.
			i++
			for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f {
				i++
			}
			i++
		case c < 0x20 && c != '\t', c == 0x7f:
			i++
		default:
			text.WriteByte(c)
			i++
		}
	}
	flush()
	return out.String()
}

// apply changes the style by the parameters of one SGR sequence ("1;31", "" for a reset).
func (r *logRenderer) apply(params string) {
	codes := strings.FieldsFunc(params, func(c rune) bool { return c == ';' || c == ':' })
	if len(codes) == 0 {
		codes = []string{"0"}
	}
	for i := 0; i < len(codes); i++ {
		n, err := strconv.Atoi(codes[i])
		if err != nil {
			continue
		}
		st := &r.style
		switch {
		case n == 0:
			*st = plainStyle
		case n == 1:
			st.bold = true
		case n == 2:
			st.faint = true
		case n == 3:
			st.italic = true
		case n == 4:
			st.underline = true
		case n == 22:
			st.bold, st.faint = false, false
		case n == 23:
			st.italic = false
		case n == 24:
			st.underline = false
		case n >= 30 && n <= 37:
			st.fg = n - 30
		case n >= 90 && n <= 97:
			st.fg = n - 90 + 8
		case n == 39:
			st.fg = -1
		case n >= 40 && n <= 47:
			st.bg = n - 40
		case n >= 100 && n <= 107:
			st.bg = n - 100 + 8
		case n == 49:
			st.bg = -1
		case (n == 38 || n == 48) && i+1 < len(codes):
			// 256 colours keep the first 16, which the stylesheet has; 24-bit colour is left plain.
			colour := -1
			if codes[i+1] == "5" && i+2 < len(codes) {
				if c, err := strconv.Atoi(codes[i+2]); err == nil && c < 16 {
					colour = c
				}
				i += 2
			} else if codes[i+1] == "2" {
				i += 4
			}
			if n == 38 {
				st.fg = colour
			} else {
				st.bg = colour
			}
		}
	}
}
