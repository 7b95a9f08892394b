package cli

import (
	"io"
	"net/http"

	"github.com/spf13/pflag"

	"github.com/miaobu/miaobu/internal/config"
)

// ioStreams are where commands write: data to Out and messages to ErrOut, each styled by its own
// terminal.
type ioStreams struct {
	Out, ErrOut   io.Writer
	Term, ErrTerm *terminal
}

// newIOStreams returns the streams of stdout and stderr.
func newIOStreams(stdout, stderr io.Writer) *ioStreams {
	return &ioStreams{Out: stdout, ErrOut: stderr, Term: newTerminal(stdout), ErrTerm: newTerminal(stderr)}
}

// factory hands commands what they take from the process, each built when first asked for: the
// streams, the configuration and the HTTP client that reaches the agent; tests replace its fields.
type factory struct {
	IO         *ioStreams
	Config     func() (*config.Config, error)
	HTTPClient func() (*http.Client, error)
	// Build is the CLI's version, which `miaobu version` shows and the agent reports.
	Build buildInfo
	// OpenBrowser shows a URL in the user's browser.
	OpenBrowser func(url string) error
	// flags are the running command's flags, inherited ones included, which Config reads.
	flags *pflag.FlagSet
}

// newFactory returns the factory of a process writing to stdout and stderr.
func newFactory(stdout, stderr io.Writer) *factory {
	f := &factory{IO: newIOStreams(stdout, stderr), Build: currentBuild(), OpenBrowser: openBrowser,
		HTTPClient: func() (*http.Client, error) { return &http.Client{}, nil }}
	var cfg *config.Config
	f.Config = func() (*config.Config, error) {
		if cfg == nil {
			loaded, err := config.Load(f.flags)
			if err != nil {
				return nil, err
			}
			cfg = loaded
		}
		return cfg, nil
	}
	return f
}

// Client returns a client of the agent that the configuration names.
func (f *factory) Client() (*client, error) {
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	hc, err := f.HTTPClient()
	if err != nil {
		return nil, err
	}
	return newClient(cfg, hc), nil
}
