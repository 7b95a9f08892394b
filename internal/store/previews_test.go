package store

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/miaobu/miaobu/internal/api"
)

// pushTo records a push of commit c to alias of project p: a pull request's for an alias pr-<n>
// given with pr, a branch's otherwise.
func pushTo(t *testing.T, s *Store, p *Project, alias string, pr int, c string) PushResult {
	t.Helper()
	res, err := s.RecordPush(context.Background(), Push{ProjectID: p.ID, DeliveryID: "d-" + alias + c, CommitSHA: sha(c),
		Branch: "feature", Alias: alias, PullRequest: pr})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// complete finishes deployment id successfully and reports whether it went live.
func complete(t *testing.T, s *Store, id int64) bool {
	t.Helper()
	live, err := s.Complete(id)
	if err != nil {
		t.Fatal(err)
	}
	return live
}

// deployment reads deployment id.
func deployment(t *testing.T, s *Store, id int64) *Deployment {
	t.Helper()
	d, err := s.Deployment(id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// preview reads the preview alias of project p.
func preview(t *testing.T, s *Store, p *Project, alias string) *Preview {
	t.Helper()
	pv, err := s.Preview(p.ID, alias)
	if err != nil {
		t.Fatal(err)
	}
	return pv
}

// TestAliasesKeepTheirOwnOrder is the spec of ordering, duplicates and latest-wins per project and
// alias: a preview supersedes, duplicates and goes live only within its alias.
func TestAliasesKeepTheirOwnOrder(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")

	prodA := push(t, s, p, "a")
	prX := pushTo(t, s, p, "pr-12", 12, "x")
	prodB := push(t, s, p, "b")
	if d := deployment(t, s, prodA.DeploymentID); d.Status != api.StatusCancelled || d.ErrorMessage != "superseded by #3" {
		t.Fatalf("production's older queued deployment: %s %q", d.Status, d.ErrorMessage)
	}
	if d := deployment(t, s, prX.DeploymentID); d.Status != api.StatusQueued {
		t.Fatalf("a production push cancelled the preview's queued deployment: %s %q", d.Status, d.ErrorMessage)
	}
	if d := deployment(t, s, prX.DeploymentID); d.Environment != EnvironmentPreview || d.Alias != "pr-12" || d.PullRequest != 12 ||
		d.Trigger != "pull_request" {
		t.Fatalf("preview deployment fields: %+v", d)
	}
	if d := deployment(t, s, prodB.DeploymentID); d.Environment != EnvironmentProduction || d.Alias != "" {
		t.Fatalf("production deployment fields: %+v", d)
	}

	// The same commit may be live in production and in a preview; within an alias it is a duplicate.
	if !complete(t, s, prodB.DeploymentID) {
		t.Fatal("production b did not go live")
	}
	prB := pushTo(t, s, p, "pr-12", 12, "b")
	if prB.Duplicate || prB.DeploymentID == prodB.DeploymentID {
		t.Fatalf("production's live commit counted as the preview's: %+v", prB)
	}
	if d := deployment(t, s, prX.DeploymentID); d.Status != api.StatusCancelled || d.ErrorMessage != "superseded by #4" {
		t.Fatalf("the preview's older queued deployment: %s %q", d.Status, d.ErrorMessage)
	}
	if again := pushTo(t, s, p, "pr-12", 12, "b"); !again.Duplicate || again.DeploymentID != prB.DeploymentID {
		t.Fatalf("a redelivery within the alias: %+v", again)
	}
	if again := push(t, s, p, "b"); !again.Duplicate || again.DeploymentID != prodB.DeploymentID {
		t.Fatalf("production's redelivery: %+v", again)
	}

	// A production deployment created later does not keep the older preview build from going live.
	prodC := push(t, s, p, "c")
	if !complete(t, s, prodC.DeploymentID) || !complete(t, s, prB.DeploymentID) {
		t.Fatal("c or the preview of b did not go live")
	}
	project, _ := s.Project(p.ID)
	if project.ActiveDeploymentID != prodC.DeploymentID || preview(t, s, p, "pr-12").ActiveDeploymentID != prB.DeploymentID {
		t.Fatalf("live: production %d, pr-12 %d", project.ActiveDeploymentID, preview(t, s, p, "pr-12").ActiveDeploymentID)
	}
	// Within the alias, latest wins.
	prY, prZ := pushTo(t, s, p, "pr-12", 12, "y"), pushTo(t, s, p, "git-feature", 0, "z")
	if live, _ := s.MayGoLive(prY.DeploymentID); !live {
		t.Fatal("pr-12's newest build may not go live")
	}
	if !complete(t, s, prZ.DeploymentID) || !complete(t, s, prY.DeploymentID) {
		t.Fatal("builds of two aliases did not both go live")
	}
	if err := s.Rollback(p.ID, prB.DeploymentID); err != nil {
		t.Fatal(err)
	}
	if pv := preview(t, s, p, "pr-12"); pv.ActiveDeploymentID != prB.DeploymentID {
		t.Fatalf("rollback of pr-12: live %d, want %d", pv.ActiveDeploymentID, prB.DeploymentID)
	}
	if project, _ := s.Project(p.ID); project.ActiveDeploymentID != prodC.DeploymentID {
		t.Fatalf("rolling a preview back moved production to %d", project.ActiveDeploymentID)
	}
	previews, err := s.Previews(p.ID)
	if err != nil || len(previews) != 2 || previews[0].Alias != "git-feature" || previews[1].Alias != "pr-12" || previews[1].PullRequest != 12 {
		t.Fatalf("previews: %+v %v", previews, err)
	}
}

// TestStalePullRequestHead: a pull request's old head replayed after a newer one is stale on its
// alias only, and records no deployment.
func TestStalePullRequestHead(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	pushTo(t, s, p, "pr-5", 5, "a")
	newer := pushTo(t, s, p, "pr-5", 5, "b")
	if old := pushTo(t, s, p, "pr-5", 5, "a"); !old.Stale || old.DeploymentID != 0 {
		t.Fatalf("old head replayed: %+v", old)
	}
	if pv := preview(t, s, p, "pr-5"); pv.HeadSHA != sha("b") {
		t.Fatalf("a stale head moved the preview to %s", pv.HeadSHA)
	}
	if again := pushTo(t, s, p, "pr-5", 5, "b"); again.Stale || !again.Duplicate || again.DeploymentID != newer.DeploymentID {
		t.Fatalf("current head again: %+v", again)
	}
	if other := pushTo(t, s, p, "pr-6", 6, "a"); other.Stale || other.Duplicate || other.DeploymentID == 0 {
		t.Fatalf("the same commit in another pull request: %+v", other)
	}
}

// TestFailedPreviewReleasesItsCommitOnly: when a preview build of a commit fails, a production
// deployment of the same commit does not stand in for it in the duplicate check.
func TestFailedPreviewReleasesItsCommitOnly(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	pr := pushTo(t, s, p, "pr-1", 1, "a")
	prod := push(t, s, p, "a")
	if err := s.Fail(pr.DeploymentID, api.StatusFailed, "boom"); err != nil {
		t.Fatal(err)
	}
	if again := pushTo(t, s, p, "pr-1", 1, "a"); again.Duplicate {
		t.Fatalf("the preview's commit counts as deployed by production's #%d: %+v", prod.DeploymentID, again)
	}
	if again := push(t, s, p, "a"); !again.Duplicate || again.DeploymentID != prod.DeploymentID {
		t.Fatalf("production's queued deployment of a: %+v", again)
	}
}

func TestRemovePreview(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	live := pushTo(t, s, p, "pr-3", 3, "a")
	complete(t, s, live.DeploymentID)
	queued := pushTo(t, s, p, "pr-3", 3, "b")
	other := pushTo(t, s, p, "pr-4", 4, "b")
	prod := push(t, s, p, "b")

	before, cancelled, err := s.RemovePreview(p.ID, "pr-3", "preview removed")
	if err != nil || before.Removed() || len(cancelled) != 1 || cancelled[0].ID != queued.DeploymentID ||
		cancelled[0].Status != api.StatusCancelled || cancelled[0].ErrorMessage != "preview removed" {
		t.Fatalf("remove: %+v %+v %v", before, cancelled, err)
	}
	if pv := preview(t, s, p, "pr-3"); !pv.Removed() || pv.ActiveDeploymentID != live.DeploymentID {
		t.Fatalf("removed preview: %+v", pv)
	}
	for _, id := range []int64{other.DeploymentID, prod.DeploymentID} {
		if d := deployment(t, s, id); d.Status != api.StatusQueued {
			t.Fatalf("removing pr-3 touched deployment %d: %s", id, d.Status)
		}
	}
	if _, again, err := s.RemovePreview(p.ID, "pr-3", "preview removed"); err != nil || len(again) != 0 {
		t.Fatalf("second remove: %+v %v", again, err)
	}
	if err := s.Rollback(p.ID, live.DeploymentID); err == nil {
		t.Fatal("rolled back to a deployment of a removed preview")
	}
	if _, _, err := s.RemovePreview(p.ID, "pr-99", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing an unknown preview: %v", err)
	}

	// A late update of the closed pull request leaves the alias down; reopened with the head it was
	// closed at, the commit builds again, and the alias is up again.
	if late := pushTo(t, s, p, "pr-3", 3, "a"); !late.Closed || late.DeploymentID != 0 || !preview(t, s, p, "pr-3").Removed() {
		t.Fatalf("late update: %+v", late)
	}
	reopen := func(c string) PushResult {
		t.Helper()
		res, err := s.RecordPush(context.Background(), Push{ProjectID: p.ID, DeliveryID: "reopened-" + c, CommitSHA: sha(c),
			Branch: "feature", Alias: "pr-3", PullRequest: 3, Reopen: true})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// Reopened at a commit it had before the head it was closed at: a replay.
	if replay := reopen("a"); !replay.Stale || replay.DeploymentID != 0 || !preview(t, s, p, "pr-3").Removed() {
		t.Fatalf("replayed reopen: %+v", replay)
	}
	if reopened := reopen("b"); reopened.Duplicate || reopened.DeploymentID <= prod.DeploymentID || reopened.Preview.Removed() {
		t.Fatalf("reopened: %+v", reopened)
	}
}

func TestHoldAndApproveForkHeads(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	held, err := s.RecordPush(context.Background(), Push{ProjectID: p.ID, DeliveryID: "fork-1", CommitSHA: sha("f"), Branch: "patch-1",
		Alias: "pr-7", PullRequest: 7, Fork: true, Hold: true})
	if err != nil || held.DeploymentID != 0 || held.Preview == nil || held.Preview.HeadSHA != sha("f") || !held.Preview.Fork ||
		held.Preview.ApprovedSHA != "" {
		t.Fatalf("held: %+v %v", held, err)
	}
	if history, _ := s.Deployments(p.ID, 0); len(history) != 0 {
		t.Fatalf("a held head created deployments: %+v", history)
	}
	deliveries, _ := s.Deliveries(p.ID, 0)
	if len(deliveries) != 1 || deliveries[0].Outcome != OutcomeIgnored || deliveries[0].Event != "pull_request" {
		t.Fatalf("deliveries: %+v", deliveries)
	}

	approve := Push{ProjectID: p.ID, CommitSHA: sha("f"), Branch: "patch-1", Alias: "pr-7", PullRequest: 7, Fork: true}
	res, err := s.ApprovePreview(approve)
	if err != nil || res.DeploymentID == 0 || res.Preview.ApprovedSHA != sha("f") {
		t.Fatalf("approve: %+v %v", res, err)
	}
	if d := deployment(t, s, res.DeploymentID); !d.Fork || d.Alias != "pr-7" || d.Status != api.StatusQueued {
		t.Fatalf("approved deployment: %+v", d)
	}
	if again, err := s.ApprovePreview(approve); err != nil || !again.Duplicate || again.DeploymentID != res.DeploymentID {
		t.Fatalf("second approval: %+v %v", again, err)
	}
	if deliveries, _ := s.Deliveries(p.ID, 0); len(deliveries) != 1 {
		t.Fatalf("an approval through the API recorded a delivery: %+v", deliveries)
	}
	// The fork pushes g: an approval of f, read before, approves nothing and leaves g held.
	if _, err := s.RecordPush(context.Background(), Push{ProjectID: p.ID, DeliveryID: "fork-2", CommitSHA: sha("e"), Before: sha("f"),
		Branch: "patch-1", Alias: "pr-7", PullRequest: 7, Fork: true, Hold: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApprovePreview(approve); !errors.Is(err, ErrHeadMoved) {
		t.Fatalf("approving a commit that is no longer the head: %v", err)
	}
	if pv := preview(t, s, p, "pr-7"); pv.HeadSHA != sha("e") || pv.ApprovedSHA != sha("f") {
		t.Fatalf("preview after the refused approval: %+v", pv)
	}
	approve.ProjectID = 999
	if _, err := s.ApprovePreview(approve); !errors.Is(err, ErrNotFound) {
		t.Fatalf("approve in an unknown project: %v", err)
	}
}

func TestRetentionKeepsPreviewsApart(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	var prod, pr []int64
	for _, c := range []string{"a", "b", "c"} {
		prod = append(prod, push(t, s, p, c).DeploymentID)
		complete(t, s, prod[len(prod)-1])
		pr = append(pr, pushTo(t, s, p, "pr-1", 1, c).DeploymentID)
		complete(t, s, pr[len(pr)-1])
	}
	gone, err := s.PruneDeployments(p.ID, 2)
	if err != nil || len(gone) != 2 || gone[0].ID != pr[0] || gone[1].ID != prod[0] {
		t.Fatalf("pruned %+v %v, want the oldest of each alias", gone, err)
	}

	// Removed previews lose everything once the cutoff passes them; others stay.
	kept := pushTo(t, s, p, "pr-2", 2, "a")
	complete(t, s, kept.DeploymentID)
	if _, _, err := s.RemovePreview(p.ID, "pr-1", "closed"); err != nil {
		t.Fatal(err)
	}
	if purged, err := s.PurgeRemovedPreviews(time.Now().Add(-time.Hour)); err != nil || len(purged) != 0 {
		t.Fatalf("purged a preview removed after the cutoff: %+v %v", purged, err)
	}
	purged, err := s.PurgeRemovedPreviews(time.Now().Add(time.Minute))
	if err != nil || len(purged) != 2 || purged[0].Alias != "pr-1" || purged[1].Alias != "pr-1" {
		t.Fatalf("purged %+v %v", purged, err)
	}
	if _, err := s.Preview(p.ID, "pr-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("purged preview still there: %v", err)
	}
	left, _ := s.Deployments(p.ID, 0)
	if len(left) != 3 {
		t.Fatalf("%d deployments left, want production's 2 and pr-2's", len(left))
	}
	if _, err := s.DeleteProject(p.ID); err != nil {
		t.Fatal(err)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		if k, _ := bucket(tx, previewsBucket).Cursor().First(); k != nil {
			t.Errorf("previews of a deleted project left: %q", k)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrateAliases opens a store written at schema version 2: its deployments become
// production's, its commit indexes keep finding them, and its projects get preview defaults.
func TestMigrateAliases(t *testing.T) {
	all := migrations
	useMigrations(t, all[:1])
	s, dir := openTest(t)
	p := newProject(t, s, "site")
	live := push(t, s, p, "a")
	complete(t, s, live.DeploymentID)
	queued := push(t, s, p, "b")
	// Write what version 2 wrote: no environment, no preview settings, commit keys without alias.
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{deploymentsBucket, projectsBucket} {
			if err := editObjects(bucket(tx, name), func(v map[string]json.RawMessage) {
				delete(v, "environment")
				delete(v, "pr_previews")
				delete(v, "fork_previews")
			}); err != nil {
				return err
			}
		}
		for _, index := range [][]byte{commitsBucket, deployedCommitsBucket} {
			b := bucket(tx, index)
			for c, d := range map[string]PushResult{sha("a"): live, sha("b"): queued} {
				if err := b.Delete(commitKey(p.ID, "", c)); err != nil {
					return err
				}
				if err := b.Put(append(itob(p.ID), c...), itob(d.DeploymentID)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)

	migrations = all
	s = reopen(t, dir)
	if v := recordedVersion(t, s); v != strconv.Itoa(latestVersion(all)) {
		t.Fatalf("schema version %q after the upgrade", v)
	}
	for _, id := range []int64{live.DeploymentID, queued.DeploymentID} {
		if d := deployment(t, s, id); d.Environment != EnvironmentProduction || d.Alias != "" {
			t.Fatalf("deployment %d after the upgrade: %+v", id, d)
		}
	}
	if got, _ := s.Project(p.ID); !got.PRPreviews || got.ForkPreviews != "approve" || got.ActiveDeploymentID != live.DeploymentID {
		t.Fatalf("project after the upgrade: %+v", got)
	}
	// b, the branch's head, is still queued; a replay of a's delivery is recognised as stale.
	if res := push(t, s, p, "b"); !res.Duplicate || res.DeploymentID != queued.DeploymentID {
		t.Fatalf("commit b is no longer found queued after the upgrade: %+v", res)
	}
	if res := push(t, s, p, "a"); !res.Stale {
		t.Fatalf("commit a is no longer found deployed after the upgrade: %+v", res)
	}
}

// TestStaleRulePerAlias: a replayed push is stale only against the commits its own alias
// deployed, and a removed branch preview starts again from nothing.
func TestStaleRulePerAlias(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	toFeature := func(before, c string) PushResult {
		t.Helper()
		push := Push{ProjectID: p.ID, DeliveryID: "d-" + c, CommitSHA: sha(c), Branch: "feature", Alias: "git-feature"}
		if before != "" {
			push.Before = sha(before)
		}
		res, err := s.RecordPush(context.Background(), push)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	complete(t, s, toFeature("0", "a").DeploymentID)
	complete(t, s, toFeature("a", "b").DeploymentID)
	complete(t, s, push(t, s, p, "c").DeploymentID)
	if replay := toFeature("0", "a"); !replay.Stale {
		t.Fatalf("replay of a on the preview branch: %+v", replay)
	}
	// c is production's, never the preview's: on the branch it is a new commit, not a replay.
	if fresh := toFeature("x", "c"); fresh.Stale || fresh.Duplicate || fresh.DeploymentID == 0 {
		t.Fatalf("production's commit pushed to the preview branch: %+v", fresh)
	}
	if _, _, err := s.RemovePreview(p.ID, "git-feature", "branch deleted"); err != nil {
		t.Fatal(err)
	}
	if again := toFeature("0", "a"); again.Stale || again.Duplicate || again.DeploymentID == 0 || again.Preview.Removed() {
		t.Fatalf("the branch created again at a: %+v", again)
	}
}

// TestManualDeployRespectsAliasOwner: a manual deployment of a branch whose alias another branch's
// preview holds is refused, naming the owner; the owner's preview keeps its head.
func TestManualDeployRespectsAliasOwner(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	owner := &Deployment{ProjectID: p.ID, CommitSHA: sha("a"), Branch: "feature/a", Trigger: TriggerManual, Alias: "git-feature-a"}
	if err := s.CreateDeployment(owner); err != nil {
		t.Fatal(err)
	}
	other := &Deployment{ProjectID: p.ID, CommitSHA: sha("b"), Branch: "Feature/A", Trigger: TriggerManual, Alias: "git-feature-a"}
	var taken *AliasTakenError
	if err := s.CreateDeployment(other); !errors.As(err, &taken) || taken.Branch != "feature/a" || taken.Alias != "git-feature-a" {
		t.Fatalf("deploying another branch to the alias: %v", err)
	}
	if pv := preview(t, s, p, "git-feature-a"); pv.Branch != "feature/a" || pv.HeadSHA != sha("a") {
		t.Fatalf("preview %+v", pv)
	}
}

// TestAliasTakenOverAfterDeletion: once the owner branch is deleted, another branch with the same
// alias takes it, and the alias serves nothing of the old owner's until the new branch's build is
// live.
func TestAliasTakenOverAfterDeletion(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	pushBranch := func(branch, c string) PushResult {
		t.Helper()
		res, err := s.RecordPush(context.Background(), Push{ProjectID: p.ID, DeliveryID: branch + c, CommitSHA: sha(c),
			Before: DeletedHead, Branch: branch, Alias: "git-feature-a"})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	complete(t, s, pushBranch("feature/a", "a").DeploymentID)
	if taken := pushBranch("feature/a-", "b"); taken.Taken == nil || taken.Taken.Branch != "feature/a" || taken.DeploymentID != 0 {
		t.Fatalf("push of the other branch: %+v", taken)
	}
	if before, _, err := s.DeleteBranch(p.ID, "feature/a-", sha("b"), "git-feature-a", "branch deleted"); err != nil || before.Branch != "feature/a" ||
		preview(t, s, p, "git-feature-a").Removed() {
		t.Fatalf("deleting the other branch: %+v %v", before, err)
	}
	if _, _, err := s.DeleteBranch(p.ID, "feature/a", sha("a"), "git-feature-a", "branch deleted"); err != nil {
		t.Fatal(err)
	}
	res := pushBranch("feature/a-", "c")
	if res.Taken != nil || res.DeploymentID == 0 || res.Preview.Branch != "feature/a-" || res.Preview.ActiveDeploymentID != 0 {
		t.Fatalf("the other branch after the owner's deletion: %+v %+v", res, res.Preview)
	}
}

// TestPolledPreviewHeadIsNoDelivery records a preview head the agent found itself: its deployment
// has trigger poll, and no delivery is recorded.
func TestPolledPreviewHeadIsNoDelivery(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	res, err := s.RecordPush(context.Background(), Push{ProjectID: p.ID, CommitSHA: sha("a"), Branch: "topic", Alias: "git-topic",
		Trigger: TriggerPoll})
	if err != nil || res.DeploymentID == 0 {
		t.Fatalf("RecordPush = %+v, %v", res, err)
	}
	if d, err := s.Deployment(res.DeploymentID); err != nil || d.Trigger != TriggerPoll || d.Alias != "git-topic" {
		t.Fatalf("deployment %+v, %v", d, err)
	}
	if deliveries, err := s.Deliveries(p.ID, 0); err != nil || len(deliveries) != 0 {
		t.Errorf("deliveries %+v, %v, want none", deliveries, err)
	}
}

// TestStaleRules is the spec of the stale rules both stores apply to pushes and branch deletions.
func TestStaleRules(t *testing.T) {
	pushes := []struct {
		name     string
		head     string
		before   string
		deployed bool
		stale    bool
	}{
		{"a new commit", sha("b"), sha("b"), false, false},
		{"a new commit after a deletion", DeletedHead, DeletedHead, false, false},
		{"the head again", sha("a"), sha("0"), true, false},
		{"a commit after the head", sha("b"), sha("b"), true, false},
		{"no known head", "", sha("0"), true, false},
		{"an older deployed commit", sha("b"), sha("0"), true, true},
		{"a deployed commit after a deletion, even the one that created the branch", DeletedHead, DeletedHead, true, true},
	}
	for _, c := range pushes {
		if got := (Push{CommitSHA: sha("a"), Before: c.before}).Stale(c.head, c.deployed); got != c.stale {
			t.Errorf("push of %s: stale %v, want %v", c.name, got, c.stale)
		}
	}
	deletions := []struct {
		name     string
		head     string
		deployed bool
		stale    bool
	}{
		{"at the branch's head", sha("a"), true, false},
		{"at a commit the alias never deployed", sha("b"), false, false},
		{"of a branch with no known head", "", true, false},
		{"after an earlier deletion", DeletedHead, true, false},
		{"from before the branch was pushed again", sha("b"), true, true},
	}
	for _, c := range deletions {
		if got := StaleDeletion(c.head, sha("a"), c.deployed); got != c.stale {
			t.Errorf("deletion %s: stale %v, want %v", c.name, got, c.stale)
		}
	}
}
