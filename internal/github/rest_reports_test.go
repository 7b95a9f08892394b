package github_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/github"
)

const reportSHA = "0123456789abcdef0123456789abcdef01234567"

func TestCreateStatus(t *testing.T) {
	long := strings.Repeat("é", 150)
	c := fakeGitHub(t, "/",
		call{method: "POST", path: "/repos/acme/site/statuses/" + reportSHA, status: 201, reply: `{"id":1}`,
			body: `{"state":"pending","description":"Queued","target_url":"https://deploy.example.com/deployments/4","context":"miaobu/site"}`},
		call{method: "POST", path: "/repos/acme/site/statuses/" + reportSHA, status: 201, reply: `{"id":2}`,
			body: `{"state":"failure","description":"` + strings.Repeat("é", 139) + `…","target_url":"https://deploy.example.com/deployments/4","context":"miaobu/site"}`},
	)
	s := github.CommitStatus{State: "pending", Description: "Queued", TargetURL: "https://deploy.example.com/deployments/4", Context: "miaobu/site"}
	if err := c.CreateStatus(ctx, "acme", "site", reportSHA, s); err != nil {
		t.Fatal(err)
	}
	s.State, s.Description = "failure", long
	if err := c.CreateStatus(ctx, "acme", "site", reportSHA, s); err != nil {
		t.Fatal(err)
	}
}

func TestCreateStatusRefusesAShortSHA(t *testing.T) {
	c := fakeGitHub(t, "/")
	if err := c.CreateStatus(ctx, "acme", "site", "main", github.CommitStatus{State: "pending"}); err == nil {
		t.Error("a status for a branch name was sent")
	}
}

func TestCreateDeployment(t *testing.T) {
	c := fakeGitHub(t, "/", call{method: "POST", path: "/repos/acme/site/deployments", status: 201, reply: `{"id":987,"sha":"` + reportSHA + `"}`,
		body: `{"ref":"` + reportSHA + `","environment":"production","description":"miaobu deployment #4","auto_merge":false,
			"required_contexts":[],"transient_environment":false,"production_environment":true,"payload":{"miaobu":{"deployment_id":4}}}`})
	id, err := c.CreateDeployment(ctx, "acme", "site", github.Deployment{Ref: reportSHA, Environment: "production",
		Description: "miaobu deployment #4", Production: true, MiaobuID: 4})
	if err != nil || id != 987 {
		t.Fatalf("CreateDeployment = %d, %v; want 987", id, err)
	}
}

