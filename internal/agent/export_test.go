package agent

import (
	"context"
	"log/slog"
	"time"

	"github.com/miaobu/miaobu/internal/clock"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/domain"
	"github.com/miaobu/miaobu/internal/pipeline"
	"github.com/miaobu/miaobu/internal/store"
)

// Accessors to the agent's insides for the tests of package agent_test, which run agents through
// agenttest and so cannot be in package agent themselves.

// Domain returns the agent's domain service.
func (a *Agent) Domain() *domain.Service { return a.domain }

// Publish makes deployment d of p, whose files are in place, live, as the end of a build does.
func (a *Agent) Publish(ctx context.Context, p *store.Project, d *store.Deployment, res *pipeline.Result, blog *pipeline.Log) error {
	return a.publish(ctx, p, d, res, blog)
}

// WebhookGrowStep is the least room a webhook body's reservation grows by as its bytes arrive.
const WebhookGrowStep = growStep

// SetWebhookBodyReadTimeout sets how long a webhook body may take to arrive.
func (a *Agent) SetWebhookBodyReadTimeout(d time.Duration) { a.webhookBodies.readTimeout = d }

// SetWebhookBodyWait sets how long a webhook body may wait for room in the budget.
func (a *Agent) SetWebhookBodyWait(d time.Duration) { a.webhookBodies.wait = d }

// WebhookBodies returns the bytes of webhook bodies the budget holds and how many deliveries wait
// for room.
func (a *Agent) WebhookBodies() (inUse int64, waiting int) {
	b := a.webhookBodies
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, len(b.waiters)
}

// SetClock replaces the clock that drives the poller; call it before Serve.
func (a *Agent) SetClock(c clock.Clock) { a.clock = c }

// NewWithResolver is New with the resolver that looks up where custom domains point.
func NewWithResolver(cfg *config.Config, st *store.Store, log *slog.Logger, version string, resolver domain.Resolver) (*Agent, error) {
	return newAgent(cfg, st, log, version, resolver)
}
