package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/event"
	"github.com/miaobu/miaobu/internal/outbox"
	"github.com/miaobu/miaobu/internal/store"
)

// reportAll makes every node report each change of status of p's deployments, keyed by deployment,
// and notify a target of p of every event, keyed by target; it returns the target.
func reportAll(t *testing.T, stores []*Store, p *store.Project) *store.Notification {
	t.Helper()
	target := &store.Notification{Type: "webhook", Target: "http://127.0.0.1:1/hook", ProjectID: p.ID, Events: event.All}
	if err := stores[0].CreateNotification(target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stores[0].DeleteNotification(target.ID) })
	for _, s := range stores {
		s.OnTransition(func(q store.Project, d store.Deployment) []outbox.Message {
			if q.ID != p.ID {
				return nil
			}
			return []outbox.Message{{Kind: "test", Key: fmt.Sprintf("deployment:%d", d.ID),
				Payload: []byte(fmt.Sprintf(`{"status":%q}`, d.Status))}}
		})
		s.OnNotify(func(n store.Notification, e store.Event) outbox.Message {
			return outbox.Message{Kind: "test", Key: fmt.Sprintf("notify:%d", n.ID),
				Payload: []byte(fmt.Sprintf(`{"status":%q}`, e.Name))}
		})
		t.Cleanup(func() {
			s.reporter.Store(nil)
			s.notifier.Store(nil)
			s.dieAfterChange.Store(false)
		})
	}
	return target
}

// outboxOf returns what the outbox holds of key, oldest first, as it reads through s.
func outboxOf(t *testing.T, s *Store, key string) []string {
	t.Helper()
	ctx, cancel := opContext()
	defer cancel()
	keys, err := s.outbox.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var messages []outbox.Message
	for k := range keys.Keys() {
		var m outbox.Message
		if _, err := getJSON(ctx, s.outbox, k, &m); err == nil && m.Key == key {
			messages = append(messages, m)
		}
	}
	slices.SortFunc(messages, func(a, b outbox.Message) int { return cmp.Compare(a.ID, b.ID) })
	var statuses []string
	for _, m := range messages {
		statuses = append(statuses, statusOf(t, m))
	}
	return statuses
}

// statusOf returns the status a test message tells.
func statusOf(t *testing.T, m outbox.Message) string {
	t.Helper()
	var body struct{ Status string }
	if err := json.Unmarshal(m.Payload, &body); err != nil {
		t.Fatal(err)
	}
	return body.Status
}

