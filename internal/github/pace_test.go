package github_test

import (
	"sync"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/clock/clocktest"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/github/githubtest"
)

// TestWritesArePaced sends a burst of commit statuses through a client paced at one write a second:
// the first goes at once, each other one a second after the one before, reads are not held back,
// and the first write after a quiet second goes at once again.
func TestWritesArePaced(t *testing.T) {
	gh := githubtest.New(t, "paced-token")
	gh.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main"})
	clk := clocktest.New(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	c, err := github.New(github.Options{APIURL: gh.URL, Token: "paced-token", WriteInterval: time.Second, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	send := func() {
		if err := c.CreateStatus(ctx, "acme", "site", reportSHA, github.CommitStatus{State: "pending", Description: "Queued", Context: "miaobu/site"}); err != nil {
			t.Error(err)
		}
	}
	var burst sync.WaitGroup
	for range 3 {
		burst.Go(send)
	}
	for range 2 {
		select {
		case <-clk.Asleep():
		case <-time.After(5 * time.Second):
			t.Fatal("no write of the burst waits for its turn")
		}
	}
	if _, err := c.Repository(ctx, "acme", "site"); err != nil {
		t.Fatalf("a read while writes wait: %v", err)
	}
	// The others wait on the clock: each second lets exactly one more through.
	for want := 1; want <= 3; want++ {
		waitStatuses(t, gh, want)
		if got := len(gh.Statuses("acme/site")); got != want {
			t.Fatalf("%d statuses after %d paced seconds, want %d", got, want-1, want)
		}
		clk.Advance(time.Second)
	}
	burst.Wait()

	// The clock has moved a second past the last write's turn: the next write does not wait.
	send()
	waitStatuses(t, gh, 4)
}

// waitStatuses waits until the fake has n commit statuses.
func waitStatuses(t *testing.T, gh *githubtest.Server, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); len(gh.Statuses("acme/site")) < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d commit statuses", n)
		}
	}
}
