package github_test

import (
	"encoding/base64"
	"errors"
	"reflect"
	"testing"

	"github.com/miaobu/miaobu/internal/github"
)

const (
	hookURL    = "https://deploy.example.com/api/v1/webhooks/github/3"
	hookSecret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I"
	// hookBody is the contract's hook, exactly.
	hookBody = `{"name":"web","active":true,"events":["push","pull_request","deployment"],"config":{"url":"` + hookURL + `","content_type":"json","secret":"` + hookSecret + `","insecure_ssl":"0"}}`
	// editBody is the same hook for PATCH, which has no name.
	editBody  = `{"active":true,"events":["push","pull_request","deployment"],"config":{"url":"` + hookURL + `","content_type":"json","secret":"` + hookSecret + `","insecure_ssl":"0"}}`
	hookReply = `{"id":7,"name":"web","active":true,"events":["push","pull_request","deployment"],"config":{"url":"` + hookURL + `","content_type":"json","secret":"********","insecure_ssl":"0"}}`
)

const refusedCreate = "GitHub refused to create the webhook: the token lacks admin:repo_hook or repo scope"

func TestCreateHook(t *testing.T) {
	c := fakeGitHub(t, "/", call{method: "POST", path: "/repos/acme/site/hooks", body: hookBody, status: 201, reply: hookReply})
	h, err := c.CreateHook(ctx, "acme", "site", hookURL, hookSecret)
	if err != nil {
		t.Fatal(err)
	}
	want := github.Hook{ID: 7, URL: hookURL, Active: true, Events: []string{"push", "pull_request", "deployment"}}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("CreateHook = %+v, want %+v", h, want)
	}
}

func TestCreateHookRefused(t *testing.T) {
	for _, status := range []int{403, 404} {
		c := fakeGitHub(t, "/", call{method: "POST", path: "/repos/acme/site/hooks", body: hookBody, status: status, reply: `{"message":"Resource not accessible by personal access token"}`})
		_, err := c.CreateHook(ctx, "acme", "site", hookURL, hookSecret)
		kind := github.ErrForbidden
		if status == 404 {
			kind = github.ErrNotFound
		}
		checkError(t, err, kind, refusedCreate)
	}
}

func TestCreateHookValidationFailed(t *testing.T) {
	c := fakeGitHub(t, "/", call{method: "POST", path: "/repos/acme/site/hooks", body: hookBody, status: 422,
		reply: `{"message":"Validation Failed","errors":[{"resource":"Hook","code":"custom","message":"url is not supported because it isn't reachable over the public Internet (localhost)"}]}`})
	_, err := c.CreateHook(ctx, "acme", "site", hookURL, hookSecret)
	checkError(t, err, github.ErrUnavailable, "GitHub refused to create the webhook: Validation Failed: url is not supported because it isn't reachable over the public Internet (localhost)")
}

func TestEnsureHookCreates(t *testing.T) {
	c := fakeGitHub(t, "/",
		call{method: "GET", path: "/repos/acme/site/hooks", query: "per_page=100", reply: `[{"id":1,"active":true,"config":{"url":"https://ci.example.com/hook"}}]`},
		call{method: "POST", path: "/repos/acme/site/hooks", body: hookBody, status: 201, reply: hookReply},
	)
	h, created, err := c.EnsureHook(ctx, "acme", "site", hookURL, hookSecret)
	if err != nil || !created || h.ID != 7 {
		t.Fatalf("EnsureHook = %+v, %v, %v; want hook 7 created", h, created, err)
	}
}

func TestEnsureHookUpdatesTheHookWithTheSameURL(t *testing.T) {
	c := fakeGitHub(t, "/",
		call{method: "GET", path: "/repos/acme/site/hooks", query: "per_page=100",
			header: map[string]string{"Link": `<{server}/repos/acme/site/hooks?page=2&per_page=100>; rel="next"`},
			reply:  `[{"id":1,"config":{"url":"https://ci.example.com/hook"}}]`},
		call{method: "GET", path: "/repos/acme/site/hooks", query: "page=2&per_page=100", reply: `[{"id":7,"active":false,"config":{"url":"` + hookURL + `"}}]`},
		call{method: "PATCH", path: "/repos/acme/site/hooks/7", body: editBody, reply: hookReply},
	)
	h, created, err := c.EnsureHook(ctx, "acme", "site", hookURL, hookSecret)
	if err != nil || created || h.ID != 7 || !h.Active {
		t.Fatalf("EnsureHook = %+v, %v, %v; want hook 7 updated and active", h, created, err)
	}
}

