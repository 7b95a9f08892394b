package domain

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/store"
)

// Kind says whose problem an Error is, which a transport turns into its own status.
type Kind int

// Kinds of Error.
const (
	// NotFound: the project, deployment or variable named does not exist.
	NotFound Kind = iota + 1
	// Conflict: the request contradicts the current state (a duplicate, a finished deployment).
	Conflict
	// Invalid: the request itself is wrong.
	Invalid
	// Unauthorized: the caller could not prove who it is (a wrong webhook signature).
	Unauthorized
	// Forbidden: GitHub refused what the token may not do.
	Forbidden
	// RateLimited: GitHub's rate limit refused the request.
	RateLimited
	// TooLarge: the request is bigger than accepted.
	TooLarge
	// TooSlow: the request did not arrive in time.
	TooSlow
	// Upstream: GitHub, OSS, the CDN or a git remote failed.
	Upstream
	// Unavailable: the agent cannot answer now (the store failed); retrying later may work.
	Unavailable
)

// Error is a failed operation with a detail written for the user.
type Error struct {
	Kind Kind
	// Detail says what happened and what to do; it never contains a secret.
	Detail string
	// Err is the cause, for the agent's log; nil when Detail says it all.
	Err error
}

// Error returns the detail.
func (e *Error) Error() string { return e.Detail }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of kind whose detail is formatted like fmt.Sprintf.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// githubError turns a failed GitHub call into an *Error whose kind tells the caller whose problem
// it is; prefix, when not empty, says what could not be done. The messages of package github never
// contain the token. Any other error is returned as it is.
func githubError(prefix string, err error) error {
	var ghErr *github.Error
	switch {
	case errors.Is(err, github.ErrNoToken), errors.Is(err, github.ErrInvalidRepository):
		return &Error{Kind: Invalid, Detail: prefix + err.Error(), Err: err}
	case !errors.As(err, &ghErr):
		return err
	}
	kind := Upstream // also for ErrUnauthorized: a 401 would read as the admin token being wrong
	switch ghErr.Kind {
	case github.ErrNotFound:
		kind = NotFound
	case github.ErrForbidden:
		kind = Forbidden
	case github.ErrRateLimited:
		kind = RateLimited
	}
	return &Error{Kind: kind, Detail: prefix + err.Error(), Err: err}
}

// storeError turns the store's refusals into an *Error: a conflict carries its own message, and
// notFound, when not empty, is the detail of a missing record. Any other error is returned as it is.
func storeError(err error, notFound string) error {
	var conflict *store.ConflictError
	switch {
	case errors.As(err, &conflict):
		return &Error{Kind: Conflict, Detail: conflict.Message}
	case notFound != "" && errors.Is(err, store.ErrNotFound):
		return &Error{Kind: NotFound, Detail: notFound}
	}
	return err
}

// HTTPStatus is the HTTP status that answers an error of kind, for the API and the dashboard alike.
func HTTPStatus(kind Kind) int {
	switch kind {
	case NotFound:
		return http.StatusNotFound
	case Conflict:
		return http.StatusConflict
	case Invalid:
		return http.StatusBadRequest
	case Unauthorized:
		return http.StatusUnauthorized
	case Forbidden:
		return http.StatusForbidden
	case RateLimited:
		return http.StatusTooManyRequests
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case TooSlow:
		return http.StatusRequestTimeout
	case Upstream:
		return http.StatusBadGateway
	case Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
