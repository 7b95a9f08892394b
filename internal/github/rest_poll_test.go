package github_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/github/githubtest"
)

// pollServer is the fake GitHub with acme/site on branch main at sha("a"), and a client of it.
func pollServer(t *testing.T) (*githubtest.Server, *github.Client) {
	t.Helper()
	gh := githubtest.New(t, testToken)
	gh.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main", Branches: map[string]string{"main": sha("a")}})
	c, err := github.New(github.Options{APIURL: gh.URL, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	return gh, c
}

// sha returns a distinct full commit SHA.
func sha(c string) string { return strings.Repeat(c, 40)[:40] }

func TestHeadSHAIsConditional(t *testing.T) {
	gh, c := pollServer(t)
	ctx := context.Background()
	got, changed, _, err := c.HeadSHA(ctx, "acme", "site", "main", "")
	if err != nil || got != sha("a") || !changed {
		t.Fatalf("first poll = %q %v %v, want a's SHA, changed", got, changed, err)
	}
	for range 2 {
		if got, changed, _, err = c.HeadSHA(ctx, "acme", "site", "main", got); err != nil || got != sha("a") || changed {
			t.Fatalf("poll of an unchanged branch = %q %v %v, want a's SHA, unchanged", got, changed, err)
		}
	}
	gh.SetBranch("acme/site", "main", sha("b"))
	if got, changed, _, err = c.HeadSHA(ctx, "acme", "site", "main", sha("a")); err != nil || got != sha("b") || !changed {
		t.Fatalf("poll after a push = %q %v %v, want b's SHA, changed", got, changed, err)
	}
	var statuses, conditions []string
	for _, a := range gh.Answers() {
		if a.Request != "GET /repos/acme/site/commits/main" {
			t.Errorf("unexpected request %s", a.Request)
		}
		statuses = append(statuses, fmt.Sprint(a.Status))
		conditions = append(conditions, a.IfNoneMatch)
	}
	if want := []string{"200", "304", "304", "200"}; !slices.Equal(statuses, want) {
		t.Errorf("answers %v, want %v", statuses, want)
	}
	if want := []string{"", `"` + sha("a") + `"`, `"` + sha("a") + `"`, `"` + sha("a") + `"`}; !slices.Equal(conditions, want) {
		t.Errorf("If-None-Match %q, want %q", conditions, want)
	}
}

func TestHeadSHAOfMissingBranch(t *testing.T) {
	_, c := pollServer(t)
	_, _, _, err := c.HeadSHA(context.Background(), "acme", "site", "gone", "")
	if !errors.Is(err, github.ErrNotFound) || !strings.Contains(err.Error(), "branch gone not found in acme/site") {
		t.Fatalf("err = %v, want a branch not found", err)
	}
}

func TestHeadSHARateLimited(t *testing.T) {
	gh, c := pollServer(t)
	reset := time.Now().Add(-time.Second).Truncate(time.Second) // past, so go-github sends the next request
	gh.SetRateLimit(5000, 1, reset)
	_, _, rate, err := c.HeadSHA(context.Background(), "acme", "site", "main", "")
	if err != nil || rate.Limit != 5000 || rate.Remaining != 0 || !rate.Reset.Equal(reset) {
		t.Fatalf("last allowed request: rate %+v, err %v", rate, err)
	}
	_, _, rate, err = c.HeadSHA(context.Background(), "acme", "site", "main", "")
	if !errors.Is(err, github.ErrRateLimited) || rate.Remaining != 0 || !rate.Reset.Equal(reset) {
		t.Fatalf("refused request: rate %+v, err %v, want rate limited until %s", rate, err, reset)
	}
}

func TestOpenPullRequestsWithETags(t *testing.T) {
	gh, c := pollServer(t)
	ctx := context.Background()
	var pulls []githubtest.Pull
	for n := 1; n <= 150; n++ {
		pulls = append(pulls, githubtest.Pull{Number: n, HeadSHA: sha("c"), HeadRef: fmt.Sprintf("topic-%d", n)})
	}
	pulls[149].HeadRepo = "fork/site"
	gh.SetPulls("acme/site", pulls)
	pages, changed, partial, _, err := c.OpenPullRequests(ctx, "acme", "site", nil)
	prs := items(pages)
	if err != nil || !changed || partial || len(pages) != 2 || pages[0].ETag == "" || len(prs) != 150 {
		t.Fatalf("first listing: %d pull requests in %d pages, changed %v, partial %v, err %v", len(prs), len(pages), changed, partial, err)
	}
	if want := (github.OpenPullRequest{Number: 150, HeadSHA: sha("c"), HeadRef: "topic-150", HeadRepo: "fork/site", BaseRepo: "acme/site"}); prs[149] != want {
		t.Errorf("last pull request %+v, want %+v", prs[149], want)
	}
	again, changed, _, _, err := c.OpenPullRequests(ctx, "acme", "site", pages)
	if err != nil || changed || len(items(again)) != 150 {
		t.Fatalf("unchanged listing: %d pull requests, changed %v, err %v", len(items(again)), changed, err)
	}
	// A push to a pull request on the second page changes that page alone.
	pulls[120].HeadSHA = sha("d")
	gh.SetPulls("acme/site", pulls)
	moved, changed, _, _, err := c.OpenPullRequests(ctx, "acme", "site", again)
	if err != nil || !changed || items(moved)[120].HeadSHA != sha("d") {
		t.Fatalf("listing after a push to #121: %+v, changed %v, err %v", items(moved)[120], changed, err)
	}
	gh.SetPulls("acme/site", pulls[:1])
	fewer, changed, _, _, err := c.OpenPullRequests(ctx, "acme", "site", moved)
	if err != nil || !changed || len(items(fewer)) != 1 {
		t.Fatalf("changed listing: %v, changed %v, err %v", items(fewer), changed, err)
	}
	var got []string
	for _, a := range gh.Answers() {
		got = append(got, fmt.Sprint(a.Status))
	}
	if want := []string{"200", "200", "304", "304", "304", "200", "200"}; !slices.Equal(got, want) {
		t.Errorf("answers %q, want %q", got, want)
	}
}

// items returns the items of pages, in order.
func items[T any](pages []github.Page[T]) []T {
	var all []T
	for _, p := range pages {
		all = append(all, p.Items...)
	}
	return all
}

func TestBranchesWithETags(t *testing.T) {
	gh, c := pollServer(t)
	ctx := context.Background()
	for n := range 250 {
		gh.SetBranch("acme/site", fmt.Sprintf("topic-%03d", n), sha("c"))
	}
	heads := func(pages []github.Page[github.Branch]) map[string]string {
		all := map[string]string{}
		for _, b := range items(pages) {
			all[b.Name] = b.SHA
		}
		return all
	}
	pages, changed, partial, _, err := c.Branches(ctx, "acme", "site", nil)
	if err != nil || !changed || partial || len(pages) != 3 || len(heads(pages)) != 251 || heads(pages)["main"] != sha("a") {
		t.Fatalf("first listing: %d pages, %d branches, changed %v, partial %v, err %v", len(pages), len(heads(pages)), changed, partial, err)
	}
	again, changed, _, _, err := c.Branches(ctx, "acme", "site", pages)
	if err != nil || changed || !maps.Equal(heads(again), heads(pages)) {
		t.Fatalf("unchanged listing: %d branches, changed %v, err %v", len(heads(again)), changed, err)
	}
	gh.SetBranch("acme/site", "topic-150", sha("d"))
	moved, changed, _, _, err := c.Branches(ctx, "acme", "site", again)
	if err != nil || !changed || heads(moved)["topic-150"] != sha("d") || len(heads(moved)) != 251 {
		t.Fatalf("listing after a push to the second page: topic-150 at %q, %d branches, changed %v, err %v",
			heads(moved)["topic-150"], len(heads(moved)), changed, err)
	}
	for n := 50; n < 250; n++ {
		gh.SetBranch("acme/site", fmt.Sprintf("topic-%03d", n), "")
	}
	fewer, changed, _, _, err := c.Branches(ctx, "acme", "site", moved)
	if err != nil || !changed || len(fewer) != 1 || len(heads(fewer)) != 51 {
		t.Fatalf("listing after deletions: %d pages, %d branches, changed %v, err %v", len(fewer), len(heads(fewer)), changed, err)
	}
	// 49 more make the only page full; one more after that starts a second page, which a listing
	// whose pages all answer 304 still asks for.
	for n := 50; n < 99; n++ {
		gh.SetBranch("acme/site", fmt.Sprintf("topic-%03d", n), sha("c"))
	}
	full, _, _, _, err := c.Branches(ctx, "acme", "site", fewer)
	if err != nil || len(full) != 1 || !full[0].Full {
		t.Fatalf("a full page: %d pages, err %v", len(full), err)
	}
	gh.SetBranch("acme/site", "zz-last", sha("e"))
	grown, changed, _, _, err := c.Branches(ctx, "acme", "site", full)
	if err != nil || !changed || heads(grown)["zz-last"] != sha("e") {
		t.Fatalf("a branch on a new page: %d pages, zz-last at %q, changed %v, err %v", len(grown), heads(grown)["zz-last"], changed, err)
	}
	var got []string
	for _, a := range gh.Answers() {
		got = append(got, fmt.Sprint(a.Status))
	}
	want := []string{"200", "200", "200", "304", "304", "304", "304", "200", "304", "200", "200", "304", "200"}
	if !slices.Equal(got, want) {
		t.Errorf("answers %v, want %v", got, want)
	}
}

func TestBranchesStopAtTheLastPage(t *testing.T) {
	gh, c := pollServer(t)
	for n := range github.MaxPages*github.PageSize + 5 {
		gh.SetBranch("acme/site", fmt.Sprintf("b-%04d", n), sha("c"))
	}
	pages, _, partial, _, err := c.Branches(context.Background(), "acme", "site", nil)
	if err != nil || !partial || len(pages) != github.MaxPages {
		t.Fatalf("listing of %d branches: %d pages, partial %v, err %v", github.MaxPages*github.PageSize+6, len(pages), partial, err)
	}
}

// TestEchoedTokenIsCutFromErrors answers with an error message that echoes the request's
// Authorization header, as some proxies do: the error says what failed, without the token.
func TestEchoedTokenIsCutFromErrors(t *testing.T) {
	gh, c := pollServer(t)
	gh.Fail("GET /repos/acme/site/commits/main", 500, "boom: Authorization: Bearer "+testToken)
	_, _, _, err := c.HeadSHA(context.Background(), "acme", "site", "main", "")
	if err == nil || strings.Contains(err.Error(), testToken) || !strings.Contains(err.Error(), "boom: Authorization: Bearer [token]") {
		t.Errorf("error %v", err)
	}
}
