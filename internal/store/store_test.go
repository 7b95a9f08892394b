package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// openTest opens a store in a temporary directory.
func openTest(t *testing.T) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

// newProject stores a project deploying branch main.
func newProject(t *testing.T, s *Store, name string) *Project {
	t.Helper()
	p := &Project{Name: name, Slug: name, RepoURL: "https://example.com/r.git", DefaultBranch: "main", Target: "local", WebhookSecret: "s"}
	if err := s.CreateProject(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// sha returns a distinct 40-character commit id.
func sha(c string) string { return strings.Repeat(c, 40)[:40] }

// push records a push of commit c to project p, from no known commit before.
func push(t *testing.T, s *Store, p *Project, c string) PushResult {
	t.Helper()
	return pushAfter(t, s, p, "", c)
}

// pushAfter records a push that moves project p's branch from commit before (none when "") to c.
func pushAfter(t *testing.T, s *Store, p *Project, before, c string) PushResult {
	t.Helper()
	push := Push{ProjectID: p.ID, DeliveryID: "d-" + c, CommitSHA: sha(c), Branch: "main"}
	if before != "" {
		push.Before = sha(before)
	}
	res, err := s.RecordPush(context.Background(), push)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestOpenPermissionsAndLock(t *testing.T) {
	s, dir := openTest(t)
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, FileName): 0o600} {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", path, info.Mode().Perm(), want)
		}
	}
	_, err := Open(dir, 50*time.Millisecond)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "another `miaobu agent`") {
		t.Fatalf("second open: %v", err)
	}
	_ = s
}

func TestSlugify(t *testing.T) {
	for in, want := range map[string]string{
		"My Site":                "my-site",
		"  Hello__World!! ":      "hello-world",
		"Café Déjà Vu":           "cafe-deja-vu",
		"a--b":                   "a-b",
		"--x--":                  "x",
		strings.Repeat("ab", 40): strings.Repeat("ab", 25),
		"owner/repo.name":        "owner-repo-name",
	} {
		if got := Slugify(in); got != want {
			t.Errorf("Slugify(%q) = %q, want %q", in, got, want)
		}
	}
	for _, in := range []string{"博客", "🚀", "", "---"} {
		got := Slugify(in)
		if got == "" || !strings.HasPrefix(got, "site-") || strings.Contains(got, "--") {
			t.Errorf("Slugify(%q) = %q, want a site- fallback", in, got)
		}
	}
}

func FuzzSlugify(f *testing.F) {
	for _, seed := range []string{"My Site", "博客", "a--b", strings.Repeat("x-", 60)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		slug := Slugify(name)
		if slug == "" || len(slug) > MaxSlugLength || strings.Contains(slug, "--") || strings.HasPrefix(slug, "-") || strings.HasSuffix(slug, "-") {
			t.Fatalf("Slugify(%q) = %q", name, slug)
		}
		for _, r := range slug {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				t.Fatalf("Slugify(%q) = %q has %q", name, slug, r)
			}
		}
	})
}

func TestUniqueSlugsAndRepos(t *testing.T) {
	s, _ := openTest(t)
	a := newProject(t, s, "site")
	b := newProject(t, s, "site")
	if a.Slug != "site" || b.Slug != "site-2" {
		t.Fatalf("slugs %q %q", a.Slug, b.Slug)
	}
	gh := &Project{Name: "x", Slug: "x", Repo: "Owner/Repo", RepoURL: "u", DefaultBranch: "main", Target: "local"}
	if err := s.CreateProject(gh); err != nil {
		t.Fatal(err)
	}
	again := &Project{Name: "y", Slug: "y", Repo: "owner/repo", RepoURL: "u", DefaultBranch: "main", Target: "local"}
	if err := s.CreateProject(again); !errors.Is(err, ErrConflict) {
		t.Fatalf("second import of a repository: %v", err)
	}
	again.RootDirectory = "packages/web"
	if err := s.CreateProject(again); err != nil {
		t.Fatalf("same repository, other root: %v", err)
	}
}

