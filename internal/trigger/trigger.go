// Package trigger owns the rules that decide whether a push or a pull request deploys and where
// (contract section 7): which environment a branch deploys to, skip markers in commit messages,
// glob lists with "!" excludes for branches and watch paths, the watch-paths decision with the
// cases in which a payload cannot tell and the push builds, and the names and host labels of
// preview aliases.
//
// Everything here is pure: the caller brings the project's settings, the payload's facts and the
// last deployed commit, and gets a decision it can explain to the user.
package trigger

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// skipMarkers are the markers that skip a push or a pull request update, in lowercase.
var skipMarkers = []string{"[skip ci]", "[ci skip]", "[no ci]", "[skip miaobu]", "[miaobu skip]"}

// SkipMarker returns the first skip marker in message as it is written there (any case) and true,
// or "" and false when the message has none.
func SkipMarker(message string) (string, bool) {
	// Only ASCII letters are folded, so that offsets in lower are offsets in message: the markers
	// are ASCII, and Unicode folding could change a string's length.
	lower := []byte(message)
	for i, c := range lower {
		if c >= 'A' && c <= 'Z' {
			lower[i] = c + 'a' - 'A'
		}
	}
	first, end := -1, 0
	for _, marker := range skipMarkers {
		if i := strings.Index(string(lower), marker); i >= 0 && (first < 0 || i < first) {
			first, end = i, i+len(marker)
		}
	}
	if first < 0 {
		return "", false
	}
	return message[first:end], true
}

// Match reports whether name matches the glob list patterns: at least one pattern without a
// leading "!" matches it (or every pattern is an exclusion) and no "!" pattern does, so exclusion
// wins. "*" stays within one "/"-separated segment and "**" crosses them; an empty list matches
// nothing, and an invalid pattern never matches.
func Match(patterns []string, name string) bool {
	included, hasInclude := false, false
	for _, pattern := range patterns {
		if exclude, ok := strings.CutPrefix(pattern, "!"); ok {
			if matched, err := doublestar.Match(exclude, name); err == nil && matched {
				return false
			}
			continue
		}
		hasInclude = true
		if !included {
			matched, err := doublestar.Match(pattern, name)
			included = err == nil && matched
		}
	}
	return len(patterns) > 0 && (included || !hasInclude)
}

// Validate checks a glob list before it is stored, naming the first pattern that is not valid and
// why.
func Validate(patterns []string) error {
	for _, pattern := range patterns {
		glob := strings.TrimPrefix(pattern, "!")
		switch {
		case strings.TrimSpace(glob) == "":
			return fmt.Errorf("empty pattern %q", pattern)
		case strings.HasPrefix(glob, "/"):
			return fmt.Errorf("pattern %q starts with \"/\": patterns match names relative to the repository, such as src/** or release/*", pattern)
		case !doublestar.ValidatePattern(glob):
			return fmt.Errorf("pattern %q is not a valid glob (check its brackets, braces and escapes)", pattern)
		}
	}
	return nil
}

// Fork preview policies, the values of a project's fork_previews.
const (
	ForkPreviewsOff     = "off"
	ForkPreviewsApprove = "approve"
	ForkPreviewsOn      = "on"
)

// Ways a project finds new commits, the values of its trigger.
const (
	ModeWebhook = "webhook"
	ModePoll    = "poll"
)

// CheckForkPreviews returns an error unless policy is a fork preview policy.
func CheckForkPreviews(policy string) error {
	return oneOf(policy, ForkPreviewsOff, ForkPreviewsApprove, ForkPreviewsOn)
}

// CheckMode returns an error unless mode is a way to find new commits.
func CheckMode(mode string) error {
	return oneOf(mode, ModeWebhook, ModePoll)
}

// oneOf returns an error naming the choices unless value is one of them.
func oneOf(value string, choices ...string) error {
	if slices.Contains(choices, value) {
		return nil
	}
	return fmt.Errorf("must be %s or %s, not %q", strings.Join(choices[:len(choices)-1], ", "), choices[len(choices)-1], value)
}

