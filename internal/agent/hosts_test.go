package agent_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/agent"
	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/store"
)

// testHosts is the resolver of the agents startWithHosts runs: sites under localhost are at
// 127.0.0.1, and www.example.com points there too; nothing else resolves, and nothing reaches the
// network.
var testHosts = hostsResolver(func(host string) []string {
	if host == "www.example.com" || strings.HasSuffix(host, ".localhost") {
		return []string{"127.0.0.1"}
	}
	return nil
})

// hostsResolver is a resolver of the answers of a function.
type hostsResolver func(host string) []string

func (h hostsResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	if addrs := h(host); addrs != nil {
		return addrs, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// startWithHosts is agenttest.Start with testHosts as the resolver of custom domains.
func startWithHosts(t *testing.T, cfg *config.Config) *agenttest.Agent {
	t.Helper()
	return startWithHostsLogging(t, cfg, nil)
}

// startWithHostsLogging is startWithHosts logging to log (nil discards it).
func startWithHostsLogging(t *testing.T, cfg *config.Config, log *slog.Logger) *agenttest.Agent {
	t.Helper()
	return agenttest.StartWith(t, cfg, agenttest.Options{Log: log,
		New: func(cfg *config.Config, st *store.Store, log *slog.Logger, version string) (*agent.Agent, error) {
			return agent.NewWithResolver(cfg, st, log, version, testHosts)
		}})
}
