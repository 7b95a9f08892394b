package termsafe

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// sanitize runs src through a sanitizer in one write.
func sanitize(src string, keepSGR bool) string {
	return Sanitizer{KeepSGR: keepSGR}.Clean(src)
}

func TestSanitizer(t *testing.T) {
	for _, tc := range []struct {
		name, in, plain, colour string // colour: the output with keepSGR; "" means the same as plain
	}{
		{"text", "Fix the header: ünïcödé 中文 😀", "Fix the header: ünïcödé 中文 😀", ""},
		{"newline and tab", "one\ttwo\nthree", "one\ttwo\nthree", ""},
		{"title set ended by BEL", "a\x1b]0;pwned\x07b", "ab", ""},
		{"title set ended by ST", "a\x1b]2;pwned\x1b\\b", "ab", ""},
		{"hyperlink", "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\", "click", ""},
		{"DCS, PM and APC", "a\x1bPq#0\x1b\\b\x1b^x\x07c\x1b_y\x07d", "abcd", ""},
		{"colour", "\x1b[31mred\x1b[0m plain", "red plain", "\x1b[31mred\x1b[0m plain"},
		{"256 colours and reset", "\x1b[38;5;196mx\x1b[m", "x", "\x1b[38;5;196mx\x1b[m"},
		{"cursor movement and clearing", "\x1b[2J\x1b[1;1Hx\x1b[1A\x1b[K", "x", ""},
		{"private modes", "\x1b[?25l\x1b[?1049hx", "x", ""},
		{"SGR with an intermediate", "\x1b[1 mx", "x", ""},
		{"too long a colour", "\x1b[" + strings.Repeat("1;", 40) + "mx", "x", ""},
		{"two-byte escapes", "\x1b7a\x1b8\x1bcb\x1b(Bc", "abc", ""},
		{"a lone ESC", "a\x1b\x01b\x1b", "ab", ""},
		{"C0 controls and DEL", "a\rb\bc\x00d\x7fe\x07f", "abcdef", ""},
		{"C1 controls", "a\u009b31mb\u009dc\u0085", "a31mbc", ""},
		{"bidirectional overrides", "\u202egnp.exe\u202c and \u2066x\u2069", "gnp.exe and x", ""},
		{"invalid UTF-8", "a\xffb\xc0\xafc\xed\xa0\x80d", "a\ufffdb\ufffd\ufffdc\ufffdd", ""},
		{"a character cut off at the end", "a\xe4\xb8", "a\ufffd", ""},
		{"an unterminated title stops at the line's end", "\x1b]0;title\nnext line", "\nnext line", ""},
		{"ESC inside a control string starts a sequence", "\x1b]0;t\x1b[31mx", "x", "\x1b[31mx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sanitize(tc.in, false); got != tc.plain {
				t.Errorf("plain: %q, want %q", got, tc.plain)
			}
			want := tc.colour
			if want == "" {
				want = tc.plain
			}
			if got := sanitize(tc.in, true); got != want {
				t.Errorf("with colours: %q, want %q", got, want)
			}
		})
	}
}

// sgr matches a colour sequence, the only escape sequence a sanitizer keeps.
var sgr = regexp.MustCompile(`^\x1b\[[0-9;:]*m`)

// FuzzSanitizer checks what comes out of a sanitizer for any input: valid UTF-8 with no control
// character but newline and tab, no C1 control, no bidirectional override and, with keepSGR, no
// escape sequence but colours; the same output however the input is split between writes; and
// nothing more to remove in it.
func FuzzSanitizer(f *testing.F) {
	for _, seed := range []string{"plain", "a\x1b]0;pwned\x07b", "\x1b[31mred\x1b[0m", "\x1b[2J", "a\u009b31m", "\xe4\xb8\xad\xff",
		"\x1b]8;;x\x1b\\y", "\u202ex", "\x1bP\x1b\\", "\x1b[" + strings.Repeat("9", 70) + "m", "a\r\nb\rc\r"} {
		f.Add([]byte(seed), uint(len(seed)/2), true, false)
		f.Add([]byte(seed), uint(1), false, true)
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint, keepSGR, newlineForCR bool) {
		opts := Sanitizer{KeepSGR: keepSGR, NewlineForCR: newlineForCR}
		out := opts.Clean(string(in))
		if !utf8.ValidString(out) {
			t.Fatalf("%q gave invalid UTF-8 %q", in, out)
		}
		for i := 0; i < len(out); {
			if m := sgr.FindString(out[i:]); keepSGR && m != "" {
				i += len(m)
				continue
			}
			r, size := utf8.DecodeRuneInString(out[i:])
			if r < 0x20 && r != '\n' && r != '\t' || r >= 0x7f && r <= 0x9f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 {
				t.Fatalf("%q let %U through at %d of %q", in, r, i, out)
			}
			i += size
		}

		cut := int(split % uint(len(in)+1))
		s := opts
		chunked := s.Append(nil, in[:cut])
		chunked = s.Finish(s.Append(chunked, in[cut:]))
		if string(chunked) != out {
			t.Fatalf("%q split at %d gave %q, whole %q", in, cut, chunked, out)
		}
		if again := opts.Clean(out); again != out {
			t.Fatalf("%q: a second pass changed %q to %q", in, out, again)
		}
	})
}

func TestNewlineForCR(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a\rb", "a\nb"},
		{"a\r\nb", "a\nb"},
		{"a\r\r\nb", "a\n\nb"},
		{"a\n\rb\r", "a\n\nb\n"},
		{"\x1b[31ma\x1b[0m\rb\x1b[2K", "\x1b[31ma\x1b[0m\nb"},
	} {
		s := Sanitizer{KeepSGR: true, NewlineForCR: true}
		if got := s.Clean(tc.in); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
		// Byte by byte: a CR LF split between two writes is still one newline.
		var out []byte
		for i := range len(tc.in) {
			out = s.Append(out, []byte{tc.in[i]})
		}
		if got := string(s.Finish(out)); got != tc.want {
			t.Errorf("%q byte by byte: %q, want %q", tc.in, got, tc.want)
		}
	}
}
