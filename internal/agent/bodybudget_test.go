package agent

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestByteBudgetAdmitsSmallestFirst checks the order in which waiters get room: the smallest that
// fits first, so that a small request is not held behind a large one that does not fit yet.
func TestByteBudgetAdmitsSmallestFirst(t *testing.T) {
	b := newByteBudget(100)
	ctx := context.Background()
	if err := b.acquire(ctx, 100); err != nil {
		t.Fatal(err)
	}
	admitted := make(chan string, 3)
	queued := 0
	waitFor := func(name string, n int64) {
		go func() {
			if err := b.acquire(ctx, n); err != nil {
				t.Error(err)
			}
			admitted <- name
		}()
		queued++
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			b.mu.Lock()
			waiting := len(b.waiters)
			b.mu.Unlock()
			if waiting == queued {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never queued", name)
			}
		}
	}
	next := func() string {
		select {
		case name := <-admitted:
			return name
		case <-time.After(5 * time.Second):
			t.Fatalf("nobody admitted, %d of 100 bytes in use", b.inUse())
			return ""
		}
	}
	waitFor("big", 80)
	waitFor("small", 30)
	waitFor("other small", 30)
	b.release(40) // 40 free: one small fits, the oldest; the big one does not
	if got := next(); got != "small" {
		t.Fatalf("admitted %s first, want small", got)
	}
	b.release(30) // the small one's 30 back: the other small fits
	if got := next(); got != "other small" {
		t.Fatalf("admitted %s second, want other small", got)
	}
	select {
	case name := <-admitted:
		t.Fatalf("%s admitted with %d of 100 bytes in use", name, b.inUse())
	case <-time.After(20 * time.Millisecond):
	}
	b.release(60 + 30) // the rest of the first 100 and the other small one's 30: 0 in use
	if got := next(); got != "big" || b.inUse() != 80 {
		t.Fatalf("admitted %s, %d in use", got, b.inUse())
	}

	// A waiter that gives up leaves no trace and takes nothing.
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := b.acquire(short, 30); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire past its deadline: %v", err)
	}
	b.mu.Lock()
	left := len(b.waiters)
	b.mu.Unlock()
	if left != 0 || b.inUse() != 80 {
		t.Fatalf("%d waiters and %d bytes in use after a timeout", left, b.inUse())
	}
}