func TestCreateDeploymentStatus(t *testing.T) {
	c := fakeGitHub(t, "/",
		call{method: "POST", path: "/repos/acme/site/deployments/987/statuses", status: 201, reply: `{"id":1}`,
			body: `{"state":"in_progress","description":"Building"}`},
		call{method: "POST", path: "/repos/acme/site/deployments/987/statuses", status: 201, reply: `{"id":2}`,
			body: `{"state":"success","description":"Live in 12s","environment_url":"https://site.example.com/","log_url":"https://deploy.example.com/deployments/4"}`},
	)
	if err := c.CreateDeploymentStatus(ctx, "acme", "site", 987, github.DeploymentStatus{State: "in_progress", Description: "Building"}); err != nil {
		t.Fatal(err)
	}
	err := c.CreateDeploymentStatus(ctx, "acme", "site", 987, github.DeploymentStatus{State: "success", Description: "Live in 12s",
		EnvironmentURL: "https://site.example.com/", LogURL: "https://deploy.example.com/deployments/4"})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReportErrors checks how each failure of a report is typed: refusals name the permission and
// are not retried, server errors and rate limits are, with the time GitHub asked to wait.
func TestReportErrors(t *testing.T) {
	statusPath := "/repos/acme/site/statuses/" + reportSHA
	statusBody := `{"state":"success","description":"Live in 1s","target_url":"https://d/1","context":"miaobu/site"}`
	reset := time.Now().Add(time.Hour).Unix()
	for _, tc := range []struct {
		name      string
		status    int
		header    map[string]string
		reply     string
		kind      error
		retryable bool
		message   string
		waits     time.Duration // at least this long until ResetAt
		before    time.Duration // at most this long until ResetAt, when not zero
	}{
		{name: "forbidden", status: 403, reply: `{"message":"Resource not accessible by personal access token"}`, kind: github.ErrForbidden,
			message: "GitHub refused to set a commit status on acme/site: the token needs the repo:status scope (classic token; repo includes it) or Commit statuses: write (fine-grained token)"},
		{name: "not found", status: 404, reply: `{"message":"Not Found"}`, kind: github.ErrNotFound,
			message: "GitHub refused to set a commit status on acme/site: the token needs the repo:status scope (classic token; repo includes it) or Commit statuses: write (fine-grained token)"},
		{name: "unprocessable", status: 422, reply: `{"message":"No commit found for SHA: x"}`, kind: github.ErrUnavailable,
			message: "GitHub API error (status 422): No commit found for SHA: x"},
		{name: "bad gateway", status: 502, reply: `{"message":"Server Error"}`, kind: github.ErrUnavailable, retryable: true},
		{name: "too many requests", status: 429, header: map[string]string{"Retry-After": "120"}, reply: `{"message":"slow down"}`,
			kind: github.ErrRateLimited, retryable: true, waits: 110 * time.Second},
		{name: "too many requests until reset", status: 429, header: map[string]string{"X-RateLimit-Reset": strconv.FormatInt(reset, 10)}, reply: `{"message":"slow down"}`,
			kind: github.ErrRateLimited, retryable: true, waits: 50 * time.Minute},
		{name: "secondary limit as a 403", status: 403, header: map[string]string{"Retry-After": "30"}, reply: `{"message":"You have exceeded a secondary rate limit"}`,
			kind: github.ErrRateLimited, retryable: true, waits: 20 * time.Second},
		{name: "primary limit as a 403", status: 403,
			header: map[string]string{"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(reset, 10)},
			reply:  `{"message":"API rate limit exceeded for user ID 1.","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}`,
			kind:   github.ErrRateLimited, retryable: true, waits: 50 * time.Minute},
		// GitHub's documentation: without Retry-After, and with requests left, wait at least a minute
		// (not until the primary limit's reset).
		{name: "secondary limit as a 403 that says no time", status: 403,
			header: map[string]string{"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4990", "X-RateLimit-Reset": strconv.FormatInt(reset, 10)},
			reply:  `{"message":"You have exceeded a secondary rate limit and have been temporarily blocked from content creation. Please retry your request again later."}`,
			kind:   github.ErrRateLimited, retryable: true, waits: 55 * time.Second, before: 2 * time.Minute,
			message: "GitHub's secondary rate limit refused the request: retry in 1m0s"},
		{name: "too many requests that say no time", status: 429, reply: `{"message":"slow down"}`,
			kind: github.ErrRateLimited, retryable: true, waits: 55 * time.Second, before: 2 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeGitHub(t, "/", call{method: "POST", path: statusPath, body: statusBody, status: tc.status, header: tc.header, reply: tc.reply})
			err := c.CreateStatus(ctx, "acme", "site", reportSHA, github.CommitStatus{State: "success", Description: "Live in 1s", TargetURL: "https://d/1", Context: "miaobu/site"})
			checkError(t, err, tc.kind, tc.message)
			var e *github.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not a *github.Error", err)
			}
			if e.Retryable() != tc.retryable {
				t.Errorf("Retryable() = %v, want %v", e.Retryable(), tc.retryable)
			}
			if tc.waits > 0 && time.Until(e.ResetAt) < tc.waits {
				t.Errorf("ResetAt is in %s, want at least %s", time.Until(e.ResetAt), tc.waits)
			}
			if tc.before > 0 && time.Until(e.ResetAt) > tc.before {
				t.Errorf("ResetAt is in %s, want at most %s", time.Until(e.ResetAt), tc.before)
			}
		})
	}
}

