package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/httpstub"
)

// stubAgentURL is where a stubbed CLI looks for its agent.
const stubAgentURL = "http://agent.test"

// stubCLI is the command line with an agent answered by a stub registry.
type stubCLI struct {
	reg            *httpstub.Registry
	f              *factory
	stdout, stderr *bytes.Buffer
}

// newStubCLI returns a command line whose agent is a registry that the test fills; stubs never
// called fail the test.
func newStubCLI(t *testing.T) *stubCLI {
	t.Helper()
	s := &stubCLI{reg: &httpstub.Registry{}, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	s.f = newFactory(s.stdout, s.stderr)
	cfg := &config.Config{AgentURL: stubAgentURL, Token: "admin-token"}
	s.f.Config = func() (*config.Config, error) { return cfg, nil }
	s.f.HTTPClient = func() (*http.Client, error) { return s.reg.Client(), nil }
	t.Cleanup(func() { s.reg.Verify(t) })
	return s
}

// run runs the command line until ctx is done and returns its exit status.
func (s *stubCLI) run(ctx context.Context, args ...string) int {
	return execute(ctx, s.f, args)
}

// parse runs the command that newCmd builds on args with a runF that keeps its options, and returns
// them (nil when the command stopped before running) and the command's error.
func parse[T any](t *testing.T, newCmd func(*factory, func(context.Context, *T) error) *cobra.Command, args ...string) (*T, error) {
	t.Helper()
	var got *T
	cmd := newCmd(newFactory(io.Discard, io.Discard), func(_ context.Context, opts *T) error {
		got = opts
		return nil
	})
	cmd.SetArgs(append([]string{}, args...)) // never nil, which would make cobra read os.Args
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := cmd.ExecuteContext(t.Context())
	return got, err
}
