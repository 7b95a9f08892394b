package trigger_test

import (
	"testing"

	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/github/githubtest"
	"github.com/miaobu/miaobu/internal/trigger"
)

// push parses a push payload of githubtest after edit (when not nil) has changed its decoded form.
func push(t *testing.T, name string, edit func(map[string]any)) *github.Push {
	t.Helper()
	p, err := github.ParsePush(githubtest.Payload(t, name, edit))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// change is what the watch-path rule reads from a push.
func change(p *github.Push) trigger.Change {
	return trigger.Change{Before: p.Before, Forced: p.Forced, Commits: p.Commits, Files: p.Files}
}

func TestSkipMarkersInPushPayloads(t *testing.T) {
	for _, marker := range []string{"[skip ci]", "[ci skip]", "[no ci]", "[skip miaobu]", "[miaobu skip]", "[Skip CI]", "[MIAOBU SKIP]"} {
		p := push(t, "push.skip-ci.json", func(doc map[string]any) {
			doc["head_commit"].(map[string]any)["message"] = "Bump the copyright year\n\n" + marker + " nothing to see"
		})
		_, message, _ := p.Commit()
		if got, ok := trigger.SkipMarker(message); !ok || got != marker {
			t.Errorf("SkipMarker of a push saying %s = %q, %v", marker, got, ok)
		}
	}
	// Only the head commit counts: a marker in an earlier commit of the push does not skip it.
	p := push(t, "push.docs-only.json", func(doc map[string]any) {
		doc["commits"].([]any)[0].(map[string]any)["message"] = "docs: draft [skip ci]"
	})
	if _, message, _ := p.Commit(); message != "docs: fix a link" {
		t.Fatalf("head commit message %q", message)
	} else if got, ok := trigger.SkipMarker(message); ok {
		t.Errorf("SkipMarker(%q) = %q", message, got)
	}
}

func TestWatchPathsWithPushPayloads(t *testing.T) {
	watch := []string{"**", "!docs/**", "!**/*.md"}

	docs := push(t, "push.docs-only.json", nil)
	if d := trigger.Watched(watch, change(docs), docs.Before); d.Build || d.Reason != trigger.NoWatchedChange {
		t.Errorf("a push touching only excluded paths: %+v, want skipped", d)
	}
	// The same push after a push that was skipped: the payload does not tell what changed since
	// the last deployed commit.
	if d := trigger.Watched(watch, change(docs), "0123456789abcdef0123456789abcdef01234567"); !d.Build {
		t.Errorf("a push not starting at the last deployed commit: %+v, want built", d)
	}
	// A forced push of the same kind of change builds: its commits need not be all that changed.
	forced := push(t, "push.forced.json", nil)
	if d := trigger.Watched(watch, change(forced), forced.Before); !d.Build || d.Reason != "forced push: the changed files are unknown" {
		t.Errorf("a forced push: %+v, want built", d)
	}
	feature := push(t, "push.feature-branch.json", nil)
	if d := trigger.Watched(watch, change(feature), feature.Before); !d.Build || d.Reason != "public/hero.webp matches watch_paths" {
		t.Errorf("a push touching src/ and public/: %+v, want built", d)
	}
	if d := trigger.Watched([]string{"src/**"}, change(docs), docs.Before); d.Build {
		t.Errorf("a docs push under watch_paths src/**: %+v, want skipped", d)
	}
}

func TestPreviewBranchesWithPushPayloads(t *testing.T) {
	previews := []string{"feature/**", "!feature/wip-*"}
	for _, tc := range []struct {
		ref, alias string
		ok         bool
	}{
		{"refs/heads/feature/landing-page", "git-feature-landing-page", true},
		{"refs/heads/feature/wip-landing-page", "", false}, // excluded, though feature/** matches
		{"refs/heads/release/1.0", "", false},
		{"refs/heads/main", "", true},
	} {
		p := push(t, "push.feature-branch.json", func(doc map[string]any) { doc["ref"] = tc.ref })
		branch, _ := p.Branch()
		alias, ok := trigger.Environment(branch, "main", previews)
		if alias != tc.alias || ok != tc.ok {
			t.Errorf("push to %s: alias %q, %v; want %q, %v", tc.ref, alias, ok, tc.alias, tc.ok)
		}
	}
}