func TestDeploymentReportsRefused(t *testing.T) {
	const refused = "GitHub refused to report a deployment on acme/site: the token needs the repo_deployment scope (classic token; repo includes it) or Deployments: write (fine-grained token)"
	c := fakeGitHub(t, "/",
		call{method: "POST", path: "/repos/acme/site/deployments", status: 403, reply: `{"message":"Resource not accessible by personal access token"}`,
			body: `{"ref":"` + reportSHA + `","environment":"production","description":"d","auto_merge":false,"required_contexts":[],"transient_environment":false,"production_environment":true,"payload":{"miaobu":{"deployment_id":1}}}`},
		call{method: "POST", path: "/repos/acme/site/deployments/5/statuses", status: 404, reply: `{"message":"Not Found"}`,
			body: `{"state":"inactive","description":"Preview removed"}`},
	)
	_, err := c.CreateDeployment(ctx, "acme", "site", github.Deployment{Ref: reportSHA, Environment: "production", Description: "d", Production: true, MiaobuID: 1})
	checkError(t, err, github.ErrForbidden, refused)
	// A 404 on one deployment's statuses says it was deleted, not that a permission is missing.
	err = c.CreateDeploymentStatus(ctx, "acme", "site", 5, github.DeploymentStatus{State: "inactive", Description: "Preview removed"})
	checkError(t, err, github.ErrNotFound, "GitHub deployment 5 of acme/site no longer exists (deleted on GitHub)")
}

func TestFindDeployment(t *testing.T) {
	list := `[{"id":9,"payload":{"miaobu":{"deployment_id":4}}},{"id":8,"payload":"{\"miaobu\":{\"deployment_id\":3}}"},{"id":7,"payload":{}}]`
	c := fakeGitHub(t, "/",
		call{method: "GET", path: "/repos/acme/site/deployments", query: "environment=production&per_page=100&sha=" + reportSHA, status: 200, reply: list},
		call{method: "GET", path: "/repos/acme/site/deployments", query: "environment=production&per_page=100&sha=" + reportSHA, status: 200, reply: list},
	)
	for miaobuID, want := range map[int64]int64{3: 8, 5: 0} {
		if got, err := c.FindDeployment(ctx, "acme", "site", reportSHA, "production", miaobuID); err != nil || got != want {
			t.Errorf("FindDeployment of miaobu deployment %d = %d, %v; want %d", miaobuID, got, err, want)
		}
	}
}

func TestReportsWithoutToken(t *testing.T) {
	c, err := github.New(github.Options{APIURL: "http://127.0.0.1:1/"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateStatus(ctx, "acme", "site", reportSHA, github.CommitStatus{}); !errors.Is(err, github.ErrNoToken) {
		t.Errorf("CreateStatus without token: %v", err)
	}
	if _, err := c.CreateDeployment(ctx, "acme", "site", github.Deployment{}); !errors.Is(err, github.ErrNoToken) {
		t.Errorf("CreateDeployment without token: %v", err)
	}
	if err := c.CreateDeploymentStatus(ctx, "acme", "site", 1, github.DeploymentStatus{}); !errors.Is(err, github.ErrNoToken) {
		t.Errorf("CreateDeploymentStatus without token: %v", err)
	}
}

func TestMissingEvents(t *testing.T) {
	for _, tc := range []struct {
		events, want []string
	}{
		{[]string{"push"}, []string{"pull_request", "deployment"}},
		{[]string{"deployment", "push", "pull_request", "issues"}, nil},
		{nil, []string{"push", "pull_request", "deployment"}},
	} {
		if got := github.MissingEvents(tc.events); strings.Join(got, ",") != strings.Join(tc.want, ",") || (got == nil) != (tc.want == nil) {
			t.Errorf("MissingEvents(%q) = %q, want %q", tc.events, got, tc.want)
		}
	}
}
