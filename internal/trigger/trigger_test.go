package trigger

import (
	"regexp"
	"strings"
	"testing"
)

func TestSkipMarker(t *testing.T) {
	for _, tc := range []struct {
		message, want string
	}{
		{"Update README [skip ci]", "[skip ci]"},
		{"[ci skip] typo", "[ci skip]"},
		{"Bump deps [no ci]", "[no ci]"},
		{"docs [skip miaobu]", "[skip miaobu]"},
		{"docs [miaobu skip]", "[miaobu skip]"},
		{"Release notes [SKIP CI]", "[SKIP CI]"},
		{"wip [Ci Skip]", "[Ci Skip]"},
		{"Fix the footer\n\nNothing to deploy yet. [No CI]", "[No CI]"},
		{"[skip miaobu] first, [skip ci] second", "[skip miaobu]"},
		{"prefix [no ci] then [skip ci]", "[no ci]"},
		// Letters whose Unicode lowercase has another length must not shift the marker's offset.
		{"İİİ Ⱥ [Skip CI]", "[Skip CI]"},
		{"Fix: ẞtraße K [MIAOBU SKIP]", "[MIAOBU SKIP]"},
		{"[skip-ci] is not a marker", ""},
		{"[skip  ci] has two spaces", ""},
		{"skip ci without brackets", ""},
		{"[skip ci", ""},
		{"", ""},
		{"[ſkip ci] with a long s", ""},
	} {
		got, ok := SkipMarker(tc.message)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("SkipMarker(%q) = %q, %v; want %q", tc.message, got, ok, tc.want)
		}
	}
}

// FuzzSkipMarker checks that a marker found is in the message as returned, and that every
// message holding a marker is found to.
func FuzzSkipMarker(f *testing.F) {
	f.Add("Update [skip ci]", 0)
	f.Add("İ\xff[MiAoBu SkIp]", 2)
	f.Fuzz(func(t *testing.T, message string, pick int) {
		if got, ok := SkipMarker(message); ok {
			if !strings.Contains(message, got) || !isMarker(got) {
				t.Fatalf("SkipMarker(%q) = %q", message, got)
			}
		}
		marker := skipMarkers[uint(pick)%uint(len(skipMarkers))]
		withMarker := message + strings.ToUpper(marker[:3]) + marker[3:]
		if _, ok := SkipMarker(withMarker); !ok {
			t.Fatalf("no marker found in %q", withMarker)
		}
	})
}

// isMarker reports whether s is a skip marker in some case.
func isMarker(s string) bool {
	for _, marker := range skipMarkers {
		if strings.EqualFold(s, marker) && len(s) == len(marker) {
			return true
		}
	}
	return false
}

func TestMatch(t *testing.T) {
	branches := []string{"release/*", "feature/**", "!feature/wip-*", "!**/experimental/**", "hotfix-?"}
	for _, tc := range []struct {
		patterns []string
		name     string
		want     bool
	}{
		{branches, "release/1.2", true},
		{branches, "release/1.2/rc1", false}, // * stays within one segment
		{branches, "feature/login", true},
		{branches, "feature/auth/oauth", true}, // ** crosses segments
		{branches, "feature/wip-login", false},
		{branches, "feature/team/experimental/x", false}, // exclusion wins over feature/**
		{branches, "hotfix-1", true},
		{branches, "hotfix-12", false},
		{branches, "main", false},
		{[]string{"!docs/**"}, "src/app.ts", true}, // only exclusions: everything else matches
		{[]string{"!docs/**"}, "docs/guide.md", false},
		{[]string{"!docs/**"}, "docs", false},
		{[]string{"src/**", "*.json"}, "package.json", true},
		{[]string{"src/**", "*.json"}, "config/app.json", false},
		{[]string{"**/*.{ts,tsx}"}, "src/components/Hero.tsx", true},
		{[]string{"**/*.{ts,tsx}"}, "Hero.tsx", true},
		{[]string{"Feature/*"}, "feature/x", false}, // names are matched case-sensitively, as git does
		{nil, "main", false},
		{[]string{}, "main", false},
		{[]string{"[a-"}, "[a-", false}, // an invalid pattern never matches
		{[]string{"**", "![z-a]"}, "src/x", true},
	} {
		if got := Match(tc.patterns, tc.name); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.patterns, tc.name, got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		patterns []string
		wantErr  string
	}{
		{nil, ""},
		{[]string{"release/*", "!release/old-*", "**/*.{ts,tsx}", `docs/\[draft\]`}, ""},
		{[]string{"main", ""}, `empty pattern ""`},
		{[]string{"!"}, `empty pattern "!"`},
		{[]string{" "}, `empty pattern " "`},
		{[]string{"/src/**"}, `pattern "/src/**" starts with "/"`},
		{[]string{"!/docs"}, `pattern "!/docs" starts with "/"`},
		{[]string{"src/[a-"}, `pattern "src/[a-" is not a valid glob`},
		{[]string{"{a,b"}, `pattern "{a,b" is not a valid glob`},
	} {
		err := Validate(tc.patterns)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("Validate(%q) = %v, want %q", tc.patterns, err, tc.wantErr)
		}
	}
}

