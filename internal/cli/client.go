package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/config"
)

// client talks to the agent's HTTP API.
type client struct {
	cfg  *config.Config
	http *http.Client
	// streaming has no overall timeout, for a followed build log.
	streaming *http.Client
}

// newClient returns a client for the agent named by cfg that sends its requests through hc.
func newClient(cfg *config.Config, hc *http.Client) *client {
	timed, streaming := *hc, *hc
	timed.Timeout, streaming.Timeout = 2*time.Minute, 0
	return &client{cfg: cfg, http: &timed, streaming: &streaming}
}

// apiError is an error answer from the agent.
type apiError struct {
	Status int
	Detail string
}

func (e *apiError) Error() string { return e.Detail }

// unreachableError says the agent did not answer, where the CLI looked and how to start one.
type unreachableError struct {
	url string
	err error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("agent not reachable at %s (%v): start it with `miaobu agent`, or point the CLI at a running one with --agent or MIAOBU_AGENT_URL", e.url, rootCause(e.err))
}

// rootCause strips the URL wrapping of a transport error, keeping what went wrong.
func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// token returns the admin token or an error that says how to provide one.
func (c *client) token() (string, error) {
	token, err := c.cfg.CLIToken()
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("no admin token for the agent at %s: looked in %s; start the agent with `miaobu agent` (it writes the token on first start), or for a remote agent run `miaobu login --agent URL`", c.cfg.AgentURL, c.cfg.AdminTokenFile())
		}
		return "", fmt.Errorf("no admin token: set MIAOBU_TOKEN or --token, or run this as the agent's user so it can read %s (%v)", c.cfg.AdminTokenFile(), rootCause(err))
	}
	return token, nil
}

// call sends one request to the agent through a client from connect, decoding the JSON answer into
// out when it is not nil.
func call(ctx context.Context, connect func() (*client, error), method, path string, in, out any) error {
	c, err := connect()
	if err != nil {
		return err
	}
	return c.do(ctx, method, path, in, out)
}

// do sends a request with a JSON body (when in is not nil) and decodes a JSON answer into out (when not nil).
func (c *client) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("reading the agent's answer to %s %s: %w", method, path, err)
	}
	return nil
}

// stream GETs path and returns the body of a 2xx answer as it arrives, however long it takes.
func (c *client) stream(ctx context.Context, path string) (io.ReadCloser, error) {
	resp, err := c.sendWith(ctx, c.streaming, "GET", path, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// send sends an authenticated request and returns a 2xx response, or the agent's error as an apiError.
func (c *client) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	return c.sendWith(ctx, c.http, method, path, in)
}

// sendWith is send through the given HTTP client.
func (c *client) sendWith(ctx context.Context, hc *http.Client, method, path string, in any) (*http.Response, error) {
	token, err := c.token()
	if err != nil {
		return nil, err
	}
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.AgentURL+path, body)
	if err != nil {
		return nil, fmt.Errorf("agent URL %q: %w", c.cfg.AgentURL, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &unreachableError{url: c.cfg.AgentURL, err: err}
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var e api.Error
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(data, &e) != nil || e.Detail == "" {
			e.Detail = fmt.Sprintf("the agent at %s answered %s", c.cfg.AgentURL, resp.Status)
		}
		if resp.StatusCode == http.StatusUnauthorized {
			e.Detail = fmt.Sprintf("the agent at %s refused the admin token: use the token in the agent's %s (MIAOBU_TOKEN or --token)", c.cfg.AgentURL, "admin-token file")
		}
		return nil, &apiError{Status: resp.StatusCode, Detail: e.Detail}
	}
	return resp, nil
}