// sendAll sends, as the outbox worker does, every message of keys until want of them were sent,
// within 15 s, and returns what each key was sent, in the order sent.
func sendAll(t *testing.T, stores []*Store, keys []string, want int) map[string][]string {
	t.Helper()
	sent, count := map[string][]string{}, 0
	for deadline := time.Now().Add(15 * time.Second); count < want; {
		if time.Now().After(deadline) {
			t.Fatalf("sent %v, want %d messages", sent, want)
		}
		for _, s := range stores {
			due, _, err := s.DueMessages(time.Now(), 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range due {
				if !slices.Contains(keys, m.Key) {
					continue
				}
				sent[m.Key] = append(sent[m.Key], statusOf(t, m))
				count++
				if err := s.DeleteMessage(m.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return sent
}

// TestReportsOfAChangeSurviveTheNodeDyingRightAfterIt: a node that makes two changes of a
// deployment's status and dies before copying their messages to the outbox leaves them on the
// deployment's record; the reconciler on another node copies them once (a second pass adds none),
// and the outbox sends them in the order of the changes.
func TestReportsOfAChangeSurviveTheNodeDyingRightAfterIt(t *testing.T) {
	stores := startCluster(t)
	p := addProject(t, stores[0])
	target := reportAll(t, stores, p)
	id := push(t, stores[0], p, "", commit("a"))
	deploymentKey, notifyKey := fmt.Sprintf("deployment:%d", id), fmt.Sprintf("notify:%d", target.ID)
	stores[1].dieAfterChange.Store(true)
	d := claimWithin(t, stores[1], p, 15*time.Second)
	if d.ID != id {
		t.Fatalf("claimed %d, want %d", d.ID, id)
	}
	if err := stores[1].SetStatus(id, store.StatusBuilding); err != nil {
		t.Fatal(err)
	}
	if got := outboxOf(t, stores[0], deploymentKey); strings.Join(got, ",") != "queued" {
		t.Fatalf("outbox of the deployment before reconciling: %v, want only queued", got)
	}
	rec, _, err := stores[0].deploymentRecord(context.Background(), id)
	if err != nil || len(rec.Unsent) != 3 {
		t.Fatalf("unsent on the record: %+v, %v; want cloning, its notification and building", rec, err)
	}
	for pass := 1; pass <= 2; pass++ {
		if err := stores[2].reconcileOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := outboxOf(t, stores[0], deploymentKey); strings.Join(got, ",") != "queued,cloning,building" {
			t.Fatalf("outbox of the deployment after reconciler pass %d: %v, want queued, cloning, building", pass, got)
		}
		if got := outboxOf(t, stores[0], notifyKey); strings.Join(got, ",") != event.DeployStarted {
			t.Fatalf("outbox of the target after reconciler pass %d: %v, want %s", pass, got, event.DeployStarted)
		}
	}
	if rec, _, err := stores[0].deploymentRecord(context.Background(), id); err != nil || len(rec.Unsent) != 0 {
		t.Fatalf("unsent on the record after reconciling: %+v, %v; want none", rec, err)
	}
	sent := sendAll(t, stores, []string{deploymentKey, notifyKey}, 4)
	if got := strings.Join(sent[deploymentKey], ","); got != "queued,cloning,building" {
		t.Fatalf("reports in the order sent: %s, want queued, cloning, building", got)
	}
	// The node comes back: its next change carries on in order.
	stores[1].dieAfterChange.Store(false)
	if live, err := stores[1].Complete(id); err != nil || !live {
		t.Fatalf("Complete = %v, %v", live, err)
	}
	sent = sendAll(t, stores, []string{deploymentKey, notifyKey}, 2)
	if got := strings.Join(sent[deploymentKey], ","); got != "deployed" {
		t.Fatalf("reports sent after the build: %s, want deployed", got)
	}
}

// TestMessagesCopiedTwiceAreStoredOnce: copying a numbered batch to the outbox again, from any
// node, even after one of its messages was sent, adds nothing.
func TestMessagesCopiedTwiceAreStoredOnce(t *testing.T) {
	stores := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	key := fmt.Sprintf("copied-twice:%d", time.Now().UnixNano())
	batch := []outbox.Message{{Kind: "test", Key: key, Payload: []byte(`{"status":"first"}`)},
		{Kind: "test", Key: key, Payload: []byte(`{"status":"second"}`)}}
	if err := stores[0].number(ctx, batch); err != nil {
		t.Fatal(err)
	}
	for _, s := range stores {
		if err := s.copyToOutbox(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if got := outboxOf(t, stores[0], key); strings.Join(got, ",") != "first,second" {
		t.Fatalf("outbox after copying the batch three times: %v, want first, second", got)
	}
	sent := sendAll(t, stores, []string{key}, 1)
	if got := strings.Join(sent[key], ","); got != "first" {
		t.Fatalf("sent %s, want first", got)
	}
	if err := stores[2].copyToOutbox(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if got := outboxOf(t, stores[0], key); strings.Join(got, ",") != "second" {
		t.Fatalf("outbox after copying the batch again once first was sent: %v, want second", got)
	}
}

// TestRemovedPreviewIsNotifiedWhenItsNodeDiesRightAfter: the notification that a preview was taken
// down is written on the project's record by the removal, and the reconciler copies it once when
// the node that removed it dies before copying it.
func TestRemovedPreviewIsNotifiedWhenItsNodeDiesRightAfter(t *testing.T) {
	stores := startCluster(t)
	p := addProject(t, stores[0])
	target := reportAll(t, stores, p)
	notifyKey := fmt.Sprintf("notify:%d", target.ID)
	res := pushBranch(t, stores[0], p, "feature", "feature", "", "b")
	completeOn(t, stores[1], p, res.DeploymentID)
	sendAll(t, stores, []string{notifyKey}, 2) // started, ready
	stores[0].dieAfterChange.Store(true)
	if _, _, err := stores[0].RemovePreview(p.ID, "feature", "closed"); err != nil {
		t.Fatal(err)
	}
	if got := outboxOf(t, stores[1], notifyKey); len(got) != 0 {
		t.Fatalf("outbox of the target before reconciling: %v, want nothing", got)
	}
	for pass := 1; pass <= 2; pass++ {
		if err := stores[2].reconcileOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := outboxOf(t, stores[1], notifyKey); strings.Join(got, ",") != event.PreviewRemoved {
			t.Fatalf("outbox of the target after reconciler pass %d: %v, want %s", pass, got, event.PreviewRemoved)
		}
	}
	if r, _, err := stores[1].record(context.Background(), p.ID); err != nil || len(r.Unsent) != 0 {
		t.Fatalf("unsent on the project's record after reconciling: %v, %v; want none", r.Unsent, err)
	}
}
