package github_test

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/miaobu/miaobu/internal/detect"
	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/github/githubtest"
)

// contentsServer serves files (path → content) of acme/site at ref through the fake GitHub, which
// fails the test on any other request; hits counts the contents requests per path.
func contentsServer(t *testing.T, ref string, files map[string]string) (c *github.Client, hits func() map[string]int) {
	t.Helper()
	gh := githubtest.New(t, testToken)
	gh.AddRepo(githubtest.Repo{FullName: "acme/site", DefaultBranch: "main", Branches: map[string]string{"main": ref}, Files: files})
	c, err := github.New(github.Options{APIURL: gh.URL, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	return c, func() map[string]int {
		counts := map[string]int{}
		for _, req := range gh.Requests() {
			if name, ok := strings.CutPrefix(req, "GET /repos/acme/site/contents/"); ok {
				counts[strings.TrimSuffix(name, "/")]++
			}
		}
		return counts
	}
}

var monorepo = map[string]string{
	"package.json":              `{"private":true}`,
	"pnpm-lock.yaml":            "lockfileVersion: '9.0'\n",
	".nvmrc":                    "20\n",
	"README.md":                 strings.Repeat("A long line of documentation. ", 40),
	"packages/web/package.json": `{"scripts":{"build":"vite build"},"devDependencies":{"vite":"^5.2.0"}}`,
	"packages/web/index.html":   "<!doctype html>",
	"packages/web/src/main.ts":  "console.log(1)",
	"packages/api/package.json": `{"scripts":{"build":"tsc"}}`,
}

func TestContentsFS(t *testing.T) {
	c, _ := contentsServer(t, "abc123", monorepo)
	fsys := c.ContentsFS(ctx, "acme", "site", "abc123")
	if err := fstest.TestFS(fsys, "package.json", "README.md", "packages/web/src/main.ts", "packages/api/package.json"); err != nil {
		t.Fatal(err)
	}
	data, err := fs.ReadFile(fsys, "README.md")
	if err != nil || string(data) != monorepo["README.md"] {
		t.Errorf("ReadFile(README.md) = %q, %v", data, err)
	}
}

func TestContentsFSNotFound(t *testing.T) {
	c, hits := contentsServer(t, "main", monorepo)
	fsys := c.ContentsFS(ctx, "acme", "site", "main")
	for range 2 {
		if _, err := fs.ReadFile(fsys, "packages/web/angular.json"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadFile of a missing file: %v, want fs.ErrNotExist", err)
		}
	}
	if n := hits()["packages/web/angular.json"]; n != 1 {
		t.Errorf("missing file fetched %d times, want 1 (cached)", n)
	}
	if _, err := fs.Stat(fsys, "../etc/passwd"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Stat outside the repository: %v, want fs.ErrInvalid", err)
	}
}

func TestContentsFSErrors(t *testing.T) {
	c := fakeGitHub(t, "/", call{method: "GET", path: "/repos/acme/site/contents/package.json", query: "ref=main", status: 401, reply: `{"message":"Bad credentials"}`})
	_, err := fs.ReadFile(c.ContentsFS(ctx, "acme", "site", "main"), "package.json")
	checkError(t, err, github.ErrUnauthorized, "")
	if errors.Is(err, fs.ErrNotExist) {
		t.Error("a rejected token reads as a missing file")
	}
}

func TestDetectThroughContentsFS(t *testing.T) {
	c, hits := contentsServer(t, "abc123", monorepo)
	s, err := detect.Detect(c.ContentsFS(ctx, "acme", "site", "abc123"), "packages/web")
	if err != nil {
		t.Fatal(err)
	}
	if s.Framework != "vite" || s.InstallCommand != "pnpm install --frozen-lockfile" || s.BuildCommand != "pnpm run build" || s.OutputDirectory != "dist" || s.NodeVersion != "20" {
		t.Errorf("Detect = %+v", s)
	}
	counts := hits()
	for p, n := range counts {
		if n > 1 {
			t.Errorf("%s fetched %d times", p, n)
		}
	}
	if len(counts) > 6 {
		t.Errorf("detection made %d requests (%v), want a handful", len(counts), counts)
	}
}
