package dashboard

import "testing"

func TestLogRendererRendersColoursOnly(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
		want  []string
	}{
		{"plain text is escaped", []string{`<script>alert("x")</script> & it's`},
			[]string{`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; it&#39;s`}},
		{"colours and bold become classes", []string{"\x1b[1;32mok\x1b[0m done \x1b[91mred"},
			[]string{`<span class="fg2 bold">ok</span> done <span class="fg9">red</span>`}},
		{"state carries to the next line until a reset", []string{"\x1b[33mwarn", "still", "\x1b[mplain"},
			[]string{`<span class="fg3">warn</span>`, `<span class="fg3">still</span>`, `plain`}},
		{"256 colours keep the first 16, 24-bit colour is plain", []string{"\x1b[38;5;4mblue\x1b[38;5;208morange\x1b[38;2;1;2;3mrgb\x1b[48;5;1mbg"},
			[]string{`<span class="fg4">blue</span>orange` + `rgb<span class="bg1">bg</span>`}},
		{"a hyperlink's target is dropped, its text kept", []string{"\x1b]8;;javascript:alert(1)\x07click\x1b]8;;\x07 here"},
			[]string{`click here`}},
		{"an image escape is dropped to the end of the line", []string{"before\x1b]1338;url=http://evil.example/x.png"},
			[]string{`before`}},
		{"other escapes and control characters are dropped", []string{"\x1b[2K\x1b[1Gprogress\r 100%\x07\x1b(B\ttab"},
			[]string{"progress 100%\ttab"}},
		{"invalid UTF-8 is replaced", []string{"a\xffb"}, []string{"a\uFFFDb"}},
		{"a sequence with other bytes ends at its first final byte", []string{"\x1b[31\" onmouseover=\"x;1mtext"}, []string{`nmouseover=&#34;x;1mtext`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newLogRenderer()
			for i, line := range tc.lines {
				if got := r.line(line); got != tc.want[i] {
					t.Errorf("line %q\n got %s\nwant %s", line, got, tc.want[i])
				}
			}
		})
	}
}
