// Package httpstub is an http.RoundTripper for tests that answers registered requests with canned
// responses and fails the test on stubs that were never called.
package httpstub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// Matcher reports whether a stub answers req.
type Matcher func(req *http.Request) bool

// Responder makes the response to a matched request.
type Responder func(req *http.Request) (*http.Response, error)

// stub is one registered answer; it answers a single request.
type stub struct {
	name    string
	match   Matcher
	respond Responder
	called  bool
}

// Registry is a RoundTripper over registered stubs; each stub answers one request, the first
// unused one that matches it answering, and a request no stub matches fails.
type Registry struct {
	mu    sync.Mutex
	stubs []*stub
	// Requests are the requests the registry was sent, in order.
	Requests []*http.Request
}

// Register adds a stub that answers the next request m matches with r; name says what it is in
// Verify's failures.
func (r *Registry) Register(name string, m Matcher, resp Responder) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stubs = append(r.stubs, &stub{name: name, match: m, respond: resp})
}

// Client returns an HTTP client that sends its requests to the registry.
func (r *Registry) Client() *http.Client { return &http.Client{Transport: r} }

// RoundTrip answers req with the first unused stub that matches it; matchers, responders and
// Requests see a copy of req whose body can be read again through GetBody.
func (r *Registry) RoundTrip(sent *http.Request) (*http.Response, error) {
	req, err := rereadable(sent)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	var found *stub
	for _, s := range r.stubs {
		if !s.called && s.match(req) {
			found = s
			s.called = true
			break
		}
	}
	r.Requests = append(r.Requests, req)
	r.mu.Unlock()
	if found == nil {
		return nil, fmt.Errorf("httpstub: no stub for %s %s", req.Method, req.URL)
	}
	resp, err := found.respond(req)
	if resp != nil {
		resp.Request = req
	}
	return resp, err
}

// rereadable copies req with its body read into memory, closing the original body as a transport must.
func rereadable(req *http.Request) (*http.Request, error) {
	var data []byte
	if req.Body != nil {
		var err error
		data, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	c := req.Clone(req.Context())
	c.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	c.Body, _ = c.GetBody()
	return c, nil
}

// TB is the part of testing.TB that Verify uses.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
}

// Verify fails the test for every stub that no request called.
func (r *Registry) Verify(t TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.stubs {
		if !s.called {
			t.Errorf("httpstub: stub %q was never called", s.name)
		}
	}
}

// REST matches requests with method whose URL path, and query when it has one, is target
// ("/api/v1/deployments/7/logs?follow=1").
func REST(method, target string) Matcher {
	path, query, _ := strings.Cut(target, "?")
	return func(req *http.Request) bool {
		return req.Method == method && req.URL.Path == path && req.URL.RawQuery == query
	}
}

// StringResponse answers 200 with body.
func StringResponse(body string) Responder {
	return StatusStringResponse(http.StatusOK, body)
}

// StatusStringResponse answers status with body.
func StatusStringResponse(status int, body string) Responder {
	return func(req *http.Request) (*http.Response, error) {
		return response(status, io.NopCloser(strings.NewReader(body))), nil
	}
}

// JSONResponse answers 200 with v encoded as JSON.
func JSONResponse(v any) Responder {
	return StatusJSONResponse(http.StatusOK, v)
}

// StatusJSONResponse answers status with v encoded as JSON.
func StatusJSONResponse(status int, v any) Responder {
	return func(req *http.Request) (*http.Response, error) {
		data, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		resp := response(status, io.NopCloser(bytes.NewReader(data)))
		resp.Header.Set("Content-Type", "application/json")
		return resp, nil
	}
}

// HangingResponse answers 200 with a body that yields first and then nothing more until the
// request is cancelled, as a followed log of a build that never ends.
func HangingResponse(first string) Responder {
	return func(req *http.Request) (*http.Response, error) {
		body := &hangingBody{first: strings.NewReader(first), ctx: req.Context(), closed: make(chan struct{})}
		return response(http.StatusOK, body), nil
	}
}

// hangingBody reads first, then blocks until the request is cancelled or the body closed.
type hangingBody struct {
	first  *strings.Reader
	ctx    context.Context
	close  sync.Once
	closed chan struct{}
}

func (b *hangingBody) Read(p []byte) (int, error) {
	if b.first.Len() > 0 {
		return b.first.Read(p)
	}
	select {
	case <-b.ctx.Done():
		return 0, b.ctx.Err()
	case <-b.closed:
		return 0, errors.New("httpstub: read on a closed body")
	}
}

func (b *hangingBody) Close() error {
	b.close.Do(func() { close(b.closed) })
	return nil
}

// response is a response with status and body.
func response(status int, body io.ReadCloser) *http.Response {
	return &http.Response{StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Header: http.Header{}, Body: body, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
}
