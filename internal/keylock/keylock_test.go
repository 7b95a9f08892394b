package keylock

import (
	"sync"
	"testing"
)

func TestLockSerialisesOneKeyOnly(t *testing.T) {
	var l Locks
	unlock := l.Lock(1)
	other := make(chan struct{})
	go func() { l.Lock(2)(); close(other) }()
	<-other // another key is not held up

	var mu sync.Mutex
	holding := 0
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			defer l.Lock(1)()
			mu.Lock()
			holding++
			if holding != 1 {
				t.Errorf("%d holders of one key at once", holding)
			}
			mu.Unlock()
			mu.Lock()
			holding--
			mu.Unlock()
		})
	}
	unlock()
	wg.Wait()
}