func TestEnvironment(t *testing.T) {
	previews := []string{"**", "!dependabot/**"}
	for _, tc := range []struct {
		branch   string
		previews []string
		alias    string
		ok       bool
	}{
		{"main", previews, "", true}, // the default branch is production even when a glob matches it
		{"feature/Login_Form", previews, "git-feature-login-form", true},
		{"dependabot/npm_and_yarn/vite-5.4.2", previews, "", false},
		{"feature/x", nil, "", false},
		{"main", nil, "", true},
	} {
		alias, ok := Environment(tc.branch, "main", tc.previews)
		if alias != tc.alias || ok != tc.ok {
			t.Errorf("Environment(%q) = %q, %v; want %q, %v", tc.branch, alias, ok, tc.alias, tc.ok)
		}
	}
}

func TestWatched(t *testing.T) {
	const live, other = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	watch := []string{"**", "!docs/**", "!**/*.md"}
	docs := []string{"README.md", "docs/img/a.png", "docs/guide.md"}
	for _, tc := range []struct {
		name   string
		watch  []string
		change Change
		last   string
		build  bool
		reason string
	}{
		{"only excluded paths", watch, Change{Before: live, Commits: 2, Files: docs}, live, false, NoWatchedChange},
		{"a watched path", watch, Change{Before: live, Commits: 2, Files: append(docs, "src/main.ts")}, live, true, "src/main.ts matches watch_paths"},
		{"no watch paths", nil, Change{Before: live, Commits: 1, Files: docs}, live, true, "no watch_paths"},
		{"forced push", watch, Change{Before: live, Forced: true, Commits: 1, Files: docs}, live, true, "forced push: the changed files are unknown"},
		{"before is not the last deployed", watch, Change{Before: other, Commits: 1, Files: docs}, live, true,
			"the push does not start at the last deployed commit: the changed files are unknown"},
		{"nothing deployed yet", watch, Change{Before: live, Commits: 1, Files: docs}, "", true,
			"the push does not start at the last deployed commit: the changed files are unknown"},
		{"a new branch", watch, Change{Before: strings.Repeat("0", 40), Commits: 1, Files: docs}, "", true,
			"the push does not start at the last deployed commit: the changed files are unknown"},
		{"a full commits list", watch, Change{Before: live, Commits: MaxPayloadCommits, Files: docs}, live, true,
			"the payload lists only the first 2048 commits: the changed files are unknown"},
		{"one commit fewer", watch, Change{Before: live, Commits: MaxPayloadCommits - 1, Files: docs}, live, false, NoWatchedChange},
		{"no commits listed", watch, Change{Before: live}, live, true, "the payload lists no commits: the changed files are unknown"},
		{"commits that change no file", watch, Change{Before: live, Commits: 1}, live, false, NoWatchedChange},
	} {
		got := Watched(tc.watch, tc.change, tc.last)
		if got.Build != tc.build || got.Reason != tc.reason {
			t.Errorf("%s: Watched = %+v, want build %v %q", tc.name, got, tc.build, tc.reason)
		}
	}
}

