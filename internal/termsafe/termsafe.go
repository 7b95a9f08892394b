// Package termsafe removes from text that came from outside what a terminal would act on: control
// characters, escape sequences, invalid UTF-8 and bidirectional overrides.
package termsafe

import "unicode/utf8"

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

// Sanitizer removes from a stream of bytes what a terminal would act on: control characters other
// than newline and tab, escape sequences, invalid UTF-8 (which becomes U+FFFD), C1 controls and
// bidirectional overrides. It keeps its state between calls, so a sequence or character split
// between two writes is still recognised; its zero value keeps nothing but text.
type Sanitizer struct {
	// KeepSGR keeps whole, well-formed SGR (colour and style) sequences.
	KeepSGR bool
	// NewlineForCR turns a carriage return into a newline (CR LF into one newline) instead of dropping it.
	NewlineForCR bool

	state   sanitizerState
	afterCR bool   // the last byte was a carriage return turned into a newline
	pending []byte // the character or CSI sequence being read
	need    int    // the length of the character being read
}

// Clean returns text run whole through a new Sanitizer with s's options.
func (s Sanitizer) Clean(text string) string {
	fresh := Sanitizer{KeepSGR: s.KeepSGR, NewlineForCR: s.NewlineForCR}
	return string(fresh.Finish(fresh.Append(make([]byte, 0, len(text)), []byte(text))))
}

// Append appends src, sanitized, to dst.
func (s *Sanitizer) Append(dst, src []byte) []byte {
	for _, b := range src {
		dst = s.byte(dst, b)
	}
	return dst
}

// Finish appends what an input that ends now leaves: a replacement character for a cut-off
// character; an unfinished escape sequence is dropped.
func (s *Sanitizer) Finish(dst []byte) []byte {
	if s.state == inCharacter {
		dst = append(dst, string(utf8.RuneError)...)
	}
	s.state, s.pending, s.afterCR = inText, s.pending[:0], false
	return dst
}

// byte takes one byte of input and appends what it lets through to dst.
func (s *Sanitizer) byte(dst []byte, b byte) []byte {
	if s.afterCR {
		s.afterCR = false
		if b == '\n' {
			return dst
		}
	}
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
			if s.KeepSGR && b == 'm' && len(s.pending) < maxSGR && isSGRParameters(s.pending[2:]) {
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
	case b == '\r' && s.NewlineForCR:
		dst = append(dst, '\n')
		s.afterCR = true
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
