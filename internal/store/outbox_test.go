package store

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/miaobu/miaobu/internal/outbox"
)

// enqueueTest enqueues a message of kind "test" under key and returns its id.
func enqueueTest(t *testing.T, s *Store, key string) int64 {
	t.Helper()
	id, err := s.EnqueueMessage(outbox.Message{Kind: "test", Key: key, Payload: json.RawMessage(`{"key":"` + key + `"}`)})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// dueIDs returns the ids DueMessages gives at now with limit and busy, and its next time.
func dueIDs(t *testing.T, s *Store, now time.Time, limit int, busy func(string) bool) ([]int64, time.Time) {
	t.Helper()
	due, next, err := s.DueMessages(now, limit, busy)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, m := range due {
		ids = append(ids, m.ID)
	}
	return ids, next
}

// drainSignal reports whether a wake-up was pending, consuming it.
func drainSignal(s *Store) bool {
	select {
	case <-s.MessageEnqueued():
		return true
	default:
		return false
	}
}

func TestOutboxOrderPerKey(t *testing.T) {
	s, _ := openTest(t)
	now := time.Now()
	a1, b1, a2, c1 := enqueueTest(t, s, "a"), enqueueTest(t, s, "b"), enqueueTest(t, s, "a"), enqueueTest(t, s, "c")
	if !drainSignal(s) {
		t.Fatal("enqueueing did not wake the worker")
	}
	if ids, next := dueIDs(t, s, now, 0, nil); !slices.Equal(ids, []int64{a1, b1, c1}) || !next.IsZero() {
		t.Fatalf("due %v next %v, want the oldest of each key %v and no next", ids, next, []int64{a1, b1, c1})
	}
	if ids, _ := dueIDs(t, s, now, 2, func(key string) bool { return key == "a" }); !slices.Equal(ids, []int64{b1, c1}) {
		t.Fatalf("with a busy and a limit of 2: due %v, want %v", ids, []int64{b1, c1})
	}

	// A failed first message of a holds back a's second one until it is sent.
	retryAt := now.Add(time.Minute)
	if err := s.RetryMessage(a1, retryAt, "503 Service Unavailable"); err != nil {
		t.Fatal(err)
	}
	if ids, next := dueIDs(t, s, now, 0, nil); !slices.Equal(ids, []int64{b1, c1}) || !next.Equal(retryAt) {
		t.Fatalf("after a failure of a1: due %v next %v, want %v and %v", ids, next, []int64{b1, c1}, retryAt)
	}
	due, _, err := s.DueMessages(retryAt, 1, nil)
	if err != nil || len(due) != 1 || due[0].ID != a1 || due[0].Attempts != 1 || due[0].LastError != "503 Service Unavailable" ||
		string(due[0].Payload) != `{"key":"a"}` || due[0].CreatedAt.IsZero() {
		t.Fatalf("a1 when its retry is due: %+v (%v)", due, err)
	}
	for _, id := range []int64{a1, b1, b1} { // deleting twice is no error
		if err := s.DeleteMessage(id); err != nil {
			t.Fatal(err)
		}
	}
	if ids, _ := dueIDs(t, s, now, 0, nil); !slices.Equal(ids, []int64{a2, c1}) {
		t.Fatalf("after a1 and b1 were sent: due %v, want %v", ids, []int64{a2, c1})
	}
	if err := s.RetryMessage(b1, now, "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("retry of a deleted message: %v", err)
	}
}

func TestOutboxSurvivesReopen(t *testing.T) {
	s, dir := openTest(t)
	id := enqueueTest(t, s, "deployment:1")
	closeStore(t, s)
	s = reopen(t, dir)
	if ids, _ := dueIDs(t, s, time.Now(), 0, nil); !slices.Equal(ids, []int64{id}) {
		t.Fatalf("after reopening: due %v, want %v", ids, []int64{id})
	}
	if next := enqueueTest(t, s, "deployment:1"); next <= id {
		t.Fatalf("id %d after reopening is not above %d", next, id)
	}
}

func TestEnqueueInTransaction(t *testing.T) {
	s, _ := openTest(t)
	boom := errors.New("boom")
	err := s.db.Update(func(tx *bolt.Tx) error {
		m := outbox.Message{Kind: "test", Key: "k", Payload: json.RawMessage(`{}`)}
		if err := s.enqueue(tx, &m, time.Now()); err != nil {
			return err
		}
		return boom // the change the message belongs to fails
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if ids, _ := dueIDs(t, s, time.Now(), 0, nil); len(ids) != 0 || drainSignal(s) {
		t.Fatalf("a rolled-back enqueue left messages %v or woke the worker", ids)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, key := range []string{"k1", "k2"} {
			m := outbox.Message{Kind: "test", Key: key, Payload: json.RawMessage(`{}`)}
			if err := s.enqueue(tx, &m, time.Now()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ids, _ := dueIDs(t, s, time.Now(), 0, nil); len(ids) != 2 || !drainSignal(s) {
		t.Fatalf("a committed enqueue: messages %v (want 2), or no wake-up", ids)
	}
}

func TestEnqueueRefusesIncompleteMessages(t *testing.T) {
	s, _ := openTest(t)
	for _, m := range []outbox.Message{
		{Key: "k", Payload: json.RawMessage(`{}`)},
		{Kind: "test", Payload: json.RawMessage(`{}`)},
		{Kind: "test", Key: "k"},
		{Kind: "test", Key: "k", Payload: json.RawMessage(`{"unterminated`)},
	} {
		if _, err := s.EnqueueMessage(m); err == nil {
			t.Errorf("EnqueueMessage(%+v) accepted it", m)
		}
	}
	if ids, _ := dueIDs(t, s, time.Now(), 0, nil); len(ids) != 0 {
		t.Fatalf("refused messages were stored: %v", ids)
	}
}
