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
