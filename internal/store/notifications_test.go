package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/event"
	"github.com/miaobu/miaobu/internal/outbox"
)

// addNotification stores a target of project (0: all) subscribed to events.
func addNotification(t *testing.T, s *Store, project int64, events ...string) *Notification {
	t.Helper()
	n := &Notification{Type: "webhook", Target: "https://example.com/hook", ProjectID: project, Events: events}
	if err := s.CreateNotification(n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNotificationTargets(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "blog")
	if err := s.CreateNotification(&Notification{Type: "slack", Target: "https://x", ProjectID: 99, Events: event.Defaults}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a target of a missing project: %v, want ErrNotFound", err)
	}
	global := addNotification(t, s, 0, event.Defaults...)
	own := addNotification(t, s, p.ID, event.DeployStarted)
	if own.ID <= global.ID || own.CreatedAt.IsZero() {
		t.Fatalf("ids %d then %d, created %v", global.ID, own.ID, own.CreatedAt)
	}
	if err := s.DisableNotification(global.ID, "the receiver answered 410"); err != nil {
		t.Fatal(err)
	}
	if err := s.DisableNotification(global.ID, "later reason"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Notification(global.ID); err != nil || got.DisabledReason != "the receiver answered 410" {
		t.Fatalf("disabled target %+v, %v: want its first reason", got, err)
	}
	if _, err := s.DeleteProject(p.ID); err != nil {
		t.Fatal(err)
	}
	all, err := s.Notifications()
	if err != nil || len(all) != 1 || all[0].ID != global.ID {
		t.Fatalf("after deleting the project: %v, %v; want only the target of all projects", all, err)
	}
	if err := s.DeleteNotification(global.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteNotification(global.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting twice: %v, want ErrNotFound", err)
	}
	if _, err := s.Notification(global.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a deleted target: %v", err)
	}
}

// told is what a test Notifier put in a message: which target heard which event of which deployment.
type told struct {
	Target     int64  `json:"target"`
	Event      string `json:"event"`
	Deployment int64  `json:"deployment"`
	Status     Status `json:"status"`
}

// toldSoFar returns what the outbox holds, in the order it was enqueued, and empties it.
func toldSoFar(t *testing.T, s *Store) []told {
	t.Helper()
	var msgs []outbox.Message
	for {
		due, _, err := s.DueMessages(time.Now().Add(time.Hour), 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) == 0 {
			break
		}
		for _, m := range due {
			msgs = append(msgs, m)
			if err := s.DeleteMessage(m.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	slices.SortFunc(msgs, func(a, b outbox.Message) int { return int(a.ID - b.ID) })
	out := make([]told, len(msgs))
	for i, m := range msgs {
		if err := json.Unmarshal(m.Payload, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// claimAndEnd claims project p's next deployment and ends it with status.
func claimAndEnd(t *testing.T, s *Store, status Status) int64 {
	t.Helper()
	d, err := s.ClaimNext(func(int64) bool { return false })
	if err != nil || d == nil {
		t.Fatalf("claiming: %v, %v", d, err)
	}
	if status == StatusDeployed {
		_, err = s.Complete(d.ID)
	} else {
		err = s.Fail(d.ID, status, "boom")
	}
	if err != nil {
		t.Fatal(err)
	}
	return d.ID
}

func TestDeploymentEventsReachTheirSubscribers(t *testing.T) {
	s, _ := openTest(t)
	blog, docs := newProject(t, s, "blog"), newProject(t, s, "docs")
	all := addNotification(t, s, 0, event.Defaults...)
	started := addNotification(t, s, blog.ID, event.DeployStarted, event.DeploySucceeded)
	disabled := addNotification(t, s, 0, event.All...)
	if err := s.DisableNotification(disabled.ID, "gone"); err != nil {
		t.Fatal(err)
	}
	addNotification(t, s, docs.ID, event.All...) // hears nothing of blog
	s.OnNotify(func(n Notification, e Event) outbox.Message {
		if e.Project.ID != e.Deployment.ProjectID || e.At.IsZero() {
			t.Errorf("event %+v: the project and deployment do not belong together, or no time", e)
		}
		payload, _ := json.Marshal(told{n.ID, e.Name, e.Deployment.ID, e.Deployment.Status})
		return outbox.Message{Kind: "test", Key: fmt.Sprint("notify:", n.ID), Payload: payload}
	})

	push(t, s, blog, "a")
	failed := claimAndEnd(t, s, StatusFailed)
	push(t, s, blog, "b")
	push(t, s, blog, "c") // supersedes b: a cancellation tells nothing
	recovered := claimAndEnd(t, s, StatusDeployed)
	push(t, s, blog, "d")
	succeeded := claimAndEnd(t, s, StatusDeployed)

	want := []told{
		{started.ID, event.DeployStarted, failed, StatusCloning},
		{all.ID, event.DeployFailed, failed, StatusFailed},
		{started.ID, event.DeployStarted, recovered, StatusCloning},
		{started.ID, event.DeploySucceeded, recovered, StatusDeployed},
		{all.ID, event.DeployRecovered, recovered, StatusDeployed},
		{started.ID, event.DeployStarted, succeeded, StatusCloning},
		{started.ID, event.DeploySucceeded, succeeded, StatusDeployed},
	}
	if got := toldSoFar(t, s); !slices.Equal(got, want) {
		t.Fatalf("told\n%+v\nwant\n%+v", got, want)
	}
}

// TestPreviewEvents: a preview that goes live is ready, not a production success, a failed preview
// does not make production's next success a recovery, and a removed preview is told removed.
func TestPreviewEvents(t *testing.T) {
	s, _ := openTest(t)
	blog := newProject(t, s, "blog")
	all := addNotification(t, s, 0, event.All...)
	s.OnNotify(func(n Notification, e Event) outbox.Message {
		payload, _ := json.Marshal(told{n.ID, e.Name, e.Deployment.ID, e.Deployment.Status})
		return outbox.Message{Kind: "test", Key: fmt.Sprint("notify:", n.ID), Payload: payload}
	})
	pushTo(t, s, blog, "pr-3", 3, "a")
	failed := claimAndEnd(t, s, StatusFailed)
	pushTo(t, s, blog, "pr-3", 3, "b")
	ready := claimAndEnd(t, s, StatusDeployed)
	push(t, s, blog, "c")
	production := claimAndEnd(t, s, StatusDeployed)
	if _, _, err := s.RemovePreview(blog.ID, "pr-3", "pull request closed"); err != nil {
		t.Fatal(err)
	}
	want := []told{
		{all.ID, event.DeployStarted, failed, StatusCloning},
		{all.ID, event.DeployFailed, failed, StatusFailed},
		{all.ID, event.DeployStarted, ready, StatusCloning},
		{all.ID, event.PreviewReady, ready, StatusDeployed},
		{all.ID, event.DeployStarted, production, StatusCloning},
		{all.ID, event.DeploySucceeded, production, StatusDeployed},
		{all.ID, event.PreviewRemoved, ready, StatusDeployed},
	}
	if got := toldSoFar(t, s); !slices.Equal(got, want) {
		t.Fatalf("told\n%+v\nwant\n%+v", got, want)
	}
}
