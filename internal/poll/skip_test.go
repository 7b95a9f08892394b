package poll

import "testing"

func TestSkipMarker(t *testing.T) {
	for _, tc := range []struct{ message, want string }{
		{"Update README [skip ci]", "[skip ci]"},
		{"[CI SKIP] typo", "[CI SKIP]"},
		{"wip\n\n[no ci]", "[no ci]"},
		{"[Skip Miaobu] and [skip ci]", "[Skip Miaobu]"},
		{"docs [miaobu skip]", "[miaobu skip]"},
		{"prefix [no ci] then [skip ci]", "[no ci]"},
		{"skip ci without brackets", ""},
		{"[skip ci", ""},
		{"Ünïcode [SKIP CI] after", "[SKIP CI]"},
		{"", ""},
	} {
		if got := SkipMarker(tc.message); got != tc.want {
			t.Errorf("SkipMarker(%q) = %q, want %q", tc.message, got, tc.want)
		}
	}
}