// Environment returns the alias a push to branch deploys to: "" (production) for the project's
// default branch, the branch's preview alias for a branch matching previewBranches, and false
// for any other branch.
func Environment(branch, defaultBranch string, previewBranches []string) (alias string, ok bool) {
	switch {
	case branch == defaultBranch:
		return "", true
	case Match(previewBranches, branch):
		return BranchAlias(branch), true
	}
	return "", false
}

// Change is what a push payload tells about the commits it brings.
type Change struct {
	// Before is the commit the branch pointed to before the push.
	Before string
	// Forced reports a push that rewrote the branch's history.
	Forced bool
	// Commits is the length of the payload's commits list.
	Commits int
	// Files is the union of the commits' added, modified and removed paths.
	Files []string
}

// MaxPayloadCommits is the most commits GitHub lists in a push payload; a push of more is cut to
// this many, so a list of this length may not tell every changed file.
const MaxPayloadCommits = 2048

// Decision is whether a push builds, and why in words fit for the log and the webhook's answer.
type Decision struct {
	Build  bool
	Reason string
}

// NoWatchedChange is the reason a push is skipped when none of its changed files matches the
// project's watch paths.
const NoWatchedChange = "no changed file matches watch_paths"

// Watched decides whether a push builds under the watch-path patterns watch, given the last
// deployed commit of the alias it deploys to ("" when there is none). An empty watch list watches
// every path; when the payload cannot tell which files changed since that commit, it builds.
func Watched(watch []string, change Change, lastDeployed string) Decision {
	switch {
	case len(watch) == 0:
		return Decision{true, "no watch_paths"}
	case change.Forced:
		return Decision{true, "forced push: the changed files are unknown"}
	case lastDeployed == "" || change.Before != lastDeployed:
		return Decision{true, "the push does not start at the last deployed commit: the changed files are unknown"}
	case change.Commits >= MaxPayloadCommits:
		return Decision{true, "the payload lists only the first " + strconv.Itoa(MaxPayloadCommits) + " commits: the changed files are unknown"}
	case change.Commits == 0:
		return Decision{true, "the payload lists no commits: the changed files are unknown"}
	}
	for _, file := range change.Files {
		if Match(watch, file) {
			return Decision{true, file + " matches watch_paths"}
		}
	}
	return Decision{false, NoWatchedChange}
}

// PullRequestAlias returns the alias of pull request n's preview.
func PullRequestAlias(n int) string {
	return "pr-" + strconv.Itoa(n)
}

// BranchAlias returns the alias of a preview branch: "git-" and the branch's slug.
func BranchAlias(branch string) string {
	return "git-" + BranchSlug(branch)
}

// BranchSlug returns branch lowercased, with every run of other characters than a-z and 0-9
// turned into "-" and no "-" at either end; a branch with no ASCII letter or digit, whose slug
// would be empty, gets the first 6 hex digits of the SHA-256 of its name instead, so that its host
// label stays a valid DNS label.
func BranchSlug(branch string) string {
	var b strings.Builder
	dash := false
	for _, c := range []byte(strings.ToLower(branch)) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	if slug := strings.Trim(b.String(), "-"); slug != "" {
		return slug
	}
	return nameHash(branch)
}

// nameHash returns the first 6 hex digits of the SHA-256 of name.
func nameHash(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])[:6]
}

// MaxLabel is the longest host label DNS allows.
const MaxLabel = 63

// HostLabel returns the first label of the host that serves alias of the project with slug:
// "<slug>--<alias>", or, when that is longer than MaxLabel, its beginning followed by "-" and the
// first 6 hex digits of the SHA-256 of the branch of a branch preview, or of the alias of pull
// request pullRequest's.
func HostLabel(slug, alias string, pullRequest int, branch string) string {
	label := slug + "--" + alias
	if len(label) <= MaxLabel {
		return label
	}
	if pullRequest != 0 {
		branch = alias
	}
	suffix := "-" + nameHash(branch)
	return strings.TrimRight(label[:MaxLabel-len(suffix)], "-") + suffix
}
