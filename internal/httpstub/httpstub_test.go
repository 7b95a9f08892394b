package httpstub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// recorder is a TB that keeps what Verify reports.
type recorder struct{ errors []string }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// send sends method url through c and returns the status and body, or the error.
func send(c *http.Client, method, url, body string) (int, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data), err
}

func TestRegistryAnswersEachStubOnce(t *testing.T) {
	t.Parallel()
	var reg Registry
	reg.Register("first list", REST("GET", "/items"), StringResponse("one"))
	reg.Register("second list", REST("GET", "/items"), StatusStringResponse(http.StatusTeapot, "two"))
	reg.Register("create", REST("POST", "/items"), StatusJSONResponse(http.StatusCreated, map[string]int{"id": 7}))
	reg.Register("follow", REST("GET", "/log?follow=1"), JSONResponse([]string{"a"}))
	c := reg.Client()

	for _, tc := range []struct {
		method, url, body string
		status            int
		want              string
	}{
		{"GET", "http://agent.test/items", "", 200, "one"},
		{"GET", "http://agent.test/items", "", 418, "two"},
		{"POST", "http://agent.test/items", `{"name":"x"}`, 201, `{"id":7}`},
		{"GET", "http://agent.test/log?follow=1", "", 200, `["a"]`},
	} {
		status, body, err := send(c, tc.method, tc.url, tc.body)
		if err != nil || status != tc.status || body != tc.want {
			t.Errorf("%s %s: %d %q %v, want %d %q", tc.method, tc.url, status, body, err, tc.status, tc.want)
		}
	}
	if _, _, err := send(c, "GET", "http://agent.test/items", ""); err == nil || !strings.Contains(err.Error(), "no stub for GET http://agent.test/items") {
		t.Errorf("a third GET of a twice-stubbed path: %v", err)
	}
	if _, _, err := send(c, "GET", "http://agent.test/log", ""); err == nil {
		t.Error("a path without the stubbed query was answered")
	}
	if len(reg.Requests) != 6 {
		t.Fatalf("recorded %d requests, want 6", len(reg.Requests))
	}
	body, _ := reg.Requests[2].GetBody()
	if data, _ := io.ReadAll(body); string(data) != `{"name":"x"}` {
		t.Errorf("recorded body %q", data)
	}
	var r recorder
	reg.Verify(&r)
	if len(r.errors) != 0 {
		t.Errorf("Verify after every stub was called: %q", r.errors)
	}
}

func TestVerifyNamesUncalledStubs(t *testing.T) {
	t.Parallel()
	var reg Registry
	reg.Register("status", REST("GET", "/status"), StringResponse("{}"))
	reg.Register("deploy", REST("POST", "/deploy"), StringResponse("{}"))
	if _, _, err := send(reg.Client(), "GET", "http://agent.test/status", ""); err != nil {
		t.Fatal(err)
	}
	var r recorder
	reg.Verify(&r)
	if len(r.errors) != 1 || !strings.Contains(r.errors[0], `"deploy" was never called`) {
		t.Fatalf("Verify reported %q, want the deploy stub only", r.errors)
	}
}

func TestHangingResponseEndsWithTheRequest(t *testing.T) {
	t.Parallel()
	var reg Registry
	reg.Register("log", REST("GET", "/log"), HangingResponse("first line\n"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://agent.test/log", nil)
	resp, err := reg.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	if n, err := resp.Body.Read(buf); err != nil || string(buf[:n]) != "first line\n" {
		t.Fatalf("first read: %q %v", buf[:n], err)
	}
	read := make(chan error, 1)
	go func() {
		_, err := resp.Body.Read(buf)
		read <- err
	}()
	select {
	case err := <-read:
		t.Fatalf("the body ended before the request was cancelled: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-read:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("read after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the body still blocks after the request was cancelled")
	}
}
