package agent

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/cluster"
	"github.com/miaobu/miaobu/internal/domain"
)

// handlerFunc is an HTTP handler that returns its failure instead of answering it: a *domain.Error
// becomes its status and detail, anything else a 500.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts h to net/http: it answers h's error, if any, with writeFailure.
func (a *Agent) handle(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			a.writeFailure(w, r, err)
		}
	}
}

// writeFailure answers err as {"detail": ...} with the status of its kind, logging it once with the
// request's method and path when it has a cause the detail does not show or is unexpected (500).
func (a *Agent) writeFailure(w http.ResponseWriter, r *http.Request, err error) {
	var e *domain.Error
	if !errors.As(err, &e) && errors.Is(err, cluster.ErrUnavailable) {
		a.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", http.StatusServiceUnavailable, "err", err)
		writeError(w, http.StatusServiceUnavailable, "The cluster has no quorum now: retry in a few seconds")
		return
	}
	if e == nil {
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "Internal error: see the agent's log")
		return
	}
	code := domain.HTTPStatus(e.Kind)
	if e.Err != nil {
		a.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", code, "err", e.Err)
	}
	writeError(w, code, e.Detail)
}

// writeJSON answers with v as JSON; it returns nil, for a handler to return, as a client that went
// away while reading is no failure of the request.
func writeJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
	return nil
}

// writeError answers with {"detail": detail}.
func writeError(w http.ResponseWriter, code int, detail string) {
	_ = writeJSON(w, code, api.Error{Detail: detail})
}

// decodeBody decodes a JSON request body of at most 1 MiB into v; a body that is not valid is Invalid.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return domain.Errorf(domain.Invalid, "Invalid JSON body: %v", err)
	}
	return nil
}

// decodeOptionalBody is decodeBody for a body that may be left out.
func decodeOptionalBody(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return decodeBody(w, r, v)
}
