package agent

import (
	"context"

	"github.com/miaobu/miaobu/internal/notify"
	"github.com/miaobu/miaobu/internal/outbox"
)

// startOutbox runs the agent's one outbox worker, with the sender of every kind of message
// registered, until ctx ends; the returned function waits for it to stop, so that it is done
// before the store closes.
func (a *Agent) startOutbox(ctx context.Context) (wait func()) {
	w := outbox.New(a.store, outbox.Options{Logger: a.log})
	w.Register(notify.Kind, a.notifier.Send)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	return func() { <-done }
}