func TestEnsureHookListRefused(t *testing.T) {
	c := fakeGitHub(t, "/", call{method: "GET", path: "/repos/acme/site/hooks", query: "per_page=100", status: 404, reply: `{"message":"Not Found"}`})
	_, _, err := c.EnsureHook(ctx, "acme", "site", hookURL, hookSecret)
	checkError(t, err, github.ErrNotFound, refusedCreate)
}

func TestFindHookByID(t *testing.T) {
	list := call{method: "GET", path: "/repos/acme/site/hooks", query: "per_page=100", reply: `[{"id":9,"active":true,"events":["push","pull_request","deployment"],"config":{"url":"` + hookURL + `"}}]`}
	c := fakeGitHub(t, "/", list, list)
	if h, ok, err := c.FindHookByID(ctx, "acme", "site", 9); err != nil || !ok || h.URL != hookURL {
		t.Errorf("FindHookByID(9) = %+v, %v, %v", h, ok, err)
	}
	if _, ok, err := c.FindHookByID(ctx, "acme", "site", 10); err != nil || ok {
		t.Errorf("FindHookByID(10) = %v, %v", ok, err)
	}
}

func TestEditHookGone(t *testing.T) {
	c := fakeGitHub(t, "/", call{method: "PATCH", path: "/repos/acme/site/hooks/7", body: editBody, status: 404, reply: `{"message":"Not Found"}`})
	_, err := c.EditHook(ctx, "acme", "site", 7, hookURL, hookSecret)
	checkError(t, err, github.ErrNotFound, "webhook 7 not found on acme/site: it was deleted on GitHub, or the token lacks admin:repo_hook or repo scope")
}

func TestDeleteHook(t *testing.T) {
	c := fakeGitHub(t, "/",
		call{method: "DELETE", path: "/repos/acme/site/hooks/7", status: 204},
		call{method: "DELETE", path: "/repos/acme/site/hooks/7", status: 404, reply: `{"message":"Not Found"}`},
		call{method: "DELETE", path: "/repos/acme/site/hooks/7", status: 403, reply: `{"message":"Must have admin rights to Repository."}`},
	)
	if err := c.DeleteHook(ctx, "acme", "site", 7); err != nil {
		t.Errorf("DeleteHook: %v", err)
	}
	if err := c.DeleteHook(ctx, "acme", "site", 7); err != nil {
		t.Errorf("DeleteHook of a hook already gone: %v, want nil", err)
	}
	err := c.DeleteHook(ctx, "acme", "site", 7)
	checkError(t, err, github.ErrForbidden, "GitHub refused to delete the webhook: the token lacks admin:repo_hook or repo scope")
}

func TestHookCallsWithoutToken(t *testing.T) {
	c, err := github.New(github.Options{APIURL: "http://127.0.0.1:1/"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.EnsureHook(ctx, "acme", "site", hookURL, hookSecret); !errors.Is(err, github.ErrNoToken) {
		t.Errorf("EnsureHook without token: %v", err)
	}
	if err := c.DeleteHook(ctx, "acme", "site", 1); !errors.Is(err, github.ErrNoToken) {
		t.Errorf("DeleteHook without token: %v", err)
	}
}

func TestNewWebhookSecret(t *testing.T) {
	a, err := github.NewWebhookSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := github.NewWebhookSecret()
	raw, err := base64.RawURLEncoding.DecodeString(a)
	if len(a) != 43 || err != nil || len(raw) != 32 {
		t.Errorf("secret %q: %d characters, %d bytes, %v; want 43 base64url characters of 32 bytes", a, len(a), len(raw), err)
	}
	if a == b {
		t.Error("two secrets are equal")
	}
}
