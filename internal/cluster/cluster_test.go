package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/logtest"
	"github.com/miaobu/miaobu/internal/outbox"
	"github.com/miaobu/miaobu/internal/store"
)

// electionTimeout bounds the start of the tests' cluster: its nodes elect a leader for the cluster and
// for each bucket, in seconds each, longer on a busy machine or under the race detector.
const electionTimeout = 2 * time.Minute

// freeAddrs returns n loopback addresses with free ports.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		ln.Close()
	}
	return addrs
}

// peersOf returns the route URLs of addrs.
func peersOf(addrs []string) []string {
	var peers []string
	for _, a := range addrs {
		peers = append(peers, "nats-route://"+a)
	}
	return peers
}

// testLeaseTTL is the lease TTL of the tests' cluster: short, so that a lost lease shows soon.
const testLeaseTTL = 3 * time.Second

var (
	sharedOnce   sync.Once
	sharedStores []*Store
	sharedNodes  []*Node
	sharedErr    error
	sharedDirs   []string
	// sharedLog is what the nodes of the shared cluster logged.
	sharedLog logtest.Buffer
)

// TestMain closes the cluster the tests share once they have run.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, n := range sharedNodes {
		if n != nil {
			n.Close()
		}
	}
	for _, dir := range sharedDirs {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// startCluster returns the stores of three in-process nodes on loopback, started on first use and
// shared by the tests, which keep apart by using projects of their own.
func startCluster(t *testing.T) []*Store {
	t.Helper()
	sharedOnce.Do(func() { sharedNodes, sharedStores, sharedErr = newCluster() })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedStores
}

// newCluster starts three nodes at once, as three agents starting together do, and opens a Store
// on each, also at once.
func newCluster() ([]*Node, []*Store, error) {
	var addrs []string
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		addrs = append(addrs, ln.Addr().String())
		ln.Close()
	}
	for range 3 {
		dir, err := os.MkdirTemp("", "miaobu-cluster-test")
		if err != nil {
			return nil, nil, err
		}
		sharedDirs = append(sharedDirs, dir)
	}
	nodes, stores, errs := make([]*Node, 3), make([]*Store, 3), make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), electionTimeout)
			defer cancel()
			dir := sharedDirs[i]
			nodes[i], errs[i] = StartNode(ctx, NodeOptions{Name: fmt.Sprintf("n%d", i+1), Listen: addrs[i], Peers: peersOf(addrs),
				Secret: "test-secret", Dir: dir, Log: slog.New(slog.NewTextHandler(&sharedLog, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			if errs[i] == nil {
				stores[i], errs[i] = Open(ctx, nodes[i], Options{LeaseTTL: testLeaseTTL})
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nodes, nil, fmt.Errorf("node %d: %w", i+1, err)
		}
	}
	return nodes, stores, nil
}

// addProject creates a project through s.
func addProject(t *testing.T, s *Store) *store.Project {
	t.Helper()
	p := &store.Project{Name: "site", Slug: "site", RepoURL: "file:///repo", DefaultBranch: "main", Target: "local", WebhookSecret: "s"}
	if err := s.CreateProject(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStartNodeRefusesFewerThanThreePeers(t *testing.T) {
	addrs := freeAddrs(t, 4)
	_, portB, _ := net.SplitHostPort(addrs[1])
	tests := []struct {
		name  string
		peers []string
		want  string
	}{
		{"two peers", addrs[:2], "2 distinct voting nodes"},
		{"a peer twice", []string{addrs[0], addrs[1], addrs[1]}, "2 distinct voting nodes"},
		{"itself thrice", []string{addrs[0], addrs[0], addrs[0]}, "1 distinct voting nodes"},
		{"a peer by two names", []string{addrs[0], "localhost:" + portB, addrs[1]}, "2 distinct voting nodes"},
		{"without itself", addrs[1:], "does not list this node's own cluster.listen"},
	}
	for _, tt := range tests {
		_, err := StartNode(context.Background(), NodeOptions{Name: "n1", Listen: addrs[0], Peers: peersOf(tt.peers), Secret: "x", Dir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
}

func TestConcurrentDeliveriesOfOneCommitMakeOneDeployment(t *testing.T) {
	stores := startCluster(t)
	p := addProject(t, stores[0])
	sha := "0123456789abcdef0123456789abcdef01234567"
	results := make([]store.PushResult, 100)
	errs := make([]error, 100)
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			// A delivery answered 503 (no quorum in time) is delivered again, as GitHub redelivers.
			for range 5 {
				results[i], errs[i] = stores[i%3].RecordPush(context.Background(), store.Push{ProjectID: p.ID,
					DeliveryID: fmt.Sprintf("d-%d", i), CommitSHA: sha, Branch: "main"})
				if !errors.Is(errs[i], ErrUnavailable) {
					break
				}
			}
		})
	}
	wg.Wait()
	created := map[int64]bool{}
	for i := range 100 {
		if errs[i] != nil {
			t.Fatalf("delivery %d: %v", i, errs[i])
		}
		created[results[i].DeploymentID] = true
		if results[i].DeploymentID == 0 {
			t.Fatalf("delivery %d has no deployment: %+v", i, results[i])
		}
	}
	if len(created) != 1 {
		t.Fatalf("the deliveries name %d deployments, want 1: %v", len(created), created)
	}
	ds, err := stores[2].Deployments(p.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Status != store.StatusQueued {
		t.Fatalf("deployments = %+v, want one queued", ds)
	}
	deliveries, err := stores[1].Deliveries(p.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(deliveries) != 100 {
		t.Fatalf("%d deliveries recorded, want 100", len(deliveries))
	}
}

// claimWithin polls s for a build of project p to claim until one comes or timeout passes; the
// builds of other tests' projects it claims meanwhile are failed.
func claimWithin(t *testing.T, s *Store, p *store.Project, timeout time.Duration) *store.Deployment {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		d, err := claimOf(s, p)
		if err != nil {
			t.Fatal(err)
		}
		if d != nil {
			return d
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing to claim on %s within %s", s.Node().Name(), timeout)
	return nil
}

// claimOf claims a build on s once, failing at once one of another project than p, which an
// earlier test left queued; it returns p's claimed deployment, or nil.
func claimOf(s *Store, p *store.Project) (*store.Deployment, error) {
	d, err := s.ClaimNext(func(int64) bool { return false })
	if err != nil || d == nil {
		return nil, err
	}
	if d.ProjectID != p.ID {
		return nil, s.Fail(d.ID, store.StatusFailed, "left by another test")
	}
	return d, nil
}

// push records a push of sha to alias ("" for production) through s.
func push(t *testing.T, s *Store, p *store.Project, alias, sha string) int64 {
	t.Helper()
	branch := "main"
	if alias != "" {
		branch = alias
	}
	res, err := s.RecordPush(context.Background(), store.Push{ProjectID: p.ID, DeliveryID: sha, CommitSHA: sha, Branch: branch, Alias: alias})
	if err != nil {
		t.Fatal(err)
	}
	return res.DeploymentID
}

func TestOneBuildOfAProjectAtATime(t *testing.T) {
	stores := startCluster(t)
	p := addProject(t, stores[0])
	push(t, stores[0], p, "", "1111111111111111111111111111111111111111")
	push(t, stores[1], p, "git-next", "2222222222222222222222222222222222222222")
	first := claimWithin(t, stores[0], p, 5*time.Second)
	if first.Node != "n1" {
		t.Fatalf("claimed deployment's node = %q, want n1", first.Node)
	}
	// Both tokens stay unclaimed elsewhere while n1 builds, across several renewals of its lease.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		for _, s := range stores[1:] {
			if d, err := claimOf(s, p); err != nil || d != nil {
				t.Fatalf("%s claimed %+v (err %v) while n1 builds project %d", s.Node().Name(), d, err, p.ID)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if live, err := stores[0].Complete(first.ID); err != nil || !live {
		t.Fatalf("Complete = %v, %v; want live", live, err)
	}
	second := claimWithin(t, stores[2], p, 10*time.Second)
	if second.ID == first.ID || second.Node != "n3" {
		t.Fatalf("second claim = %+v", second)
	}
}

func TestBuildWhoseLeaseWasLostNeverGoesLive(t *testing.T) {
	stores := startCluster(t)
	p := addProject(t, stores[0])
	push(t, stores[0], p, "", "3333333333333333333333333333333333333333")
	lost := make(chan int64, 1)
	stores[0].OnLeaseLost(func(id int64) { lost <- id })
	d := claimWithin(t, stores[0], p, 5*time.Second)
	// n1 is cut off: its lease is gone as if it had expired, and the reconciler takes the build over.
	if err := stores[1].leases.Purge(context.Background(), projectLease(p.ID)); err != nil {
		t.Fatal(err)
	}
	if err := stores[1].reconcileOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	again := claimWithin(t, stores[1], p, 10*time.Second)
	if again.ID != d.ID || again.Attempts != 1 {
		t.Fatalf("taken over: %+v, want deployment %d on its second attempt", again, d.ID)
	}
	select {
	case id := <-lost:
		if id != d.ID {
			t.Fatalf("lost callback for %d, want %d", id, d.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("n1 was not told that it lost its lease")
	}
	if _, err := stores[0].Complete(d.ID); err != store.ErrFinished {
		t.Fatalf("n1's Complete after losing its lease = %v, want ErrFinished", err)
	}
	if live, err := stores[1].Complete(d.ID); err != nil || !live {
		t.Fatalf("n2's Complete = %v, %v; want live", live, err)
	}
	got, err := stores[2].Project(p.ID)
	if err != nil || got.ActiveDeploymentID != d.ID {
		t.Fatalf("live deployment = %d (%v), want %d", got.ActiveDeploymentID, err, d.ID)
	}
}

func TestOutboxIsSentByOneNodeAndReportsEveryStatus(t *testing.T) {
	stores := startCluster(t)
	p := addProject(t, stores[0])
	for _, s := range stores {
		s.OnTransition(func(q store.Project, d store.Deployment) []outbox.Message {
			if q.ID != p.ID {
				return nil
			}
			return []outbox.Message{{Kind: "test", Key: fmt.Sprintf("deployment:%d", d.ID),
				Payload: []byte(fmt.Sprintf(`{"status":%q,"node":%q}`, d.Status, d.Node))}}
		})
		t.Cleanup(func() { s.OnTransition(func(store.Project, store.Deployment) []outbox.Message { return nil }) })
	}
	id := push(t, stores[1], p, "", "4444444444444444444444444444444444444444")
	d := claimWithin(t, stores[2], p, 10*time.Second)
	if live, err := stores[2].Complete(d.ID); err != nil || !live {
		t.Fatalf("Complete = %v, %v", live, err)
	}
	var statuses []string
	senders := map[string]bool{}
	for deadline := time.Now().Add(15 * time.Second); len(statuses) < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("reports sent: %v, want queued, cloning and deployed", statuses)
		}
		for _, s := range stores {
			due, _, err := s.DueMessages(time.Now(), 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range due {
				if m.Key != fmt.Sprintf("deployment:%d", id) {
					continue
				}
				senders[s.Node().Name()] = true
				var body struct{ Status string }
				if err := json.Unmarshal(m.Payload, &body); err != nil {
					t.Fatal(err)
				}
				statuses = append(statuses, body.Status)
				if err := s.DeleteMessage(m.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if strings.Join(statuses, ",") != "queued,cloning,deployed" {
		t.Fatalf("reports in the order sent: %v, want queued, cloning, deployed", statuses)
	}
	if len(senders) != 1 {
		t.Fatalf("messages sent by %v, want one node", senders)
	}
}

func TestRemovedPreviewBuildsItsCommitAgain(t *testing.T) {
	stores := startCluster(t)
	p := addProject(t, stores[0])
	sha := "5555555555555555555555555555555555555555"
	first := push(t, stores[0], p, "git-topic", sha)
	d := claimWithin(t, stores[1], p, 10*time.Second)
	if live, err := stores[1].Complete(d.ID); err != nil || !live || d.ID != first {
		t.Fatalf("Complete of %d (pushed %d) = %v, %v", d.ID, first, live, err)
	}
	before, cancelled, err := stores[2].RemovePreview(p.ID, "git-topic", "branch deleted")
	if err != nil || before.ActiveDeploymentID != first || len(cancelled) != 0 {
		t.Fatalf("RemovePreview = %+v, %v, %v", before, cancelled, err)
	}
	if pv, err := stores[0].Preview(p.ID, "git-topic"); err != nil || !pv.Removed() {
		t.Fatalf("preview after removal = %+v, %v", pv, err)
	}
	res, err := stores[0].RecordPush(context.Background(), store.Push{ProjectID: p.ID, DeliveryID: "again", CommitSHA: sha,
		Branch: "git-topic", Alias: "git-topic"})
	if err != nil || res.Duplicate || res.Stale || res.DeploymentID <= first {
		t.Fatalf("push of the removed preview's commit = %+v, %v; want a new deployment", res, err)
	}
}

// TestPolledPreviewHeadIsNoDelivery records a preview head the agent found itself: its deployment
// has trigger poll, and no delivery is recorded.
func TestPolledPreviewHeadIsNoDelivery(t *testing.T) {
	stores := startCluster(t)
	p := addProject(t, stores[0])
	res, err := stores[0].RecordPush(context.Background(), store.Push{ProjectID: p.ID, CommitSHA: "6666666666666666666666666666666666666666",
		Branch: "topic", Alias: "git-topic", Trigger: store.TriggerPoll})
	if err != nil || res.DeploymentID == 0 {
		t.Fatalf("RecordPush = %+v, %v", res, err)
	}
	if d, err := stores[1].Deployment(res.DeploymentID); err != nil || d.Trigger != store.TriggerPoll || d.Alias != "git-topic" {
		t.Fatalf("deployment %+v, %v", d, err)
	}
	if deliveries, err := stores[2].Deliveries(p.ID, 0); err != nil || len(deliveries) != 0 {
		t.Errorf("deliveries %+v, %v, want none", deliveries, err)
	}
}

func TestOwnerMovesOnlyTheKeysOfALostMember(t *testing.T) {
	all := Health{Members: []Member{{Node: "a", Current: true}, {Node: "b", Current: true}, {Node: "c", Current: true}}}
	lost := Health{Members: []Member{{Node: "a", Current: true}, {Node: "b", Current: true}, {Node: "c"}}}
	owned := map[string]int{}
	for key := range 300 {
		k := strconv.Itoa(key)
		before, after := all.Owner(k), lost.Owner(k)
		owned[before]++
		if before != "c" && after != before {
			t.Fatalf("key %s moved from %s to %s though %s is still current", k, before, after, before)
		}
		if after == "c" || after == "" {
			t.Fatalf("key %s owned by %q after c was lost", k, after)
		}
	}
	for _, node := range []string{"a", "b", "c"} {
		if owned[node] < 60 {
			t.Fatalf("node %s owns %d of 300 keys: %v", node, owned[node], owned)
		}
	}
}

func TestRouteSecretNeverLogged(t *testing.T) {
	startCluster(t)
	log := sharedLog.String()
	if !strings.Contains(log, "Route connection created") {
		t.Fatalf("the nodes logged no route connection:\n%s", log)
	}
	if strings.Contains(log, "test-secret") {
		t.Fatal("a node logged cluster.secret")
	}
	if strings.Contains(log, "Plaintext passwords") {
		t.Fatal("a node holds a password in clear: it should hold only its bcrypt hash")
	}
}

func TestForgetOldestKeepsTheNewest(t *testing.T) {
	m := map[string]int64{}
	for i := range 1500 {
		m[strconv.Itoa(i)] = int64(i + 1)
	}
	forgetOldest(m, 1000)
	if len(m) != 1000 || m["499"] != 0 || m["500"] != 501 || m["1499"] != 1500 {
		t.Fatalf("kept %d entries, 499 → %d, 500 → %d, 1499 → %d; want the newest 1000", len(m), m["499"], m["500"], m["1499"])
	}
}

func TestReconcilerEndsADeploymentWhoseEndWasNotRecorded(t *testing.T) {
	stores := startCluster(t)
	p := addProject(t, stores[0])
	id := push(t, stores[0], p, "", "6666666666666666666666666666666666666666")
	d := claimWithin(t, stores[1], p, 10*time.Second)
	// n2 dies after making the deployment live in the project's record, before recording it deployed.
	_, err := stores[1].changeRecord(context.Background(), p.ID, func(r *projectRecord) error {
		if err := r.setLive(id, "", d.CommitSHA); err != nil {
			return err
		}
		r.finish(id)
		return nil
	})
	if err != nil || d.ID != id {
		t.Fatalf("claimed %d (pushed %d): %v", d.ID, id, err)
	}
	for range 2 {
		if err := stores[2].reconcileOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	got, err := stores[0].Deployment(id)
	if err != nil || got.Status != store.StatusDeployed {
		t.Fatalf("deployment after two reconciler passes: %+v, %v; want deployed", got, err)
	}
}

func TestCancelThroughAnotherNodeStopsTheBuild(t *testing.T) {
	stores := startCluster(t)
	p := addProject(t, stores[0])
	lost := make(chan int64, 1)
	stores[0].OnLeaseLost(func(id int64) { lost <- id })
	t.Cleanup(func() { stores[0].OnLeaseLost(func(int64) {}) })
	push(t, stores[1], p, "", "8888888888888888888888888888888888888888")
	d := claimWithin(t, stores[0], p, 10*time.Second)
	if _, err := stores[2].Cancel(d.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-lost:
		if id != d.ID {
			t.Fatalf("n1 was told to stop %d, want %d", id, d.ID)
		}
	case <-time.After(3 * testLeaseTTL):
		t.Fatal("n1 was not told that the build it runs was cancelled through n3")
	}
	if err := stores[0].Requeue(d.ID); !errors.Is(err, store.ErrFinished) {
		t.Fatalf("Requeue of the cancelled build = %v, want ErrFinished", err)
	}
	if got, err := stores[1].Deployment(d.ID); err != nil || got.Status != store.StatusCancelled {
		t.Fatalf("deployment = %+v, %v; want cancelled", got, err)
	}
}

// startNodes starts three nodes of a cluster of their own, at once, and stops them when the test
// ends.
func startNodes(t *testing.T) []*Node {
	t.Helper()
	addrs := freeAddrs(t, 3)
	nodes, errs := make([]*Node, 3), make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), electionTimeout)
			defer cancel()
			nodes[i], errs[i] = StartNode(ctx, NodeOptions{Name: fmt.Sprintf("m%d", i+1), Listen: addrs[i], Peers: peersOf(addrs),
				Secret: "test-secret", Dir: t.TempDir()})
		})
	}
	wg.Wait()
	for i, n := range nodes {
		if n != nil {
			t.Cleanup(n.Close)
		}
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i+1, errs[i])
		}
	}
	return nodes
}

// problemWithin polls n until its problem contains want.
func problemWithin(t *testing.T, n *Node, want string) {
	t.Helper()
	deadline := time.Now().Add(electionTimeout)
	for {
		problem := n.Problem()
		if strings.Contains(problem, want) && (want != "" || problem == "") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: problem %q, want %q", n.Name(), problem, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestProblemNamesDisabledJetStreamAndLostQuorum(t *testing.T) {
	nodes := startNodes(t)
	for _, n := range nodes {
		problemWithin(t, n, "")
	}
	// What the embedded server does when it runs out of disk space.
	if err := nodes[0].server.ShutdownJetStream(); err != nil {
		t.Fatal(err)
	}
	if !nodes[0].JetStreamDisabled() {
		t.Fatal("JetStream still enabled after its shutdown")
	}
	problemWithin(t, nodes[0], "JetStream is disabled")
	nodes[1].Close()
	problemWithin(t, nodes[2], "no quorum")
}

func TestRouteAuthFailureLoggedOnceAsAWrongSecret(t *testing.T) {
	var out logtest.Buffer
	l := &natsLogger{log: slog.New(slog.NewTextHandler(&out, nil))}
	for i := range 50 {
		l.Errorf("%s - rid:%d - Route Error 'Authorization Violation'", "127.0.0.1:6222", i)
	}
	log := out.String()
	if n := strings.Count(log, "\n"); n != 1 || !strings.Contains(log, "cluster.secret does not match") {
		t.Fatalf("%d lines logged for 50 refused routes, want one naming cluster.secret:\n%s", n, log)
	}
}

// On loopback every node has the same host, so a member whose routes were all dialed by it shows
// only that host: never a port it dialed from.
func TestHealthShowsEveryMemberCurrentAtItsRouteAddress(t *testing.T) {
	startCluster(t)
	listens := map[string]string{}
	for _, n := range sharedNodes {
		listens[n.name] = n.listen
	}
	for _, n := range sharedNodes {
		for deadline := time.Now().Add(electionTimeout); ; time.Sleep(50 * time.Millisecond) {
			h := n.Health()
			ok := h.Quorum && len(h.Members) == len(listens)
			for _, m := range h.Members {
				host, _, _ := net.SplitHostPort(listens[m.Node])
				ok = ok && m.Current && (m.Address == listens[m.Node] || m.Address == host)
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s sees %+v, want every member current at %v", n.name, h, listens)
			}
		}
	}
}

// TestReconcilerEndsASupersededDeploymentAsCancelled leaves a deployment queued in its own record
// while its project's record says a newer push superseded it, as when the newer push's node could
// not cancel a record that was not written yet: the reconciler ends it cancelled, superseded, not
// failed.
func TestReconcilerEndsASupersededDeploymentAsCancelled(t *testing.T) {
	stores := startCluster(t)
	p := addProject(t, stores[0])
	older := push(t, stores[0], p, "", "1111111111111111111111111111111111111111")
	newer := push(t, stores[1], p, "", "2222222222222222222222222222222222222222")
	// The older deployment's record as it was before the newer push cancelled it.
	if _, err := stores[2].changeDeployment(context.Background(), older, func(d *store.Deployment) error {
		d.Status, d.ErrorMessage, d.FinishedAt = store.StatusQueued, "", nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := stores[2].reconcileOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	got, err := stores[0].Deployment(older)
	if want := fmt.Sprintf("superseded by #%d", newer); err != nil || got.Status != store.StatusCancelled || got.ErrorMessage != want {
		t.Fatalf("deployment after two reconciler passes: %+v, %v; want cancelled, %q", got, err, want)
	}
}

// TestDeploymentQueuedBeforeItsRecordIsWritten queues a deployment in its project's record whose
// own record is not written yet, as between a push's two writes: a claim of it is given back at
// once (not left to a lease's expiry) and it is built once written; a node's recovery at start
// passes over such a deployment; and the reconciler drops one whose record never comes.
func TestDeploymentQueuedBeforeItsRecordIsWritten(t *testing.T) {
	stores := startCluster(t)
	ctx := context.Background()
	p := addProject(t, stores[0])
	const sha = "3333333333333333333333333333333333333333"
	id := addUnwritten(t, stores[0], p, slot{SHA: sha}, false)
	if err := stores[0].publishToken(ctx, p.ID, ""); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if d, err := claimOf(stores[1], p); err != nil || d != nil {
			t.Fatalf("claimed %+v, %v before its record was written", d, err)
		}
	}
	r, _, err := stores[2].record(ctx, p.ID)
	if _, queued := r.Queued[id]; err != nil || !queued || len(r.Running) != 0 {
		t.Fatalf("record after the claims: queued %v, running %v, %v; want it queued again", r.Queued, r.Running, err)
	}
	if _, err := stores[2].RecoverInterrupted(); err != nil {
		t.Fatalf("recovery at start with a deployment not written: %v", err)
	}
	d := &store.Deployment{ID: id, ProjectID: p.ID, CommitSHA: sha, Branch: "main"}
	if err := stores[0].write(ctx, &newDeployment{d: d, written: r}, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	if got := claimWithin(t, stores[1], p, 5*time.Second); got.ID != id {
		t.Fatalf("claimed %d, want %d", got.ID, id)
	}
	if err := stores[1].Fail(id, store.StatusFailed, "done with"); err != nil {
		t.Fatal(err)
	}

	// A claim given back when a newer push of its alias came meanwhile is dropped: latest wins.
	claimed := addUnwritten(t, stores[0], p, slot{SHA: sha, Node: stores[0].node.name}, true)
	r, _, err = stores[0].record(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	epoch := r.Running[claimed].Epoch
	newer := push(t, stores[1], p, "", "4444444444444444444444444444444444444444")
	if err := stores[0].unclaim(ctx, p.ID, claimed, epoch); err != nil {
		t.Fatal(err)
	}
	if r, _, _ := stores[2].record(ctx, p.ID); r.Queued[claimed] != (slot{}) || r.Running[claimed] != (slot{}) || r.Queued[newer] == (slot{}) {
		t.Fatalf("after giving back a claim older than #%d: queued %v, running %v", newer, r.Queued, r.Running)
	}
	if got := claimWithin(t, stores[1], p, 5*time.Second); got.ID != newer {
		t.Fatalf("claimed %d, want the newer %d", got.ID, newer)
	}
	if err := stores[1].Fail(newer, store.StatusFailed, "done with"); err != nil {
		t.Fatal(err)
	}

	// One that is never written is dropped once it has been missing longer than a push waits.
	never := addUnwritten(t, stores[0], p, slot{SHA: sha}, false)
	if err := stores[2].reconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if r, _, _ := stores[2].record(ctx, p.ID); r.Queued[never] != (slot{SHA: sha}) {
		t.Fatalf("dropped at once: %v", r.Queued)
	}
	stores[2].unwritten[never] = time.Now().Add(-3 * opTimeout)
	if err := stores[2].reconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if r, _, _ := stores[2].record(ctx, p.ID); len(r.Queued) != 0 {
		t.Fatalf("still queued after it was missing for %s: %v", 3*opTimeout, r.Queued)
	}
}

// addUnwritten puts a new deployment id of p in its project's record through s, queued or, with
// running, running under a new epoch, without writing the deployment's own record, as a push's
// node does just before that second write; it returns the id.
func addUnwritten(t *testing.T, s *Store, p *store.Project, sl slot, running bool) int64 {
	t.Helper()
	ctx := context.Background()
	id, err := s.nextID(ctx, "deployment")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.changeRecord(ctx, p.ID, func(r *projectRecord) error {
		r.LastID = id
		if !running {
			r.Queued[id] = sl
			return nil
		}
		r.Epoch++
		sl.Epoch = r.Epoch
		r.Running[id] = sl
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestDroppingALostLeaseWaitsForNoCallback loses a lease whose lost callback waits for a lock that
// the code dropping the lease holds, as a build worker giving back a claim does: the drop returns.
func TestDroppingALostLeaseWaitsForNoCallback(t *testing.T) {
	stores := startCluster(t)
	// released stands for the lock the dropper holds: the callback waits for it until the test ends.
	called, released := make(chan struct{}), make(chan struct{})
	defer close(released)
	l, err := stores[0].acquire(context.Background(), "test.lost-callback", func() {
		close(called)
		<-released
	}, nil)
	if err != nil || l == nil {
		t.Fatalf("acquire: %v %v", l, err)
	}
	if err := stores[1].leases.Delete(context.Background(), "test.lost-callback"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-called:
	case <-time.After(3 * testLeaseTTL):
		t.Fatal("the lease's loss was not seen")
	}
	dropped := make(chan struct{})
	go func() { stores[0].drop(l); close(dropped) }()
	select {
	case <-dropped:
	case <-time.After(3 * testLeaseTTL):
		t.Fatal("dropping the lease waits for its lost callback, which waits for a lock the dropper holds")
	}
}
