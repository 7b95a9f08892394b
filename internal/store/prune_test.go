package store

import (
	"strings"
	"testing"
	"time"
)

// deployOK creates a deployment of project and runs it to deployed.
func deployOK(t *testing.T, s *Store, projectID int64, sha string) int64 {
	t.Helper()
	d := &Deployment{ProjectID: projectID, CommitSHA: strings.Repeat(sha, 40), Branch: "main", Trigger: TriggerManual}
	if err := s.CreateDeployment(d); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimNext(func(int64) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Complete(d.ID); err != nil {
		t.Fatal(err)
	}
	return d.ID
}

func TestPruneKeepsTheLiveDeploymentAmongKeep(t *testing.T) {
	s, err := Open(t.TempDir(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := &Project{Name: "p", Slug: "p", RepoURL: "/r", DefaultBranch: "main", Target: "local"}
	if err := s.CreateProject(p); err != nil {
		t.Fatal(err)
	}
	a, b, c := deployOK(t, s, p.ID, "a"), deployOK(t, s, p.ID, "b"), deployOK(t, s, p.ID, "c")

	gone, err := s.PruneDeployments(p.ID, 2)
	if err != nil || len(gone) != 1 || gone[0].ID != a {
		t.Fatalf("keep 2 of 3: pruned %v, %v; want #%d", gone, err, a)
	}
	if err := s.Rollback(p.ID, b); err != nil {
		t.Fatal(err)
	}
	gone, err = s.PruneDeployments(p.ID, 1)
	if err != nil || len(gone) != 1 || gone[0].ID != c {
		t.Fatalf("keep 1 after a rollback to #%d: pruned %v, %v; want the newer #%d", b, gone, err, c)
	}
	if _, err := s.Deployment(b); err != nil {
		t.Errorf("the live deployment was pruned: %v", err)
	}
}
