package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/miaobu/miaobu/internal/outbox"
)

// outboxPayloads returns the payloads of every message in the outbox, in the order they were enqueued.
func outboxPayloads(t *testing.T, s *Store) []string {
	t.Helper()
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return iterate(bucket(tx, outboxBucket), nil, func(_ []byte, m outbox.Message) (bool, error) {
			out = append(out, string(m.Payload))
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTransitionsAreReported follows a deployment through its life, and one it supersedes, and
// checks that each change of status enqueued its report with the state after the change.
func TestTransitionsAreReported(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	s.OnTransition(func(p Project, d Deployment) []outbox.Message {
		payload := fmt.Sprintf(`{"deployment":%d,"status":%q,"live":%v}`, d.ID, d.Status, p.ActiveDeploymentID == d.ID)
		return []outbox.Message{{Kind: "test", Key: fmt.Sprint("d", d.ID), Payload: json.RawMessage(payload)}}
	})
	first := push(t, s, p, "a").DeploymentID
	second := push(t, s, p, "b").DeploymentID
	d, err := s.ClaimNext(func(int64) bool { return false })
	if err != nil || d.ID != second {
		t.Fatalf("claimed %+v, %v", d, err)
	}
	if err := s.SetStatus(second, StatusBuilding); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateRunning(second, func(d *Deployment) { d.CommitMessage = "not a change of status" }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Complete(second); err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf(`{"deployment":%d,"status":"queued","live":false}`, first),
		fmt.Sprintf(`{"deployment":%d,"status":"cancelled","live":false}`, first),
		fmt.Sprintf(`{"deployment":%d,"status":"queued","live":false}`, second),
		fmt.Sprintf(`{"deployment":%d,"status":"cloning","live":false}`, second),
		fmt.Sprintf(`{"deployment":%d,"status":"building","live":false}`, second),
		fmt.Sprintf(`{"deployment":%d,"status":"deployed","live":true}`, second),
	}
	if got := outboxPayloads(t, s); !slices.Equal(got, want) {
		t.Errorf("reports\n%q\nwant\n%q", got, want)
	}
}

// TestTransitionReportCommitsWithTheChange checks that a report the store cannot enqueue undoes
// the change it reports: the two are one transaction.
func TestTransitionReportCommitsWithTheChange(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	id := push(t, s, p, "a").DeploymentID
	s.OnTransition(func(Project, Deployment) []outbox.Message {
		return []outbox.Message{{Kind: "test", Key: "k", Payload: json.RawMessage(`not JSON`)}}
	})
	if err := s.Fail(id, StatusFailed, "boom"); err == nil {
		t.Fatal("a change whose report could not be stored was committed")
	}
	if d, err := s.Deployment(id); err != nil || d.Status != StatusQueued {
		t.Errorf("deployment after the failed change: %+v, %v; want still queued", d, err)
	}
}

// TestSkipIsAReportedCancellation: a deployment its build skipped for a marker ends cancelled,
// marked Skipped in the report of that change, and releases its commit like any cancellation.
func TestSkipIsAReportedCancellation(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	id := pushTo(t, s, p, "pr-2", 2, "a").DeploymentID
	s.OnTransition(func(p Project, d Deployment) []outbox.Message {
		payload := fmt.Sprintf(`{"status":%q,"skipped":%t,"message":%q}`, d.Status, d.Skipped, d.ErrorMessage)
		return []outbox.Message{{Kind: "test", Key: "k", Payload: json.RawMessage(payload)}}
	})
	const message = "Skipped: commit message contains [ci skip]"
	if err := s.Skip(id, message); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Deployment(id); err != nil || d.Status != StatusCancelled || !d.Skipped || d.ErrorMessage != message || d.FinishedAt == nil {
		t.Errorf("deployment %+v, %v", d, err)
	}
	if got, want := outboxPayloads(t, s), []string{`{"status":"cancelled","skipped":true,"message":"` + message + `"}`}; !slices.Equal(got, want) {
		t.Errorf("reports %q, want %q", got, want)
	}
	if err := s.Skip(id, message); !errors.Is(err, ErrFinished) {
		t.Errorf("Skip of a finished deployment: %v", err)
	}
	if again := pushTo(t, s, p, "pr-2", 2, "a"); again.Duplicate {
		t.Errorf("the skipped deployment still holds its commit: %+v", again)
	}
}

func TestSetGitHubDeployment(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	id := push(t, s, p, "a").DeploymentID
	if err := s.Fail(id, StatusFailed, "boom"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetGitHubDeployment(id, 987); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Deployment(id); d.GitHubDeploymentID != 987 || d.Status != StatusFailed {
		t.Errorf("deployment %+v, want GitHub deployment 987 and still failed", d)
	}
	if err := s.SetGitHubDeployment(id+1, 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetGitHubDeployment of a missing deployment: %v", err)
	}
}

func TestRecordGitHubDeployment(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	queued := push(t, s, p, "a").DeploymentID
	ctx := context.Background()
	res, err := s.RecordGitHubDeployment(ctx, GitHubDeployment{ProjectID: p.ID, DeliveryID: "guid-1", CommitSHA: sha("b"), Branch: "main", GitHubID: 55})
	if err != nil {
		t.Fatal(err)
	}
	id := res.DeploymentID
	d, err := s.Deployment(id)
	if err != nil || res.Duplicate || res.Handled || d.Trigger != TriggerGitHubDeployment || d.GitHubDeploymentID != 55 ||
		d.CommitSHA != sha("b") || d.Status != StatusQueued {
		t.Fatalf("deployment %+v (%+v), %v; want a new queued github_deployment of commit b reported to 55", d, res, err)
	}
	deliveries, err := s.Deliveries(p.ID, 1)
	if err != nil || len(deliveries) != 1 || deliveries[0].Event != "deployment" || deliveries[0].DeploymentID != id || deliveries[0].Outcome != OutcomeSuccess {
		t.Errorf("deliveries %+v, %v", deliveries, err)
	}
	if _, err := s.RecordGitHubDeployment(ctx, GitHubDeployment{ProjectID: p.ID + 1, CommitSHA: sha("b"), GitHubID: 56}); !errors.Is(err, ErrNotFound) {
		t.Errorf("for a missing project: %v", err)
	}
	if err := s.HandleGitHubDeployment(p.ID, 57, queued); err != nil {
		t.Fatal(err)
	}
	for githubID, want := range map[int64]bool{55: true, 56: false, 57: true} {
		if handled, err := s.HandledGitHubDeployment(p.ID, githubID); err != nil || handled != want {
			t.Errorf("GitHub deployment %d handled %v, %v; want %v", githubID, handled, err, want)
		}
	}
	if _, err := s.DeleteProject(p.ID); err != nil {
		t.Fatal(err)
	}
	if handled, err := s.HandledGitHubDeployment(p.ID, 55); err != nil || handled {
		t.Errorf("GitHub deployment 55 of the deleted project handled %v, %v", handled, err)
	}
}

// TestRecordGitHubDeploymentDuplicates records GitHub deployments of a commit already queued, and
// one handled before: neither creates a deployment, as the duplicate rule of pushes asks.
func TestRecordGitHubDeploymentDuplicates(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	queued := push(t, s, p, "a").DeploymentID
	ctx := context.Background()
	for _, tc := range []struct {
		githubID int64
		want     GitHubDeploymentResult
		outcome  string
	}{
		{60, GitHubDeploymentResult{DeploymentID: queued, Duplicate: true}, OutcomeSkipped},
		{60, GitHubDeploymentResult{DeploymentID: queued, Handled: true}, OutcomeIgnored},
		{61, GitHubDeploymentResult{DeploymentID: queued, Duplicate: true}, OutcomeSkipped},
	} {
		res, err := s.RecordGitHubDeployment(ctx, GitHubDeployment{ProjectID: p.ID, DeliveryID: fmt.Sprint("guid-", tc.githubID),
			CommitSHA: sha("a"), Branch: "main", GitHubID: tc.githubID})
		if err != nil || res != tc.want {
			t.Errorf("GitHub deployment %d: %+v, %v; want %+v", tc.githubID, res, err, tc.want)
		}
		if deliveries, err := s.Deliveries(p.ID, 1); err != nil || deliveries[0].Outcome != tc.outcome {
			t.Errorf("GitHub deployment %d: delivery %+v, %v; want %s", tc.githubID, deliveries, err, tc.outcome)
		}
	}
	if all, err := s.Deployments(p.ID, 0); err != nil || len(all) != 1 {
		t.Errorf("deployments %+v, %v; want only the push's", all, err)
	}
}

// TestMigrateGitHubDeployments opens a store written at schema version 3: the GitHub deployments
// that deployments were built for count as handled, those of miaobu's own deployments do not.
func TestMigrateGitHubDeployments(t *testing.T) {
	all := migrations
	useMigrations(t, all[:2])
	s, dir := openTest(t)
	p := newProject(t, s, "site")
	if _, err := s.RecordGitHubDeployment(context.Background(), GitHubDeployment{ProjectID: p.ID, DeliveryID: "guid-1", CommitSHA: sha("a"),
		Branch: "main", GitHubID: 55}); err != nil {
		t.Fatal(err)
	}
	own := push(t, s, p, "b").DeploymentID
	if err := s.SetGitHubDeployment(own, 56); err != nil {
		t.Fatal(err)
	}
	// Version 3 had no record of handled GitHub deployments.
	if err := s.db.Update(func(tx *bolt.Tx) error { return bucket(tx, githubDeploymentsBucket).Delete(pairKey(p.ID, 55)) }); err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)

	migrations = all
	s = reopen(t, dir)
	for githubID, want := range map[int64]bool{55: true, 56: false} {
		if handled, err := s.HandledGitHubDeployment(p.ID, githubID); err != nil || handled != want {
			t.Errorf("GitHub deployment %d handled %v, %v after the upgrade; want %v", githubID, handled, err, want)
		}
	}
}
