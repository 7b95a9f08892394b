package cluster

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/store"
)

// electionTimeout bounds what waits for a leader: a killed node's peers elect one in 5 to 9 s.
const electionTimeout = 20 * time.Second

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

// startCluster starts three in-process nodes on loopback and opens a Store on each.
func startCluster(t *testing.T, leaseTTL time.Duration) []*Store {
	t.Helper()
	addrs := freeAddrs(t, 3)
	nodes := make([]*Node, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), electionTimeout)
			defer cancel()
			nodes[i], errs[i] = StartNode(ctx, NodeOptions{Name: fmt.Sprintf("n%d", i+1), Listen: addrs[i], Peers: peersOf(addrs),
				Secret: "test-secret", Dir: t.TempDir()})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
		t.Cleanup(nodes[i].Close)
	}
	stores := make([]*Store, 3)
	for i, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), electionTimeout)
		s, err := Open(ctx, n, Options{LeaseTTL: leaseTTL})
		cancel()
		if err != nil {
			t.Fatalf("opening the store on node %d: %v", i+1, err)
		}
		stores[i] = s
	}
	return stores
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
	addrs := freeAddrs(t, 2)
	_, err := StartNode(context.Background(), NodeOptions{Name: "n1", Listen: addrs[0], Peers: peersOf(addrs), Secret: "x", Dir: t.TempDir()})
	if err == nil {
		t.Fatal("a node started with two peers")
	}
}

func TestConcurrentDeliveriesOfOneCommitMakeOneDeployment(t *testing.T) {
	stores := startCluster(t, DefaultLeaseTTL)
	p := addProject(t, stores[0])
	sha := "0123456789abcdef0123456789abcdef01234567"
	results := make([]store.PushResult, 100)
	errs := make([]error, 100)
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			results[i], errs[i] = stores[i%3].RecordPush(context.Background(), store.Push{ProjectID: p.ID,
				DeliveryID: fmt.Sprintf("d-%d", i), CommitSHA: sha, Branch: "main"})
		})
	}
	wg.Wait()
	created := map[int64]bool{}
	for i := range 100 {
		if errs[i] != nil {
			t.Fatalf("delivery %d: %v", i, errs[i])
		}
		if !results[i].Duplicate {
			created[results[i].DeploymentID] = true
		}
		if results[i].DeploymentID == 0 {
			t.Fatalf("delivery %d has no deployment: %+v", i, results[i])
		}
	}
	if len(created) != 1 {
		t.Fatalf("%d deliveries created a deployment, want 1: %v", len(created), created)
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
