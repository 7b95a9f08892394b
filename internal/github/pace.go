package github

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/miaobu/miaobu/internal/clock"
)

// pacer spaces the requests that create or change content (POST, PATCH, PUT, DELETE) of one token,
// in the order they ask, by interval: GitHub's secondary rate limit allows about 80 of them a
// minute, which a backlog of reports drained at once would exceed. The first one after a quiet
// period goes at once.
type pacer struct {
	interval time.Duration
	clock    clock.Clock

	mu sync.Mutex
	// next is the earliest time the next request may go.
	next time.Time
}

// wait returns once the request may go, or with ctx's error when ctx ends first.
func (p *pacer) wait(ctx context.Context) error {
	p.mu.Lock()
	now := p.clock.Now()
	at := p.next
	if at.Before(now) {
		at = now
	}
	p.next = at.Add(p.interval)
	p.mu.Unlock()
	if !at.After(now) {
		return nil
	}
	select {
	case <-p.clock.At(at):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pacedTransport sends the requests that create content through the pacer, and the others at once.
type pacedTransport struct {
	pacer *pacer
	next  http.RoundTripper
}

// RoundTrip waits for its turn when req creates or changes content, then sends it.
func (t *pacedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.Method {
	case http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete:
		if err := t.pacer.wait(req.Context()); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
	}
	return t.next.RoundTrip(req)
}
