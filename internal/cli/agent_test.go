package cli

import (
	"context"
	"io"
	"testing"
)

func TestAgentIsGivenTheCLIVersion(t *testing.T) {
	t.Parallel()
	f := newFactory(io.Discard, io.Discard)
	f.Build = buildInfo{Version: "1.2.3", Commit: "abc", Date: "2026-01-01"}
	var got *agentOptions
	cmd := newCmdAgent(f, func(_ context.Context, opts *agentOptions) error {
		got = opts
		return nil
	})
	cmd.SetArgs([]string{})
	if err := cmd.ExecuteContext(t.Context()); err != nil || got == nil {
		t.Fatalf("agent: %v", err)
	}
	if got.Version != "1.2.3 (commit abc, built 2026-01-01)" {
		t.Fatalf("the agent reports version %q", got.Version)
	}
}
