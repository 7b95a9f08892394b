package github_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/miaobu/miaobu/internal/detect"
	"github.com/miaobu/miaobu/internal/github"
)

// contentsServer serves files (path → content) of acme/site at ref through the contents API,
// like GitHub: base64 with line breaks for a file, a listing for a directory, 404 otherwise.
// It fails the test on any other request and counts the requests per path.
func contentsServer(t *testing.T, ref string, files map[string]string) (*github.Client, map[string]int) {
	t.Helper()
	var mu sync.Mutex
	hits := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		const prefix = "/repos/acme/site/contents/"
		if r.Method != "GET" || !strings.HasPrefix(r.URL.Path, prefix) || r.URL.RawQuery != "ref="+ref ||
			r.Header.Get("Authorization") != "Bearer "+testToken {
			t.Errorf("unexpected request %s %s?%s", r.Method, r.URL.Path, r.URL.RawQuery)
			http.Error(w, "{}", http.StatusTeapot)
			return
		}
		name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, prefix), "/")
		mu.Lock()
		hits[name]++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if data, ok := files[name]; ok {
			enc := base64.StdEncoding.EncodeToString([]byte(data))
			var lines []string
			for len(enc) > 60 {
				lines, enc = append(lines, enc[:60]), enc[60:]
			}
			json.NewEncoder(w).Encode(map[string]any{"type": "file", "encoding": "base64", "name": path.Base(name), "path": name,
				"size": len(data), "content": strings.Join(append(lines, enc), "\n") + "\n"})
			return
		}
		seen := map[string]map[string]any{}
		for p, data := range files {
			rest, ok := strings.CutPrefix(p, name+"/")
			if name == "" {
				rest, ok = p, true
			}
			if !ok {
				continue
			}
			child, _, isDir := strings.Cut(rest, "/")
			item := map[string]any{"type": "file", "name": child, "path": path.Join(name, child), "size": len(data)}
			if isDir {
				item = map[string]any{"type": "dir", "name": child, "path": path.Join(name, child), "size": 0}
			}
			seen[child] = item
		}
		if len(seen) == 0 {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"message":"Not Found"}`))
			return
		}
		var list []map[string]any
		for _, item := range seen {
			list = append(list, item)
		}
		sort.Slice(list, func(i, j int) bool { return list[i]["name"].(string) > list[j]["name"].(string) })
		json.NewEncoder(w).Encode(list)
	}))
	t.Cleanup(srv.Close)
	c, err := github.New(github.Options{APIURL: srv.URL, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	return c, hits
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
	if hits["packages/web/angular.json"] != 1 {
		t.Errorf("missing file fetched %d times, want 1 (cached)", hits["packages/web/angular.json"])
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
	for p, n := range hits {
		if n > 1 {
			t.Errorf("%s fetched %d times", p, n)
		}
	}
	if len(hits) > 6 {
		t.Errorf("detection made %d requests (%v), want a handful", len(hits), hits)
	}
}
