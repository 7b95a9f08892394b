package github_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miaobu/miaobu/internal/github"
)

const testToken = "ghp_test-token-never-shown"

// call is one request that the fake GitHub expects, in order, and its answer.
type call struct {
	method string
	path   string // escaped path
	query  string // raw query, compared exactly
	body   string // JSON the request must carry, compared as JSON; "" for no body
	status int
	header map[string]string
	reply  string
}

// fakeGitHub starts a GitHub API that accepts exactly calls, in order, and fails the test on
// anything else; it returns a client of it under the prefix apiPath (such as "/" or "/api/v3/").
func fakeGitHub(t *testing.T, apiPath string, calls ...call) *github.Client {
	t.Helper()
	var mu sync.Mutex
	next := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		if next >= len(calls) {
			t.Errorf("unexpected request %s %s?%s %s", r.Method, r.URL.EscapedPath(), r.URL.RawQuery, body)
			http.Error(w, `{"message":"unexpected"}`, http.StatusTeapot)
			return
		}
		c := calls[next]
		next++
		if got := r.Method + " " + r.URL.EscapedPath() + "?" + r.URL.RawQuery; got != c.method+" "+strings.TrimSuffix(apiPath, "/")+c.path+"?"+c.query {
			t.Errorf("request %d = %s, want %s %s?%s", next, got, c.method, c.path, c.query)
		}
		if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
			t.Errorf("request %d: Authorization = %q", next, got)
		}
		switch {
		case c.body == "" && len(body) > 0:
			t.Errorf("request %d: unexpected body %s", next, body)
		case c.body != "":
			var got, want any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Errorf("request %d: body %q is not JSON: %v", next, body, err)
			}
			if err := json.Unmarshal([]byte(c.body), &want); err != nil {
				t.Fatalf("bad test body: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("request %d: body\n%s\nwant\n%s", next, body, c.body)
			}
		}
		for k, v := range c.header {
			w.Header().Set(k, strings.ReplaceAll(v, "{server}", "http://"+r.Host))
		}
		w.Header().Set("Content-Type", "application/json")
		if c.status == 0 {
			c.status = http.StatusOK
		}
		w.WriteHeader(c.status)
		io.WriteString(w, c.reply)
	}))
	t.Cleanup(func() {
		srv.Close()
		if next != len(calls) {
			t.Errorf("fake GitHub received %d of %d expected requests", next, len(calls))
		}
	})
	client, err := github.New(github.Options{APIURL: srv.URL + apiPath, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// checkError checks that err is an *github.Error of kind with exactly msg, without the token.
func checkError(t *testing.T, err error, kind error, msg string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	if !errors.Is(err, kind) {
		t.Errorf("error %q is not %v", err, kind)
	}
	if msg != "" && err.Error() != msg {
		t.Errorf("error = %q\nwant  %q", err, msg)
	}
	if strings.Contains(err.Error(), testToken) {
		t.Errorf("error %q shows the token", err)
	}
}

var ctx = context.Background()

func TestRepository(t *testing.T) {
	c := fakeGitHub(t, "/", call{method: "GET", path: "/repos/acme/site", reply: `{"id":42,"full_name":"acme/site","default_branch":"trunk","clone_url":"https://github.com/acme/site.git","html_url":"https://github.com/acme/site","private":true}`})
	got, err := c.Repository(ctx, "acme", "site")
	if err != nil {
		t.Fatal(err)
	}
	want := github.Repository{ID: 42, FullName: "acme/site", DefaultBranch: "trunk", CloneURL: "https://github.com/acme/site.git", HTMLURL: "https://github.com/acme/site", Private: true}
	if got != want {
		t.Errorf("Repository = %+v, want %+v", got, want)
	}
}

func TestRepositoryEnterpriseURL(t *testing.T) {
	c := fakeGitHub(t, "/api/v3", call{method: "GET", path: "/repos/acme/site", reply: `{"full_name":"acme/site"}`})
	if _, err := c.Repository(ctx, "acme", "site"); err != nil {
		t.Fatal(err)
	}
}

func TestRepositoryNotFound(t *testing.T) {
	c := fakeGitHub(t, "/", call{method: "GET", path: "/repos/acme/gone", status: 404, reply: `{"message":"Not Found"}`})
	_, err := c.Repository(ctx, "acme", "gone")
	checkError(t, err, github.ErrNotFound, "repository acme/gone not found or the token cannot see it")
}

func TestExpiredToken(t *testing.T) {
	c := fakeGitHub(t, "/", call{method: "GET", path: "/repos/acme/site", status: 401, reply: `{"message":"Bad credentials"}`})
	_, err := c.Repository(ctx, "acme", "site")
	checkError(t, err, github.ErrUnauthorized, "GitHub rejected the token (expired or revoked): set a new one in MIAOBU_GITHUB_TOKEN")
	var e *github.Error
	if !errors.As(err, &e) || e.StatusCode != 401 {
		t.Errorf("error %#v has no status 401", err)
	}
}

func TestNoToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request without a token: %s %s", r.Method, r.URL)
	}))
	defer srv.Close()
	c, err := github.New(github.Options{APIURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Repository(ctx, "acme", "site")
	if !errors.Is(err, github.ErrNoToken) || !strings.Contains(err.Error(), "MIAOBU_GITHUB_TOKEN") || !strings.Contains(err.Error(), "GH_TOKEN") {
		t.Errorf("error = %v, want ErrNoToken naming the variables", err)
	}
}

func TestInvalidRepositoryName(t *testing.T) {
	c := fakeGitHub(t, "/")
	for _, r := range [][2]string{{"..", "x"}, {"acme", "../../user"}, {"acme", "a/b"}, {"", "site"}, {"acme", "site?x=1"}} {
		if _, err := c.Repository(ctx, r[0], r[1]); !errors.Is(err, github.ErrInvalidRepository) {
			t.Errorf("Repository(%q, %q) error = %v, want ErrInvalidRepository", r[0], r[1], err)
		}
	}
}

func TestNewBadAPIURL(t *testing.T) {
	for _, u := range []string{"ftp://example.com/", "api.github.com", "http://"} {
		if _, err := github.New(github.Options{APIURL: u, Token: testToken}); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
}

func TestBranchTip(t *testing.T) {
	c := fakeGitHub(t, "/", call{method: "GET", path: "/repos/acme/site/branches/release%2F1.0",
		reply: `{"name":"release/1.0","commit":{"sha":"abc123def4567890abc123def4567890abc123de","commit":{"message":"Fix the header\n\nlong text","author":{"name":"Ada Lovelace"}},"author":{"login":"ada"}}}`})
	got, err := c.BranchTip(ctx, "acme", "site", "release/1.0")
	if err != nil {
		t.Fatal(err)
	}
	want := github.Commit{SHA: "abc123def4567890abc123def4567890abc123de", Message: "Fix the header\n\nlong text", Author: "Ada Lovelace"}
	if got != want {
		t.Errorf("BranchTip = %+v, want %+v", got, want)
	}
}

func TestBranchTipWithoutSHA(t *testing.T) {
	c := fakeGitHub(t, "/", call{method: "GET", path: "/repos/acme/site/branches/main", reply: `{"name":"main","commit":{}}`})
	_, err := c.BranchTip(ctx, "acme", "site", "main")
	checkError(t, err, github.ErrUnavailable, "GitHub answered no commit SHA for branch main of acme/site")
}

func TestBranchTipNotFound(t *testing.T) {
	c := fakeGitHub(t, "/", call{method: "GET", path: "/repos/acme/site/branches/nope", status: 404, reply: `{"message":"Branch not found"}`})
	_, err := c.BranchTip(ctx, "acme", "site", "nope")
	checkError(t, err, github.ErrNotFound, "branch nope not found in acme/site, or the token cannot see the repository")
}

func TestRateLimit(t *testing.T) {
	header := map[string]string{"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "4102444800"}
	c := fakeGitHub(t, "/",
		call{method: "GET", path: "/repos/acme/site", status: 403, header: header, reply: `{"message":"API rate limit exceeded for user ID 1."}`},
	)
	_, err := c.Repository(ctx, "acme", "site")
	checkError(t, err, github.ErrRateLimited, "")
	var e *github.Error
	if !errors.As(err, &e) || e.ResetAt.Unix() != 4102444800 {
		t.Fatalf("error %#v lacks the reset time", err)
	}
	// A reset on another day than today shows its date, not only a time of day.
	if !strings.Contains(err.Error(), "resets at 2100-01-01 00:00:00 UTC") {
		t.Errorf("error %q does not say when the limit resets", err)
	}
}

func TestRateLimitOnBranch(t *testing.T) {
	// GetBranch is not parsed by go-github's error handling, so the headers are read directly.
	header := map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "4102444800"}
	c := fakeGitHub(t, "/", call{method: "GET", path: "/repos/acme/site/branches/main", status: 429, header: header, reply: `{"message":"rate limited"}`})
	_, err := c.BranchTip(ctx, "acme", "site", "main")
	checkError(t, err, github.ErrRateLimited, "")
	if !strings.Contains(err.Error(), "resets at") {
		t.Errorf("error %q does not say when the limit resets", err)
	}
}

func TestSecondaryRateLimit(t *testing.T) {
	c := fakeGitHub(t, "/", call{method: "GET", path: "/repos/acme/site", status: 403, header: map[string]string{"Retry-After": "60"},
		reply: `{"message":"You have exceeded a secondary rate limit","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`})
	_, err := c.Repository(ctx, "acme", "site")
	checkError(t, err, github.ErrRateLimited, "GitHub's secondary rate limit refused the request: retry in 1m0s")
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	c, err := github.New(github.Options{APIURL: srv.URL, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Repository(ctx, "acme", "site")
	checkError(t, err, github.ErrUnavailable, "")
	if !strings.Contains(err.Error(), "cannot reach GitHub at "+srv.URL+"/") {
		t.Errorf("error %q does not say where it looked", err)
	}
}

func TestTokenNeverFollowsARedirectToAnotherHost(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		if r.Header.Get("Authorization") != "" {
			t.Errorf("the token reached another server: %q", r.Header.Get("Authorization"))
		}
	}))
	defer other.Close()
	// 127.0.0.1 and localhost are different hosts to the client.
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, otherURL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer api.Close()
	c, err := github.New(github.Options{APIURL: api.URL, Token: "ghp_secret"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Repository(context.Background(), "acme", "site")
	if err == nil || elsewhere.Load() != 0 {
		t.Fatalf("a redirect to another host: err %v, %d requests there", err, elsewhere.Load())
	}
	if strings.Contains(err.Error(), "ghp_secret") {
		t.Fatalf("the error shows the token: %v", err)
	}
}