func TestAliases(t *testing.T) {
	for _, tc := range []struct{ branch, slug string }{
		{"feature/login", "feature-login"},
		{"Feature/Login_Form", "feature-login-form"},
		{"--fix--it--", "fix-it"},
		{"release/v1.2.3", "release-v1-2-3"},
		{"ünïcode/ブランチ", "n-code"},
		{"a//b..c", "a-b-c"},
		// No ASCII letter or digit: the first 6 hex digits of SHA-256("<branch>"), never "".
		{"___", "bda251"},
		{"日本語", "77710a"},
		{"-", "3973e0"},
	} {
		if got := BranchSlug(tc.branch); got != tc.slug {
			t.Errorf("BranchSlug(%q) = %q, want %q", tc.branch, got, tc.slug)
		}
	}
	if got := BranchAlias("Feature/Login"); got != "git-feature-login" {
		t.Errorf("BranchAlias = %q", got)
	}
	if got := PullRequestAlias(12); got != "pr-12" {
		t.Errorf("PullRequestAlias = %q", got)
	}
}

func TestHostLabel(t *testing.T) {
	const long = "feature/a-very-long-branch-name-that-goes-on-and-on-and-on-forever-and-ever"
	fifty := strings.Repeat("a", 50)
	for _, tc := range []struct {
		slug, alias string
		pr          int
		branch      string
		want        string
	}{
		{"blog", "pr-12", 12, "feature/x", "blog--pr-12"},
		{"blog", "git-feature-login", 0, "feature/login", "blog--git-feature-login"},
		// Cut at 63 characters: the beginning, "-", and the first 6 hex digits of SHA-256("<branch>").
		{"blog", BranchAlias(long), 0, long, "blog--git-feature-a-very-long-branch-name-that-goes-on-a-ce2cb7"},
		{fifty, BranchAlias("Dependabot/NPM_and_yarn/Vite-5.4.2"), 0, "Dependabot/NPM_and_yarn/Vite-5.4.2", fifty + "--git-dc5915"},
		{fifty, "git-abcdefg", 0, "x", fifty + "--git-abcdefg"}, // exactly 63
		// A pull request's label is cut with the SHA-256 of its alias, "pr-123456789012", whatever its branch.
		{fifty, "pr-123456789012", 123456789012, "x", fifty + "--pr-1-2155de"},
	} {
		got := HostLabel(tc.slug, tc.alias, tc.pr, tc.branch)
		if got != tc.want || len(got) > MaxLabel {
			t.Errorf("HostLabel(%q, %q, %d, %q) = %q (%d), want %q", tc.slug, tc.alias, tc.pr, tc.branch, got, len(got), tc.want)
		}
	}
}

var hostLabel = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*--[a-z0-9]+(-[a-z0-9]+)*$`)

// FuzzHostLabel checks that every branch, whatever its characters, gives a host label DNS accepts
// (at most 63 letters, digits and inner "-"), in which "--" separates the slug from the alias alone.
func FuzzHostLabel(f *testing.F) {
	f.Add("blog", "feature/login")
	f.Add(strings.Repeat("s", 50), strings.Repeat("x", 80)+"1")
	f.Add("site-1", "ü/\x00//ß")
	f.Add("blog", "___")
	f.Add(strings.Repeat("s", 50), "日本語")
	f.Fuzz(func(t *testing.T, name, branch string) {
		slug := BranchSlug(name)
		if len(slug) > 50 {
			slug = strings.TrimRight(slug[:50], "-")
		}
		if slug == "" {
			slug = "site" // a project's slug is never empty
		}
		label := HostLabel(slug, BranchAlias(branch), 0, branch)
		if len(label) > MaxLabel || !hostLabel.MatchString(label) || !strings.HasPrefix(label, slug+"--git") {
			t.Fatalf("HostLabel(%q, %q) = %q", slug, branch, label)
		}
	})
}
