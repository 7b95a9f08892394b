package agent_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/github/githubtest"
	"github.com/miaobu/miaobu/internal/trigger"
)

// zeroSHA is the before of a push that creates a branch and the after of one that deletes it.
const zeroSHA = "0000000000000000000000000000000000000000"

// branchPush is GitHub's payload of a push moving branch from before to after; with after zeroSHA
// it deletes the branch.
func branchPush(t *testing.T, branch, before, after string) []byte {
	t.Helper()
	return githubtest.Payload(t, "push.feature-branch.json", func(doc map[string]any) {
		doc["ref"], doc["before"], doc["after"], doc["created"] = "refs/heads/"+branch, before, after, before == zeroSHA
		doc["head_commit"].(map[string]any)["id"] = after
		if after == zeroSHA {
			doc["deleted"], doc["head_commit"], doc["commits"] = true, nil, []any{}
		}
	})
}

// commitOf is a distinct full SHA for each n.
func commitOf(n int) string {
	s := strconv.Itoa(n)
	return strings.Repeat(s, 40/len(s)+1)[:40]
}

// answer delivers a push to p and returns its answer's status and message.
func answer(t *testing.T, ta *agenttest.Agent, p api.Project, body []byte) (status, message string) {
	t.Helper()
	code, got := ta.Deliver(t, strconv.FormatInt(p.ID, 10), agenttest.Delivery{Event: "push", Body: body, Secret: p.WebhookSecret})
	if code != http.StatusOK {
		t.Fatalf("answer %d %v", code, got)
	}
	status, _ = got["status"].(string)
	message, _ = got["message"].(string)
	return status, message
}

// expect delivers a push to p and fails unless it is answered with status and message.
func expect(t *testing.T, ta *agenttest.Agent, p api.Project, body []byte, status, message string) {
	t.Helper()
	if gotStatus, gotMessage := answer(t, ta, p, body); gotStatus != status || gotMessage != message {
		t.Errorf("answer %s %q\nwant   %s %q", gotStatus, gotMessage, status, message)
	}
}

// previewOf returns the preview alias of project site as the API lists it.
func previewOf(t *testing.T, ta *agenttest.Agent, alias string) api.Preview {
	t.Helper()
	var previews []api.Preview
	ta.Call(t, "GET", api.PreviewsPath("site"), nil, http.StatusOK, &previews)
	for _, pv := range previews {
		if pv.Alias == alias {
			return pv
		}
	}
	t.Fatalf("no preview %s in %+v", alias, previews)
	return api.Preview{}
}

// TestBranchesWhoseSlugsCollideDoNotShareAPreview: of two branches with the same alias, the first
// to deploy owns it; the other's pushes are ignored naming the owner, and the other's deletion
// leaves the owner's preview up. Once the owner is deleted, the alias is free.
func TestBranchesWhoseSlugsCollideDoNotShareAPreview(t *testing.T) {
	t.Parallel()
	all := []string{"**"}
	ta, p := previewAgent(t, api.TriggerSettings{PreviewBranches: &all})
	for i, pair := range []struct{ owner, other string }{
		{"feature/a", "feature/a-"},
		{"Fix/Login", "fix/login"},
		{"docs/é", "docs/ü"},
	} {
		alias := trigger.BranchAlias(pair.owner)
		if trigger.BranchAlias(pair.other) != alias {
			t.Fatalf("%q and %q do not collide", pair.owner, pair.other)
		}
		t.Run(alias, func(t *testing.T) {
			first, second := commitOf(10*i+1), commitOf(10*i+2)
			expect(t, ta, p, branchPush(t, pair.owner, zeroSHA, first), "success", "Deployment triggered for commit "+first[:7])
			taken := "Push to '" + pair.other + "' ignored: its preview URL belongs to branch '" + pair.owner + "' (preview " + alias + ")"
			expect(t, ta, p, branchPush(t, pair.other, zeroSHA, second), "ignored", taken)
			if pv := previewOf(t, ta, alias); pv.Branch != pair.owner || pv.HeadSHA != first || pv.RemovedAt != nil {
				t.Fatalf("after the other branch's push: %+v", pv)
			}
			expect(t, ta, p, branchPush(t, pair.other, second, zeroSHA), "ignored",
				"Deletion of branch '"+pair.other+"' ignored: preview "+alias+" belongs to branch '"+pair.owner+"'")
			if pv := previewOf(t, ta, alias); pv.RemovedAt != nil {
				t.Fatalf("the other branch's deletion removed the owner's preview: %+v", pv)
			}
			expect(t, ta, p, branchPush(t, pair.owner, first, zeroSHA), "ok", "Preview for branch '"+pair.owner+"' removed")
			// The alias is free now: the other branch's next push takes it.
			third := commitOf(10*i + 3)
			expect(t, ta, p, branchPush(t, pair.other, zeroSHA, third), "success", "Deployment triggered for commit "+third[:7])
			if pv := previewOf(t, ta, alias); pv.Branch != pair.other || pv.RemovedAt != nil {
				t.Fatalf("after the owner's deletion: %+v", pv)
			}
		})
	}
}

