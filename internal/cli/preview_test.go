package cli

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestGlobListKeepsBracesTogether(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		value string
		want  []string
	}{
		{"feature/**,!feature/wip-*", []string{"feature/**", "!feature/wip-*"}},
		{"src/**/*.{ts,tsx}, package.json", []string{"src/**/*.{ts,tsx}", "package.json"}},
		{"docs/[a,b]/*,x", []string{"docs/[a,b]/*", "x"}},
		{"a,,b,", []string{"a", "b"}},
		{"", []string{}},
	} {
		var g globList
		if err := g.Set(tc.value); err != nil || !slices.Equal(g, tc.want) {
			t.Errorf("Set(%q) = %q, %v; want %q", tc.value, g, err, tc.want)
		}
	}
}

// parseTriggers parses args as the trigger flags of a command and returns its settings.
func parseTriggers(t *testing.T, args ...string) (*triggerFlags, *cobra.Command, error) {
	t.Helper()
	var f triggerFlags
	cmd := &cobra.Command{Use: "set"}
	f.register(cmd)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	_, err := f.settings(cmd.Flags())
	return &f, cmd, err
}

func TestTriggerFlags(t *testing.T) {
	t.Parallel()
	f, cmd, err := parseTriggers(t, "--preview-branches", "feature/**,!feature/wip-*", "--pr-previews=false", "--fork-previews", "on",
		"--watch-paths", "", "--trigger", "poll")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := f.settings(cmd.Flags())
	if s.PreviewBranches == nil || !slices.Equal(*s.PreviewBranches, []string{"feature/**", "!feature/wip-*"}) ||
		s.PRPreviews == nil || *s.PRPreviews || s.ForkPreviews == nil || *s.ForkPreviews != "on" ||
		s.WatchPaths == nil || len(*s.WatchPaths) != 0 || s.Trigger == nil || *s.Trigger != "poll" {
		t.Fatalf("settings %+v", s)
	}
	// Flags not given stay nil: the agent keeps (or defaults) those settings.
	f, cmd, _ = parseTriggers(t, "--fork-previews", "off")
	if s, _ := f.settings(cmd.Flags()); s.PreviewBranches != nil || s.PRPreviews != nil || s.WatchPaths != nil || s.Trigger != nil {
		t.Fatalf("settings of flags not given: %+v", s)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--fork-previews", "maybe"}, `--fork-previews must be off, approve or on, not "maybe"`},
		{[]string{"--trigger", "cron"}, `--trigger must be webhook or poll, not "cron"`},
		{[]string{"--watch-paths", "/src/**"}, `--watch-paths: pattern "/src/**" starts with "/"`},
		{[]string{"--preview-branches", "release/[1-"}, `--preview-branches: pattern "release/[1-" is not a valid glob`},
	} {
		_, _, err := parseTriggers(t, tc.args...)
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want a usage error saying %s", tc.args, err, tc.want)
		}
	}
}
