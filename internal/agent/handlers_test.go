package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/domain"
)

func TestHandleMapsErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err    error
		code   int
		detail string
		logged string
	}{
		{domain.Errorf(domain.NotFound, "Project x not found"), http.StatusNotFound, "Project x not found", ""},
		{domain.Errorf(domain.Conflict, "already live"), http.StatusConflict, "already live", ""},
		{domain.Errorf(domain.Invalid, "bad"), http.StatusBadRequest, "bad", ""},
		{domain.Errorf(domain.Unauthorized, "Invalid webhook signature"), http.StatusUnauthorized, "Invalid webhook signature", ""},
		{domain.Errorf(domain.Forbidden, "no"), http.StatusForbidden, "no", ""},
		{domain.Errorf(domain.RateLimited, "later"), http.StatusTooManyRequests, "later", ""},
		{domain.Errorf(domain.TooLarge, "Payload too large"), http.StatusRequestEntityTooLarge, "Payload too large", ""},
		{domain.Errorf(domain.Unavailable, "retry"), http.StatusServiceUnavailable, "retry", ""},
		{&domain.Error{Kind: domain.Upstream, Detail: "GitHub failed", Err: errors.New("503 from api")}, http.StatusBadGateway,
			"GitHub failed", `level=WARN msg="request failed" method=POST path=/api/v1/x status=502 err="503 from api"`},
		{fmt.Errorf("reading: %w", errors.New("disk on fire")), http.StatusInternalServerError, "Internal error: see the agent's log",
			`level=ERROR msg="request failed" method=POST path=/api/v1/x err="reading: disk on fire"`},
	}
	for _, tt := range tests {
		t.Run(tt.detail, func(t *testing.T) {
			var logs bytes.Buffer
			a := &Agent{log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				}}))}
			w := httptest.NewRecorder()
			a.handle(func(http.ResponseWriter, *http.Request) error { return tt.err })(w, httptest.NewRequest("POST", "/api/v1/x", nil))
			var body api.Error
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != tt.code || body.Detail != tt.detail ||
				w.Header().Get("Content-Type") != "application/json" {
				t.Errorf("answer %d %q %q, want %d %q", w.Code, w.Header().Get("Content-Type"), w.Body, tt.code, tt.detail)
			}
			if got := strings.TrimSpace(logs.String()); got != tt.logged {
				t.Errorf("log %q, want %q", got, tt.logged)
			}
		})
	}
}

func TestHandleWritesNothingMoreOnSuccess(t *testing.T) {
	t.Parallel()
	a := &Agent{}
	w := httptest.NewRecorder()
	a.handle(func(w http.ResponseWriter, _ *http.Request) error {
		return writeJSON(w, http.StatusCreated, api.Health{Status: "ok"})
	})(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != http.StatusCreated || w.Body.String() != "{\"status\":\"ok\"}\n" {
		t.Errorf("answer %d %q", w.Code, w.Body)
	}
}