// collidingBranches finds two long branch names whose host labels in project slug are the same:
// the cut label keeps only 24 bits of the branch's hash, so a few thousand names are enough.
func collidingBranches(t *testing.T, slug string) (string, string) {
	t.Helper()
	seen := map[string]string{}
	for n := range 1 << 20 {
		branch := "feature/" + strings.Repeat("long-", 12) + strconv.Itoa(n)
		label := trigger.HostLabel(slug, trigger.BranchAlias(branch), 0, branch)
		if other, ok := seen[label]; ok {
			return other, branch
		}
		seen[label] = branch
	}
	t.Fatal("no two branches share a label")
	return "", ""
}

// TestForgedLabelCollisionTakesNoPreview: a branch made to share another's cut host label (and
// hash) deploys nothing and cannot take the owner's URL.
func TestForgedLabelCollisionTakesNoPreview(t *testing.T) {
	t.Parallel()
	all := []string{"**"}
	ta, p := previewAgent(t, api.TriggerSettings{PreviewBranches: &all})
	owner, forged := collidingBranches(t, p.Slug)
	if trigger.BranchAlias(owner) == trigger.BranchAlias(forged) {
		t.Fatalf("%q and %q have the same alias", owner, forged)
	}
	expect(t, ta, p, branchPush(t, owner, zeroSHA, commitOf(1)), "success", "Deployment triggered for commit "+commitOf(1)[:7])
	expect(t, ta, p, branchPush(t, forged, zeroSHA, commitOf(2)), "ignored",
		"Push to '"+forged+"' ignored: its preview URL belongs to branch '"+owner+"' (preview "+trigger.BranchAlias(owner)+")")
	var previews []api.Preview
	ta.Call(t, "GET", api.PreviewsPath("site"), nil, http.StatusOK, &previews)
	if len(previews) != 1 || previews[0].Branch != owner {
		t.Errorf("previews %+v", previews)
	}
}

// TestReplayAfterBranchDeletionIsStale: once a preview branch is deleted, replayed pushes from
// before the deletion (an update, or the push that created the branch) are stale and leave the
// alias down; a push creating the branch again at a new commit deploys, and only a deletion of
// that commit takes it down again.
func TestReplayAfterBranchDeletionIsStale(t *testing.T) {
	t.Parallel()
	branches := []string{"feature/**"}
	ta, p := previewAgent(t, api.TriggerSettings{PreviewBranches: &branches})
	const branch, alias = "feature/x", "git-feature-x"
	a, b, c := commitOf(1), commitOf(2), commitOf(3)
	created, updated := branchPush(t, branch, zeroSHA, a), branchPush(t, branch, a, b)
	expect(t, ta, p, created, "success", "Deployment triggered for commit "+a[:7])
	expect(t, ta, p, updated, "success", "Deployment triggered for commit "+b[:7])
	expect(t, ta, p, branchPush(t, branch, b, zeroSHA), "ok", "Preview for branch 'feature/x' removed")
	stale := "Stale delivery: branch 'feature/x' has moved on"
	expect(t, ta, p, updated, "ignored", stale)
	expect(t, ta, p, created, "ignored", stale)
	if pv := previewOf(t, ta, alias); pv.RemovedAt == nil {
		t.Fatalf("a replay brought the deleted branch's preview back: %+v", pv)
	}
	expect(t, ta, p, branchPush(t, branch, zeroSHA, c), "success", "Deployment triggered for commit "+c[:7])
	if pv := previewOf(t, ta, alias); pv.RemovedAt != nil || pv.HeadSHA != c {
		t.Fatalf("the branch created again: %+v", pv)
	}
	expect(t, ta, p, updated, "ignored", stale)
	// The first deletion replayed, from before the branch came back, leaves the new preview up.
	expect(t, ta, p, branchPush(t, branch, b, zeroSHA), "ignored", stale)
	if pv := previewOf(t, ta, alias); pv.RemovedAt != nil || pv.HeadSHA != c {
		t.Fatalf("a replayed deletion took the branch created again down: %+v", pv)
	}
	expect(t, ta, p, branchPush(t, branch, c, zeroSHA), "ok", "Preview for branch 'feature/x' removed")
}
