package store

import (
	"context"
	"errors"
	"testing"
)

// deployHead asks for a deployment of commit c at the head of branch main of p by reconciliation.
func deployHead(t *testing.T, s *Store, p *Project, c string) (int64, bool) {
	t.Helper()
	d := &Deployment{ProjectID: p.ID, CommitSHA: sha(c), Branch: "main", Trigger: TriggerReconcile}
	created, err := s.DeployHead(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	return d.ID, created
}

// run claims the oldest queued deployment and ends it with status (deployed or failed).
func run(t *testing.T, s *Store, status Status) {
	t.Helper()
	d, err := s.ClaimNext(func(int64) bool { return false })
	if err != nil || d == nil {
		t.Fatalf("claim: %+v %v", d, err)
	}
	if status == StatusDeployed {
		_, err = s.Complete(d.ID)
	} else {
		err = s.Fail(d.ID, status, "boom")
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestHeadMissing is the spec of which branch heads reconciliation deploys.
func TestHeadMissing(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	missing := func(c string) bool {
		t.Helper()
		m, err := s.HeadMissing(p.ID, "main", sha(c))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if !missing("a") {
		t.Fatal("a head of a project never deployed is not missing")
	}
	first, created := deployHead(t, s, p, "a")
	if !created || missing("a") {
		t.Fatal("a queued head is missing")
	}
	if _, created := deployHead(t, s, p, "a"); created {
		t.Fatal("a second deployment of a queued head was created")
	}
	run(t, s, StatusDeployed)
	if missing("a") {
		t.Fatal("the live head is missing")
	}
	// A deployment of the head that failed is not tried again by reconciliation.
	if _, created := deployHead(t, s, p, "b"); !created {
		t.Fatal("a new head was not deployed")
	}
	run(t, s, StatusFailed)
	if missing("b") {
		t.Fatal("a head whose deployment failed is missing again")
	}
	// Neither is a head that was rolled back from.
	deployHead(t, s, p, "c")
	run(t, s, StatusDeployed)
	if err := s.Rollback(p.ID, first); err != nil {
		t.Fatal(err)
	}
	if missing("c") {
		t.Fatal("a head rolled back from is missing")
	}
	// A force-push back to a commit deployed before and no longer live makes it missing.
	deployHead(t, s, p, "d")
	run(t, s, StatusDeployed)
	if !missing("a") {
		t.Fatal("a, deployed before and no longer live, is not missing at the head again")
	}
	if _, err := s.HeadMissing(p.ID+1, "main", sha("a")); !errors.Is(err, ErrNotFound) {
		t.Errorf("HeadMissing of a project that does not exist: %v", err)
	}
	if _, err := s.DeployHead(context.Background(), &Deployment{ProjectID: p.ID + 1, CommitSHA: sha("e"), Branch: "main"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeployHead of a project that does not exist: %v", err)
	}
}

// TestHeadsFoundByPollingMoveTheBranch replays an old delivery after polling found a newer head:
// the replay is stale, as it would be after a push of that head.
func TestHeadsFoundByPollingMoveTheBranch(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	push(t, s, p, "a")
	run(t, s, StatusDeployed)
	pushAfter(t, s, p, "a", "b")
	run(t, s, StatusDeployed)
	if _, created := deployHead(t, s, p, "c"); !created {
		t.Fatal("the head found by polling was not deployed")
	}
	run(t, s, StatusDeployed)
	if replay := pushAfter(t, s, p, "a", "b"); !replay.Stale {
		t.Errorf("a replay of b's delivery after polling deployed c: %+v, want stale", replay)
	}
}

// TestHeadMissingAfterAChosenCommit deploys an older commit of the production branch by hand (or by
// a GitHub deployment event), which is a choice like a rollback: the head it replaced is not missing
// until the branch moves on.
func TestHeadMissingAfterAChosenCommit(t *testing.T) {
	for _, chosen := range []Trigger{TriggerManual, TriggerGitHubDeployment} {
		t.Run(string(chosen), func(t *testing.T) {
			s, _ := openTest(t)
			p := newProject(t, s, "site")
			deployHead(t, s, p, "a")
			run(t, s, StatusDeployed)
			deployHead(t, s, p, "b")
			run(t, s, StatusDeployed)
			if err := s.CreateDeployment(&Deployment{ProjectID: p.ID, CommitSHA: sha("a"), Branch: "main", Trigger: chosen}); err != nil {
				t.Fatal(err)
			}
			run(t, s, StatusDeployed)
			if m, err := s.HeadMissing(p.ID, "main", sha("b")); err != nil || m {
				t.Fatalf("the head replaced by a %s deployment of an older commit is missing: %v %v", chosen, m, err)
			}
			if _, created := deployHead(t, s, p, "b"); created {
				t.Fatal("reconciliation redeployed the head replaced by the chosen commit")
			}
			// A new head deploys, as after a rollback.
			if _, created := deployHead(t, s, p, "c"); !created {
				t.Fatal("a new head after the chosen commit was not deployed")
			}
		})
	}
}
