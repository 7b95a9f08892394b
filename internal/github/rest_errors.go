package github

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	gogithub "github.com/google/go-github/v60/github"
)

// ErrNoToken is returned by every call of a Client made without a token.
var ErrNoToken = errors.New("no GitHub token: set MIAOBU_GITHUB_TOKEN (or GITHUB_TOKEN or GH_TOKEN) to a token with the repo and admin:repo_hook scopes")

// ErrInvalidRepository is wrapped by the error for an owner or repository name that GitHub cannot have.
var ErrInvalidRepository = errors.New("invalid repository name")

// ErrUnauthorized is the Kind of an *Error for a token that GitHub rejects (401).
var ErrUnauthorized = errors.New("GitHub rejected the token")

// ErrForbidden is the Kind of an *Error for a request that the token may not make (403, or 404 on hooks).
var ErrForbidden = errors.New("GitHub refused the request")

// ErrNotFound is the Kind of an *Error for a repository, branch or hook that GitHub does not show (404).
var ErrNotFound = errors.New("not found on GitHub")

// ErrRateLimited is the Kind of an *Error for a request refused by a primary or secondary rate limit.
var ErrRateLimited = errors.New("GitHub API rate limit exceeded")

// ErrUnavailable is the Kind of an *Error for any other failure: no answer, or an unexpected status.
var ErrUnavailable = errors.New("GitHub API request failed")

// Error is a failed GitHub API call with a message written for the user; errors.Is matches its Kind.
type Error struct {
	// Kind is ErrUnauthorized, ErrForbidden, ErrNotFound, ErrRateLimited or ErrUnavailable.
	Kind error
	// StatusCode is the HTTP status of GitHub's answer, 0 when none arrived.
	StatusCode int
	// ResetAt is, for ErrRateLimited, when GitHub accepts requests again, or may when it said no time.
	ResetAt time.Time
	// Message says what happened and what to do; it never contains the token.
	Message string
	cause   error
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the Kind and the underlying error, for errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.cause}
}

// messageUnauthorized is what every 401 says: the only fix is a new token.
const messageUnauthorized = "GitHub rejected the token (expired or revoked): set a new one in MIAOBU_GITHUB_TOKEN"

// apiError turns a go-github failure into an *Error. notFound and forbidden, when not empty,
// are the messages for a 404 and a 403 of this particular call.
func (c *Client) apiError(err error, resp *gogithub.Response, notFound, forbidden string) error {
	e := &Error{Kind: ErrUnavailable, cause: err}
	if resp != nil {
		e.StatusCode = resp.StatusCode
	}
	var rate *gogithub.RateLimitError
	var abuse *gogithub.AbuseRateLimitError
	switch {
	case errors.As(err, &rate):
		return rateLimited(e, rate.Rate.Reset.Time)
	case errors.As(err, &abuse):
		wait := unknownWait
		if abuse.RetryAfter != nil {
			wait = *abuse.RetryAfter
		}
		return secondaryLimited(e, wait)
	case resp != nil && (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests) &&
		resp.Header.Get("X-RateLimit-Remaining") == "0":
		// Calls that go-github does not parse (GetBranch) still carry the rate headers.
		return rateLimited(e, resp.Rate.Reset.Time)
	case resp != nil && (resp.StatusCode == http.StatusTooManyRequests ||
		resp.StatusCode == http.StatusForbidden && (resp.Header.Get("Retry-After") != "" || mentionsRateLimit(err))):
		// A secondary limit that go-github does not recognise: a 429, or a 403 that says when to
		// retry or says it is a rate limit, without the documentation link go-github looks for.
		if wait, ok := retryAfter(resp.Response); ok {
			return secondaryLimited(e, wait)
		}
		if at := resetAt(resp.Response); !at.IsZero() {
			return rateLimited(e, at)
		}
		return secondaryLimited(e, unknownWait)
	}
	switch e.StatusCode {
	case 0:
		e.Message = fmt.Sprintf("cannot reach GitHub at %s: %v", c.apiURL, err)
	case http.StatusUnauthorized:
		e.Kind = ErrUnauthorized
		e.Message = messageUnauthorized
	case http.StatusForbidden:
		e.Kind = ErrForbidden
		e.Message = forbidden
		if e.Message == "" {
			e.Message = "GitHub refused the request: " + githubMessage(err)
		}
	case http.StatusNotFound:
		e.Kind = ErrNotFound
		e.Message = notFound
		if e.Message == "" {
			e.Message = "not found on GitHub: " + githubMessage(err)
		}
	default:
		e.Message = fmt.Sprintf("GitHub API error (status %d): %s", e.StatusCode, githubMessage(err))
	}
	if c.token != "" {
		// A proxy or server that echoes the request would put the token in logs and statuses.
		e.Message = strings.ReplaceAll(e.Message, c.token, "[token]")
	}
	return e
}

