package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/store"
)

// commit returns the commit SHA that repeats c.
func commit(c string) string { return strings.Repeat(c, 40)[:40] }

// pushBranch records through s a push of commit c, after commit before, to branch of project p,
// deploying to alias ("" for production).
func pushBranch(t *testing.T, s *Store, p *store.Project, branch, alias, before, c string) store.PushResult {
	t.Helper()
	res, err := s.RecordPush(context.Background(), store.Push{ProjectID: p.ID, DeliveryID: branch + "-" + c, CommitSHA: commit(c),
		Before: before, Branch: branch, Alias: alias})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// completeOn claims through s the build of deployment id of project p and makes it live.
func completeOn(t *testing.T, s *Store, p *store.Project, id int64) {
	t.Helper()
	d := claimWithin(t, s, p, 10*time.Second)
	if live, err := s.Complete(d.ID); err != nil || !live || d.ID != id {
		t.Fatalf("Complete of %d (want %d) = %v, %v", d.ID, id, live, err)
	}
}

// previewOf reads the preview alias of project p through s.
func previewOf(t *testing.T, s *Store, p *store.Project, alias string) *store.Preview {
	t.Helper()
	pv, err := s.Preview(p.ID, alias)
	if err != nil {
		t.Fatal(err)
	}
	return pv
}

// TestAliasBelongsToOneBranch mirrors the single agent's rules of alias owners: while a branch's
// preview is up its alias is the branch's, so a push or a manual deployment of another branch
// whose alias collides is refused naming the owner, on any node; once the owner is deleted the
// other branch takes the alias over with an empty preview.
func TestAliasBelongsToOneBranch(t *testing.T) {
	stores := startCluster(t)
	p := addProject(t, stores[0])
	first := pushBranch(t, stores[0], p, "feature/a", "git-feature-a", store.DeletedHead, "a")
	completeOn(t, stores[1], p, first.DeploymentID)

	if taken := pushBranch(t, stores[1], p, "feature/a-", "git-feature-a", store.DeletedHead, "b"); taken.Taken == nil ||
		taken.Taken.Branch != "feature/a" || taken.Taken.Alias != "git-feature-a" || taken.DeploymentID != 0 {
		t.Fatalf("push of another branch to the alias: %+v", taken)
	}
	if deliveries, err := stores[2].Deliveries(p.ID, 1); err != nil || len(deliveries) != 1 || deliveries[0].Outcome != store.OutcomeIgnored {
		t.Fatalf("the refused push's delivery: %+v %v", deliveries, err)
	}
	manual := &store.Deployment{ProjectID: p.ID, CommitSHA: commit("c"), Branch: "Feature/A", Trigger: store.TriggerManual, Alias: "git-feature-a"}
	var taken *store.AliasTakenError
	if err := stores[2].CreateDeployment(manual); !errors.As(err, &taken) || taken.Branch != "feature/a" || errors.Is(err, ErrUnavailable) {
		t.Fatalf("manual deployment of another branch to the alias: %v", err)
	}
	if pv := previewOf(t, stores[0], p, "git-feature-a"); pv.Branch != "feature/a" || pv.HeadSHA != commit("a") ||
		pv.ActiveDeploymentID != first.DeploymentID {
		t.Fatalf("the owner's preview after the refusals: %+v", pv)
	}

	if before, _, err := stores[0].DeleteBranch(p.ID, "feature/a-", commit("b"), "git-feature-a", "branch deleted"); err != nil ||
		before.Branch != "feature/a" || previewOf(t, stores[1], p, "git-feature-a").Removed() {
		t.Fatalf("deleting the other branch: %+v %v", before, err)
	}
	if _, _, err := stores[1].DeleteBranch(p.ID, "feature/a", commit("a"), "git-feature-a", "branch deleted"); err != nil {
		t.Fatal(err)
	}
	res := pushBranch(t, stores[2], p, "feature/a-", "git-feature-a", store.DeletedHead, "d")
	if res.Taken != nil || res.DeploymentID == 0 || res.Preview.Branch != "feature/a-" || res.Preview.ActiveDeploymentID != 0 {
		t.Fatalf("the other branch after the owner's deletion: %+v %+v", res, res.Preview)
	}
}

// TestDeletedBranchKeepsItsCommitsStale mirrors the single agent's branch deletion: the deletion
// takes the branch's preview down and keeps the commits its alias deployed, so that replayed
// pushes from before it, even the one that created the branch, are stale on every node; a new
// commit brings the branch back, and a replay of the old deletion then changes nothing.
func TestDeletedBranchKeepsItsCommitsStale(t *testing.T) {
	stores := startCluster(t)
	p := addProject(t, stores[0])
	a := pushBranch(t, stores[0], p, "topic", "git-topic", store.DeletedHead, "a")
	completeOn(t, stores[1], p, a.DeploymentID)
	b := pushBranch(t, stores[1], p, "topic", "git-topic", commit("a"), "b")
	completeOn(t, stores[2], p, b.DeploymentID)

	before, cancelled, err := stores[2].DeleteBranch(p.ID, "topic", commit("b"), "git-topic", "branch deleted")
	if err != nil || before == nil || before.Removed() || before.ActiveDeploymentID != b.DeploymentID || len(cancelled) != 0 {
		t.Fatalf("DeleteBranch = %+v, %+v, %v", before, cancelled, err)
	}
	if pv := previewOf(t, stores[0], p, "git-topic"); !pv.Removed() {
		t.Fatalf("the deleted branch's preview is up: %+v", pv)
	}
	if d, err := stores[0].NewestDeploymentOf(p.ID, "git-topic", commit("b")); err != nil || d.ID != b.DeploymentID {
		t.Fatalf("the deleted branch's deployed commit b: %+v %v", d, err)
	}
	for i, replay := range []store.PushResult{
		pushBranch(t, stores[0], p, "topic", "git-topic", store.DeletedHead, "a"),
		pushBranch(t, stores[1], p, "topic", "git-topic", commit("a"), "b"),
	} {
		if !replay.Stale || replay.DeploymentID != 0 {
			t.Fatalf("replay %d after the deletion: %+v", i, replay)
		}
	}
	if pv := previewOf(t, stores[2], p, "git-topic"); !pv.Removed() {
		t.Fatalf("a replayed push brought the deleted branch's preview back: %+v", pv)
	}

	again := pushBranch(t, stores[2], p, "topic", "git-topic", store.DeletedHead, "c")
	if again.Stale || again.Duplicate || again.DeploymentID == 0 || again.Preview.Removed() {
		t.Fatalf("the branch pushed again at a new commit: %+v", again)
	}
	if _, _, err := stores[0].DeleteBranch(p.ID, "topic", commit("b"), "git-topic", "branch deleted"); !errors.Is(err, store.ErrStaleDeletion) {
		t.Fatalf("a replay of the old deletion: %v, want ErrStaleDeletion", err)
	}
	if pv := previewOf(t, stores[1], p, "git-topic"); pv.Removed() || pv.HeadSHA != commit("c") {
		t.Fatalf("the replayed deletion took the pushed-again branch's preview down: %+v", pv)
	}
	before, cancelled, err = stores[1].DeleteBranch(p.ID, "topic", commit("c"), "git-topic", "branch deleted")
	if err != nil || before.HeadSHA != commit("c") || len(cancelled) != 1 || cancelled[0].ID != again.DeploymentID ||
		cancelled[0].Status != store.StatusCancelled || cancelled[0].ErrorMessage != "branch deleted" {
		t.Fatalf("deleting the branch again: %+v, %+v, %v", before, cancelled, err)
	}
}

// pushPR records through s an update of pull request 3 of project p to commit c: a reopened one
// with reopen.
func pushPR(t *testing.T, s *Store, p *store.Project, c string, reopen bool) store.PushResult {
	t.Helper()
	res, err := s.RecordPush(context.Background(), store.Push{ProjectID: p.ID, DeliveryID: "pr-3-" + c, CommitSHA: commit(c),
		Branch: "feature", Alias: "pr-3", PullRequest: 3, Reopen: reopen})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestClosedPullRequestKeepsItsHead mirrors the single agent's rules of closed pull requests: an
// update without reopen (a replayed opened) is refused as closed, and the preview keeps the head
// it was closed at, so a reopened at an older commit it deployed is stale while one at that head
// builds again.
func TestClosedPullRequestKeepsItsHead(t *testing.T) {
	stores := startCluster(t)
	p := addProject(t, stores[0])
	live := pushPR(t, stores[0], p, "a", false)
	completeOn(t, stores[1], p, live.DeploymentID)
	queued := pushPR(t, stores[1], p, "b", false)
	before, cancelled, err := stores[2].RemovePreview(p.ID, "pr-3", "pull request closed")
	if err != nil || before.Removed() || len(cancelled) != 1 || cancelled[0].ID != queued.DeploymentID {
		t.Fatalf("RemovePreview = %+v, %+v, %v", before, cancelled, err)
	}

	if late := pushPR(t, stores[0], p, "a", false); !late.Closed || late.DeploymentID != 0 {
		t.Fatalf("a replayed opened after the close: %+v", late)
	}
	if deliveries, err := stores[1].Deliveries(p.ID, 1); err != nil || len(deliveries) != 1 || deliveries[0].Outcome != store.OutcomeIgnored {
		t.Fatalf("the closed pull request's update's delivery: %+v %v", deliveries, err)
	}
	if replay := pushPR(t, stores[1], p, "a", true); !replay.Stale || replay.DeploymentID != 0 {
		t.Fatalf("reopened at an older commit than the head it was closed at: %+v", replay)
	}
	if pv := previewOf(t, stores[2], p, "pr-3"); !pv.Removed() || pv.HeadSHA != commit("b") {
		t.Fatalf("the closed preview after the refused updates: %+v", pv)
	}
	reopened := pushPR(t, stores[2], p, "b", true)
	if reopened.Stale || reopened.Duplicate || reopened.DeploymentID <= queued.DeploymentID || reopened.Preview.Removed() {
		t.Fatalf("reopened at the head it was closed at: %+v", reopened)
	}
}

// TestApprovalIsOfTheHeadCommit mirrors the single agent's approval of a fork's head: approving
// a commit that is no longer the pull request's head approves nothing, checked in the same change
// as the approval.
func TestApprovalIsOfTheHeadCommit(t *testing.T) {
	stores := startCluster(t)
	p := addProject(t, stores[0])
	hold := func(s *Store, c, before string) {
		t.Helper()
		_, err := s.RecordPush(context.Background(), store.Push{ProjectID: p.ID, DeliveryID: "fork-" + c, CommitSHA: commit(c),
			Before: before, Branch: "patch-1", Alias: "pr-7", PullRequest: 7, Fork: true, Hold: true})
		if err != nil {
			t.Fatal(err)
		}
	}
	hold(stores[0], "f", "")
	approve := store.Push{ProjectID: p.ID, CommitSHA: commit("f"), Branch: "patch-1", Alias: "pr-7", PullRequest: 7, Fork: true}
	res, err := stores[1].ApprovePreview(approve)
	if err != nil || res.DeploymentID == 0 || res.Preview.ApprovedSHA != commit("f") {
		t.Fatalf("approve: %+v %v", res, err)
	}
	hold(stores[2], "e", commit("f"))
	if _, err := stores[0].ApprovePreview(approve); !errors.Is(err, store.ErrHeadMoved) {
		t.Fatalf("approving a commit that is no longer the head: %v", err)
	}
	if pv := previewOf(t, stores[1], p, "pr-7"); pv.HeadSHA != commit("e") || pv.ApprovedSHA != commit("f") {
		t.Fatalf("preview after the refused approval: %+v", pv)
	}
	approve.Alias = "pr-8"
	if _, err := stores[2].ApprovePreview(approve); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("approving a preview that does not exist: %v", err)
	}
}

// TestPullRequestUpdateLeavesSkipMarkersToTheBuild mirrors the single agent's skip markers: an
// update whose commit message is unknown makes a deployment whose build reads it, and a build that
// finds a marker ends it skipped, releasing its commit.
func TestPullRequestUpdateLeavesSkipMarkersToTheBuild(t *testing.T) {
	stores := startCluster(t)
	p := addProject(t, stores[0])
	update := store.Push{ProjectID: p.ID, DeliveryID: "pr-2-a", CommitSHA: commit("a"), Branch: "feature", Alias: "pr-2", PullRequest: 2,
		SkipMarkers: true}
	res, err := stores[0].RecordPush(context.Background(), update)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := stores[1].Deployment(res.DeploymentID); err != nil || !d.SkipMarkers || d.Trigger != store.TriggerPullRequest {
		t.Fatalf("deployment of the update: %+v %v", d, err)
	}
	d := claimWithin(t, stores[2], p, 10*time.Second)
	const message = "Skipped: commit message contains [ci skip]"
	if err := stores[2].Skip(d.ID, message); err != nil || d.ID != res.DeploymentID {
		t.Fatalf("Skip of %d (want %d): %v", d.ID, res.DeploymentID, err)
	}
	if d, err := stores[0].Deployment(d.ID); err != nil || d.Status != store.StatusCancelled || !d.Skipped || d.ErrorMessage != message {
		t.Fatalf("skipped deployment: %+v %v", d, err)
	}
	update.DeliveryID = "pr-2-a-again"
	if again, err := stores[1].RecordPush(context.Background(), update); err != nil || again.Duplicate || again.DeploymentID <= res.DeploymentID {
		t.Fatalf("the skipped deployment still holds its commit: %+v %v", again, err)
	}
}

// TestSkipOfABuildWhoseLeaseWasLostChangesNothing: a node whose build was taken over cannot mark
// the deployment skipped, which the node building it now would otherwise report as a skip.
func TestSkipOfABuildWhoseLeaseWasLostChangesNothing(t *testing.T) {
	stores := startCluster(t)
	p := addProject(t, stores[0])
	id := pushBranch(t, stores[0], p, "main", "", "", "9").DeploymentID
	d := claimWithin(t, stores[0], p, 10*time.Second)
	if err := stores[1].leases.Purge(context.Background(), projectLease(p.ID)); err != nil {
		t.Fatal(err)
	}
	if err := stores[1].reconcileOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	again := claimWithin(t, stores[1], p, 10*time.Second)
	if d.ID != id || again.ID != id {
		t.Fatalf("claimed %d, then %d; want %d", d.ID, again.ID, id)
	}
	if err := stores[0].Skip(id, "Skipped: commit message contains [skip ci]"); !errors.Is(err, store.ErrFinished) {
		t.Fatalf("Skip by the node that lost the build: %v, want ErrFinished", err)
	}
	if got, err := stores[2].Deployment(id); err != nil || got.Skipped || got.Terminal() {
		t.Fatalf("deployment after the refused skip: %+v %v", got, err)
	}
	if live, err := stores[1].Complete(id); err != nil || !live {
		t.Fatalf("Complete by the node that took the build over = %v, %v", live, err)
	}
}
