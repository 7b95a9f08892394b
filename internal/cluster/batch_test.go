package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/store"
)

// pushSHA is the commit of the i-th push of these tests.
func pushSHA(i int) string { return fmt.Sprintf("%040x", 0xba7c4000+i) }

// checkLatestWins checks that project p's record and deployments hold exactly the deployments
// results name, created once each, the newest alone queued and the others cancelled as superseded.
func checkLatestWins(t *testing.T, s *Store, p *store.Project, results []store.PushResult) {
	t.Helper()
	ids := map[int64]bool{}
	var newest int64
	for i, res := range results {
		if res.DeploymentID == 0 || res.Duplicate || ids[res.DeploymentID] {
			t.Fatalf("push %d: %+v; want a deployment of its own", i, res)
		}
		ids[res.DeploymentID] = true
		newest = max(newest, res.DeploymentID)
	}
	ctx, cancel := opContext()
	defer cancel()
	r, _, err := s.record(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.History) != len(results) || r.LastID != newest || len(r.Deployed) != len(results) {
		t.Fatalf("record has %d deployments, %d deployed commits, last %d; want %d and %d", len(r.History), len(r.Deployed), r.LastID, len(results), newest)
	}
	if _, queued := r.Queued[newest]; len(r.Queued) != 1 || !queued || len(r.Commits) != 1 {
		t.Fatalf("record queues %v with commits %v; want the newest deployment %d alone", r.Queued, r.Commits, newest)
	}
	if r.Heads["main"] != r.Queued[newest].SHA {
		t.Fatalf("head of main is %s, the newest deployment's commit %s", r.Heads["main"], r.Queued[newest].SHA)
	}
	ds, err := s.Deployments(p.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		want := store.StatusCancelled
		if d.ID == newest {
			want = store.StatusQueued
		}
		if !ids[d.ID] || d.Status != want {
			t.Fatalf("deployment %d is %s (%s); want %s", d.ID, d.Status, d.ErrorMessage, want)
		}
	}
	if len(ds) != len(results) {
		t.Fatalf("%d deployments stored, want %d", len(ds), len(results))
	}
}

func TestConcurrentPushesOfOneProjectShareWrites(t *testing.T) {
	stores := startCluster(t)
	p := addProject(t, stores[0])
	s := stores[1]
	const pushes = 200
	writes := s.recordWrites.Load()
	results := make([]store.PushResult, pushes)
	errs := make([]error, pushes)
	var wg sync.WaitGroup
	for i := range pushes {
		wg.Go(func() {
			results[i], errs[i] = s.RecordPush(context.Background(), store.Push{ProjectID: p.ID,
				DeliveryID: fmt.Sprintf("batch-%d", i), CommitSHA: pushSHA(i), Branch: "main"})
		})
	}
	wg.Wait()
	writes = s.recordWrites.Load() - writes
	for i, err := range errs {
		if err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	checkLatestWins(t, s, p, results)
	if writes > pushes/4 {
		t.Fatalf("%d pushes wrote the project's record %d times; want batches", pushes, writes)
	}
	t.Logf("%d pushes wrote the project's record %d times", pushes, writes)
	deliveries, err := stores[2].Deliveries(p.ID, 0)
	if err != nil || len(deliveries) != pushes {
		t.Fatalf("%d deliveries recorded (%v), want %d", len(deliveries), err, pushes)
	}
}

func TestConcurrentPushesThroughThreeNodesKeepLatestWins(t *testing.T) {
	stores := startCluster(t)
	p := addProject(t, stores[0])
	const pushes = 90
	results := make([]store.PushResult, pushes)
	errs := make([]error, pushes)
	var wg sync.WaitGroup
	for i := range pushes {
		wg.Go(func() {
			results[i], errs[i] = stores[i%3].RecordPush(context.Background(), store.Push{ProjectID: p.ID,
				DeliveryID: fmt.Sprintf("batch-%d", i), CommitSHA: pushSHA(i), Branch: "main"})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	checkLatestWins(t, stores[0], p, results)
}

func TestFailingChangeLeavesTheRestOfItsBatch(t *testing.T) {
	stores := startCluster(t)
	p := addProject(t, stores[0])
	s := stores[1]
	fork := store.Push{ProjectID: p.ID, Branch: "patch-1", Alias: "pr-7", PullRequest: 7, Fork: true, Hold: true}
	for _, sha := range []string{pushSHA(1000), pushSHA(1001)} {
		fork.CommitSHA, fork.DeliveryID = sha, "fork-"+sha
		if _, err := s.RecordPush(context.Background(), fork); err != nil {
			t.Fatal(err)
		}
	}
	// waitForBatch polls until n changes of p wait in one batch.
	waitForBatch := func(n int) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			s.batchesMu.Lock()
			waiting := 0
			if b := s.batches[p.ID]; b != nil {
				waiting = len(b.changes)
			}
			s.batchesMu.Unlock()
			if waiting == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d changes in the batch, want %d", waiting, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// The record's lock is held as if a write were in flight, so that the changes below join one
	// batch in the order they are made.
	unlock := s.lockRecord(p.ID)
	writes := s.recordWrites.Load()
	const pushes = 10
	results := make([]store.PushResult, pushes)
	errs := make([]error, pushes)
	var wg sync.WaitGroup
	pushAt := func(i int) {
		wg.Go(func() {
			results[i], errs[i] = s.RecordPush(context.Background(), store.Push{ProjectID: p.ID,
				DeliveryID: fmt.Sprintf("batch-%d", i), CommitSHA: pushSHA(i), Branch: "main"})
		})
		waitForBatch(i + 3)
	}
	var approveErr, spoilErr error
	wg.Go(func() {
		_, approveErr = s.ApprovePreview(store.Push{ProjectID: p.ID, CommitSHA: pushSHA(1000), Branch: "patch-1", Alias: "pr-7",
			PullRequest: 7, Fork: true})
	})
	waitForBatch(1)
	spoiled := errors.New("spoiled")
	wg.Go(func() {
		_, spoilErr = s.changeRecord(context.Background(), p.ID, func(r *projectRecord) error {
			r.Project.Name = "spoiled"
			r.Heads["main"] = "spoiled"
			return spoiled
		})
	})
	waitForBatch(2)
	for i := range pushes {
		pushAt(i)
	}
	unlock()
	wg.Wait()
	writes = s.recordWrites.Load() - writes
	if !errors.Is(approveErr, store.ErrHeadMoved) || !errors.Is(spoilErr, spoiled) {
		t.Fatalf("approval of a moved head: %v, failing change: %v; want their own errors", approveErr, spoilErr)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	checkLatestWins(t, s, p, results)
	if got, err := s.Project(p.ID); err != nil || got.Name != p.Name {
		t.Fatalf("project after a failed change: %+v, %v", got, err)
	}
	if writes != 1 {
		t.Fatalf("the batch wrote the project's record %d times, want once", writes)
	}
}