// Retryable reports whether the same request may succeed later: GitHub was unreachable, failed
// (5xx) or limited the rate; a refusal (401, 403, 404, 422) stays one until something changes.
func (e *Error) Retryable() bool {
	return e.Kind == ErrRateLimited || (e.Kind == ErrUnavailable && (e.StatusCode == 0 || e.StatusCode >= 500))
}

// retryAfter is the wait a secondary limit's answer asks for in its Retry-After seconds, and
// whether it asks for one.
func retryAfter(resp *http.Response) (time.Duration, bool) {
	s, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	return time.Duration(s) * time.Second, err == nil && s >= 0
}

// resetAt is when a secondary limit's answer without a Retry-After says to try again: at its
// x-ratelimit-reset time unless it says requests remain (that reset is the primary limit's, which
// did not refuse); zero when it does not say.
func resetAt(resp *http.Response) time.Time {
	if resp.Header.Get("X-RateLimit-Remaining") != "" {
		return time.Time{}
	}
	if s, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil && s > 0 {
		return time.Unix(s, 0)
	}
	return time.Time{}
}

// unknownWait is how long to wait after a rate limit whose answer says no time: at least a
// minute, as GitHub's documentation of rate limits asks.
const unknownWait = time.Minute

// rateLimitPhrases are what GitHub's message says when it refuses a request for its rate: the
// primary limit, the secondary one, and the older name of the latter.
var rateLimitPhrases = []string{"rate limit", "abuse detection"}

// mentionsRateLimit reports whether GitHub's message in err says that a rate limit refused the request.
func mentionsRateLimit(err error) bool {
	message := strings.ToLower(githubMessage(err))
	return slices.ContainsFunc(rateLimitPhrases, func(phrase string) bool { return strings.Contains(message, phrase) })
}

// secondaryLimited fills e for a secondary rate limit that lifts after wait.
func secondaryLimited(e *Error, wait time.Duration) *Error {
	e.Kind = ErrRateLimited
	e.ResetAt = time.Now().Add(wait)
	e.Message = fmt.Sprintf("GitHub's secondary rate limit refused the request: retry in %s", wait.Round(time.Second))
	return e
}

// rateLimited fills e for a primary rate limit that resets at reset, or, when the answer said no
// time (reset is zero), in unknownWait.
func rateLimited(e *Error, reset time.Time) *Error {
	e.Kind = ErrRateLimited
	if reset.IsZero() {
		e.ResetAt = time.Now().Add(unknownWait)
		e.Message = fmt.Sprintf("GitHub API rate limit exceeded: retry in %s", unknownWait)
		return e
	}
	e.ResetAt = reset
	layout, now := "15:04:05 MST", time.Now().UTC()
	if reset.UTC().YearDay() != now.YearDay() || reset.UTC().Year() != now.Year() {
		layout = "2006-01-02 15:04:05 MST" // a time of day alone would read as today's
	}
	e.Message = fmt.Sprintf("GitHub API rate limit exceeded: it resets at %s (in %s)",
		reset.UTC().Format(layout), max(time.Until(reset), 0).Round(time.Second))
	return e
}

// githubMessage is GitHub's own explanation of a failure, such as "Validation Failed: url is not reachable".
func githubMessage(err error) string {
	var er *gogithub.ErrorResponse
	if !errors.As(err, &er) {
		return err.Error()
	}
	parts := []string{er.Message}
	for _, d := range er.Errors {
		switch {
		case d.Message != "":
			parts = append(parts, d.Message)
		case d.Field != "":
			parts = append(parts, d.Field+" "+d.Code)
		}
	}
	return strings.Join(parts, ": ")
}
