package cluster

import (
	"context"
	"testing"

	"github.com/miaobu/miaobu/internal/store"
)

// deployHead asks through s for a deployment of commit c at the head of branch main of p by
// reconciliation, and reports whether one was made.
func deployHead(t *testing.T, s *Store, p *store.Project, c string) (int64, bool) {
	t.Helper()
	d := &store.Deployment{ProjectID: p.ID, CommitSHA: commit(c), Branch: "main", Trigger: store.TriggerReconcile}
	created, err := s.DeployHead(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	return d.ID, created
}

// TestHeadMissingAfterAChosenCommit mirrors the single agent's rule: a deployment of an older
// commit of the production branch chosen by hand, or by a GitHub deployment event, is a choice like
// a rollback, so the head it replaced is not missing, on any node, until the branch moves on.
func TestHeadMissingAfterAChosenCommit(t *testing.T) {
	for _, chosen := range []store.Trigger{store.TriggerManual, store.TriggerGitHubDeployment} {
		t.Run(string(chosen), func(t *testing.T) {
			stores := startCluster(t)
			p := addProject(t, stores[0])
			a, _ := deployHead(t, stores[0], p, "a")
			completeOn(t, stores[1], p, a)
			b, _ := deployHead(t, stores[1], p, "b")
			completeOn(t, stores[2], p, b)
			older := &store.Deployment{ProjectID: p.ID, CommitSHA: commit("a"), Branch: "main", Trigger: chosen}
			if err := stores[2].CreateDeployment(older); err != nil {
				t.Fatal(err)
			}
			completeOn(t, stores[0], p, older.ID)
			if m, err := stores[1].HeadMissing(p.ID, "main", commit("b")); err != nil || m {
				t.Fatalf("the head replaced by a %s deployment of an older commit is missing: %v %v", chosen, m, err)
			}
			if _, created := deployHead(t, stores[2], p, "b"); created {
				t.Fatal("reconciliation redeployed the head replaced by the chosen commit")
			}
			// A new head deploys, as after a rollback.
			if _, created := deployHead(t, stores[0], p, "c"); !created {
				t.Fatal("a new head after the chosen commit was not deployed")
			}
		})
	}
}