func TestDuplicateRuleFollowsLiveness(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	first := push(t, s, p, "a")
	if first.Duplicate {
		t.Fatal("first push is a duplicate")
	}
	if again := push(t, s, p, "a"); !again.Duplicate || again.DeploymentID != first.DeploymentID {
		t.Fatalf("queued commit pushed again: %+v", again)
	}
	// Building, then live: still a duplicate.
	d, err := s.ClaimNext(func(int64) bool { return false })
	if err != nil || d == nil || d.ID != first.DeploymentID || d.Status != StatusCloning {
		t.Fatalf("claim: %+v %v", d, err)
	}
	if again := push(t, s, p, "a"); !again.Duplicate {
		t.Fatal("running commit pushed again was not a duplicate")
	}
	if live, err := s.Complete(d.ID); err != nil || !live {
		t.Fatalf("complete: %v %v", live, err)
	}
	if again := push(t, s, p, "a"); !again.Duplicate {
		t.Fatal("live commit pushed again was not a duplicate")
	}
	// Commit b goes live: a is no longer live, so a force-push back to it deploys again.
	second := push(t, s, p, "b")
	if _, err := s.ClaimNext(func(int64) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Complete(second.DeploymentID); err != nil {
		t.Fatal(err)
	}
	if back := pushAfter(t, s, p, "b", "a"); back.Duplicate || back.Stale {
		t.Fatalf("force-push back to a commit that is no longer live was refused: %+v", back)
	}
	// Rolling back to the first deployment makes a live again, even once the queued one of a is gone.
	if err := s.Rollback(p.ID, first.DeploymentID); err != nil {
		t.Fatal(err)
	}
	queuedAgain, err := s.ClaimNext(func(int64) bool { return false })
	if err != nil || queuedAgain == nil || queuedAgain.CommitSHA != sha("a") {
		t.Fatalf("claim: %+v %v", queuedAgain, err)
	}
	if err := s.Fail(queuedAgain.ID, StatusFailed, "boom"); err != nil {
		t.Fatal(err)
	}
	if again := push(t, s, p, "a"); !again.Duplicate || again.DeploymentID != first.DeploymentID {
		t.Fatalf("live again after rollback, yet a push of it is %+v", again)
	}
}

func TestOlderBuildNeverGoesLiveOverNewer(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	old := push(t, s, p, "a")
	if _, err := s.ClaimNext(func(int64) bool { return false }); err != nil {
		t.Fatal(err)
	}
	newer := push(t, s, p, "b")
	if _, err := s.ClaimNext(func(int64) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if live, err := s.Complete(newer.DeploymentID); err != nil || !live {
		t.Fatalf("newer: %v %v", live, err)
	}
	if ok, _ := s.MayGoLive(old.DeploymentID); ok {
		t.Fatal("MayGoLive allows the older build")
	}
	if live, err := s.Complete(old.DeploymentID); err != nil || live {
		t.Fatalf("older went live: %v %v", live, err)
	}
	project, _ := s.Project(p.ID)
	if project.ActiveDeploymentID != newer.DeploymentID {
		t.Fatalf("live is %d, want %d", project.ActiveDeploymentID, newer.DeploymentID)
	}
	if again := pushAfter(t, s, p, "b", "a"); again.Duplicate || again.Stale {
		t.Fatalf("commit of a deployment that finished but never went live counts as live: %+v", again)
	}
}

func TestClaimIsOneBuildPerProjectOldestFirst(t *testing.T) {
	s, _ := openTest(t)
	p1, p2 := newProject(t, s, "one"), newProject(t, s, "two")
	a := push(t, s, p1, "a")
	b := push(t, s, p2, "b")
	running := map[int64]bool{}
	busy := func(id int64) bool { return running[id] }
	d, _ := s.ClaimNext(busy)
	if d.ID != a.DeploymentID {
		t.Fatalf("claimed %d first, want %d", d.ID, a.DeploymentID)
	}
	running[p1.ID] = true
	push(t, s, p1, "c") // waits: project one is building
	d, _ = s.ClaimNext(busy)
	if d == nil || d.ID != b.DeploymentID {
		t.Fatalf("claimed %+v, want %d", d, b.DeploymentID)
	}
	running[p2.ID] = true
	if d, _ := s.ClaimNext(busy); d != nil {
		t.Fatalf("claimed %d while both projects build", d.ID)
	}
}

func TestCancelAndSetStatus(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	res := push(t, s, p, "a")
	if _, err := s.ClaimNext(func(int64) bool { return false }); err != nil {
		t.Fatal(err)
	}
	d, err := s.Cancel(res.DeploymentID)
	if err != nil || d.Status != StatusCancelled || d.FinishedAt == nil || d.BuildTimeSeconds == nil {
		t.Fatalf("cancel: %+v %v", d, err)
	}
	if err := s.SetStatus(res.DeploymentID, StatusBuilding); !errors.Is(err, ErrFinished) {
		t.Fatalf("SetStatus after cancel: %v", err)
	}
	if _, err := s.Cancel(res.DeploymentID); !errors.Is(err, ErrFinished) {
		t.Fatalf("second cancel: %v", err)
	}
}

func TestRecoverInterrupted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p := newProject(t, s, "site")
	res := push(t, s, p, "a")
	if _, err := s.ClaimNext(func(int64) bool { return false }); err != nil {
		t.Fatal(err)
	}
	s.Close()

	for round, want := range []Status{StatusQueued, StatusFailed} {
		s, err = Open(dir, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		touched, err := s.RecoverInterrupted()
		if err != nil || len(touched) != 1 || touched[0].Status != want {
			t.Fatalf("round %d: %+v %v", round, touched, err)
		}
		if want == StatusQueued {
			if d, _ := s.ClaimNext(func(int64) bool { return false }); d == nil || d.ID != res.DeploymentID {
				t.Fatalf("round %d: re-queued deployment not claimable", round)
			}
		}
		s.Close()
	}
}

func TestRequeueAfterShutdownUnlessSuperseded(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	a := push(t, s, p, "a")
	if _, err := s.ClaimNext(func(int64) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if err := s.Requeue(a.DeploymentID); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Deployment(a.DeploymentID); d.Status != StatusQueued {
		t.Fatalf("requeued status %s", d.Status)
	}
	if _, err := s.ClaimNext(func(int64) bool { return false }); err != nil {
		t.Fatal(err)
	}
	b := push(t, s, p, "b")
	if err := s.Requeue(a.DeploymentID); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Deployment(a.DeploymentID); d.Status != StatusCancelled || d.ErrorMessage != "superseded by #2" {
		t.Fatalf("requeue with a newer queued: %s %q", d.Status, d.ErrorMessage)
	}
	_ = b
}

func TestDeleteProjectAndPrune(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	for _, c := range []string{"a", "b", "c", "d"} {
		res := push(t, s, p, c)
		if _, err := s.ClaimNext(func(int64) bool { return false }); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Complete(res.DeploymentID); err != nil {
			t.Fatal(err)
		}
	}
	gone, err := s.PruneDeployments(p.ID, 2)
	if err != nil || len(gone) != 2 || gone[0].CommitSHA != sha("b") || gone[1].CommitSHA != sha("a") {
		t.Fatalf("prune removed the wrong ones: %+v %v", gone, err)
	}
	left, _ := s.Deployments(p.ID, 0)
	if len(left) != 2 {
		t.Fatalf("%d deployments left, want 2 (the live one and the one before)", len(left))
	}
	removed, err := s.DeleteProject(p.ID)
	if err != nil || len(removed) != 2 {
		t.Fatalf("delete: %d %v", len(removed), err)
	}
	if _, err := s.Project(p.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("project still there: %v", err)
	}
	if _, err := s.RecordPush(context.Background(), Push{ProjectID: p.ID, CommitSHA: sha("e")}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("push to a deleted project: %v", err)
	}
	if again := newProject(t, s, "site"); again.Slug != "site" {
		t.Fatalf("slug of a deleted project not reusable: %q", again.Slug)
	}
}

func TestWritesAfterCloseAreRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p := newProject(t, s, "site")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordPush(context.Background(), Push{ProjectID: p.ID, CommitSHA: sha("a")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("push after close: %v", err)
	}
}

func TestOnFinishHearsEveryEnd(t *testing.T) {
	s, _ := openTest(t)
	var mu sync.Mutex
	var heard []Status
	s.OnFinish(func(status Status) {
		mu.Lock()
		defer mu.Unlock()
		heard = append(heard, status)
	})
	claim := func() *Deployment {
		t.Helper()
		d, err := s.ClaimNext(func(int64) bool { return false })
		if err != nil || d == nil {
			t.Fatalf("claim: %+v %v", d, err)
		}
		return d
	}
	p := newProject(t, s, "site")
	push(t, s, p, "a")
	running := claim().ID
	push(t, s, p, "b")
	c := push(t, s, p, "c") // supersedes b
	// A shutdown while c is queued: the running deployment is superseded too.
	if err := s.Requeue(running); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Cancel(c.DeploymentID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Cancel(c.DeploymentID); !errors.Is(err, ErrFinished) {
		t.Fatalf("second cancel: %v", err)
	}
	deployOK(t, s, p.ID, "d")
	push(t, s, p, "e")
	if err := s.Fail(claim().ID, StatusFailed, "broken"); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	want := []Status{StatusCancelled, StatusCancelled, StatusCancelled, StatusDeployed, StatusFailed}
	if !slices.Equal(heard, want) {
		t.Fatalf("OnFinish heard %q, want %q", heard, want)
	}
}

// deployNext claims the oldest queued deployment and completes it.
func deployNext(t *testing.T, s *Store) *Deployment {
	t.Helper()
	d, err := s.ClaimNext(func(int64) bool { return false })
	if err != nil || d == nil {
		t.Fatalf("claim: %+v %v", d, err)
	}
	if _, err := s.Complete(d.ID); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestStaleDeliveries is the spec of the stale rule: a push of a commit deployed before, that is
// neither the branch's last pushed commit nor the push's before, replays an old delivery.
func TestStaleDeliveries(t *testing.T) {
	s, dir := openTest(t)
	p := newProject(t, s, "site")
	a := push(t, s, p, "a")
	deployNext(t, s)
	b := pushAfter(t, s, p, "a", "b")
	deployNext(t, s)

	if replay := push(t, s, p, "a"); !replay.Stale || replay.DeploymentID != 0 {
		t.Fatalf("replay of a after b: %+v", replay)
	}
	if replay := pushAfter(t, s, p, "0", "a"); !replay.Stale {
		t.Fatalf("replay of a with an unrelated before: %+v", replay)
	}
	if project, _ := s.Project(p.ID); project.ActiveDeploymentID != b.DeploymentID {
		t.Fatalf("live is %d after a stale delivery, want %d", project.ActiveDeploymentID, b.DeploymentID)
	}
	if again := push(t, s, p, "b"); again.Stale || !again.Duplicate {
		t.Fatalf("redelivery of the branch's last push: %+v", again)
	}
	if fresh := pushAfter(t, s, p, "x", "c"); fresh.Stale || fresh.Duplicate || fresh.DeploymentID == 0 {
		t.Fatalf("a commit never deployed, out of order: %+v", fresh)
	}
	// The head is now c: a push from b (a replay of b's delivery) is stale, a force-push from c is not.
	if replay := pushAfter(t, s, p, "a", "b"); !replay.Stale {
		t.Fatalf("replay of b after c: %+v", replay)
	}
	back := pushAfter(t, s, p, "c", "a")
	if back.Stale || back.Duplicate || back.DeploymentID <= a.DeploymentID {
		t.Fatalf("force-push back to a: %+v", back)
	}
	deliveries, err := s.Deliveries(p.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	stale := 0
	for _, d := range deliveries {
		if d.Outcome == OutcomeIgnored && d.DeploymentID == 0 {
			stale++
		}
	}
	if stale != 3 {
		t.Fatalf("%d stale deliveries recorded, want 3: %+v", stale, deliveries)
	}

	// The head and the history are durable, and they survive pruning the deployments they name.
	if _, err := s.PruneDeployments(p.ID, 1); err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	s = reopen(t, dir)
	if replay := pushAfter(t, s, p, "b", "c"); !replay.Stale {
		t.Fatalf("replay of c after reopening, with a as the head: %+v", replay)
	}

	// Deleting the project forgets them.
	if _, err := s.DeleteProject(p.ID); err != nil {
		t.Fatal(err)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{branchHeadsBucket, deployedCommitsBucket} {
			if k, _ := bucket(tx, name).Cursor().Seek(itob(p.ID)); k != nil && hasPrefix(k, itob(p.ID)) {
				return fmt.Errorf("%s keeps %x of the deleted project", name, k)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestStaleRuleAfterUpgrade opens a store written before branch_heads and deployed_commits existed:
// they are filled from its deployments, so an old delivery replayed after the upgrade is stale.
func TestStaleRuleAfterUpgrade(t *testing.T) {
	s, dir := openTest(t)
	p := newProject(t, s, "site")
	push(t, s, p, "a")
	deployNext(t, s)
	pushAfter(t, s, p, "a", "b")
	deployNext(t, s)
	err := s.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(rootBucket)
		if err := root.DeleteBucket(branchHeadsBucket); err != nil {
			return err
		}
		if err := root.DeleteBucket(deployedCommitsBucket); err != nil {
			return err
		}
		return root.Bucket(metaBucket).Put(schemaKey, []byte("1"))
	})
	if err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	s = reopen(t, dir)
	if replay := push(t, s, p, "a"); !replay.Stale {
		t.Fatalf("replay of a after the upgrade: %+v", replay)
	}
	if next := pushAfter(t, s, p, "b", "c"); next.Stale || next.DeploymentID == 0 {
		t.Fatalf("the next push after the upgrade: %+v", next)
	}
}
