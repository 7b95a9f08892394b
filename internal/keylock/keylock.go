// Package keylock holds one mutex per key, for work that must not run twice at once for one
// project while other projects go on.
package keylock

import "sync"

// Locks is a mutex per key, made on first use; the zero value is ready to use.
type Locks struct {
	mu    sync.Mutex
	locks map[int64]*sync.Mutex
}

// Lock takes the mutex of key and returns the function that releases it.
func (l *Locks) Lock(key int64) (unlock func()) {
	l.mu.Lock()
	m, ok := l.locks[key]
	if !ok {
		if l.locks == nil {
			l.locks = map[int64]*sync.Mutex{}
		}
		m = &sync.Mutex{}
		l.locks[key] = m
	}
	l.mu.Unlock()
	m.Lock()
	return m.Unlock
}
