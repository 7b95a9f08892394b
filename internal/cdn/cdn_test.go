package cdn

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/cdn/cdnfake"
)

const (
	keyID  = "AKIDcdn0001"
	secret = "cdnSecret0001"
)

func TestPlanPurge(t *testing.T) {
	for _, tc := range []struct {
		name    string
		changed []string
		urls    []string
		dirs    []string
	}{
		{"one page", []string{"about/index.html"}, []string{"about", "about/", "about/index.html"}, nil},
		{"root page", []string{"index.html"}, []string{"", "index.html"}, nil},
		{"hashed assets are never purged", []string{"assets/index-BdKz3x9a.js", "assets/logo.svg"}, []string{"assets/logo.svg"}, nil},
		{"odd names are escaped", []string{"docs/a b+c%41.html"}, []string{"docs/a%20b+c%2541.html"}, nil},
		{"page not named index", []string{"blog/post.html", "404.html"}, []string{"404.html", "blog/post.html"}, nil},
		{"nothing", nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := PlanPurge("cdn.example.com", tc.changed, 0)
			if !slices.Equal(p.URLs, prefixed(tc.urls)) || !slices.Equal(p.Dirs, prefixed(tc.dirs)) {
				t.Errorf("PlanPurge(%q) = %+v, want URLs %q dirs %q", tc.changed, p, prefixed(tc.urls), prefixed(tc.dirs))
			}
		})
	}
}

func prefixed(paths []string) []string {
	var out []string
	for _, p := range paths {
		out = append(out, "https://cdn.example.com/"+p)
	}
	return out
}

func TestPlanPurgeFoldsIntoDirectories(t *testing.T) {
	var changed []string
	for i := range 30 {
		changed = append(changed, fmt.Sprintf("blog/2024/post%d.html", i), fmt.Sprintf("docs/guide/p%d.html", i))
	}
	changed = append(changed, "index.html", "about.txt")

	p := PlanPurge("cdn.example.com", changed, 10)
	want := Plan{URLs: prefixed([]string{"", "about.txt", "index.html"}), Dirs: prefixed([]string{"blog/2024/", "docs/guide/"})}
	if !slices.Equal(p.URLs, want.URLs) || !slices.Equal(p.Dirs, want.Dirs) {
		t.Errorf("folded plan %+v, want %+v", p, want)
	}

	if p := PlanPurge("cdn.example.com", changed, 1); len(p.URLs) != 0 || !slices.Equal(p.Dirs, prefixed([]string{""})) {
		t.Errorf("plan under a budget of one URL %+v, want the root directory", p)
	}

	if p := PlanPurge("https://cdn.example.com/", []string{"index.html"}, 0); !slices.Equal(p.URLs, prefixed([]string{"", "index.html"})) {
		t.Errorf("a domain written as a URL gives %q", p.URLs)
	}

	if p := PlanPurge("cdn.example.com", changed, 1000); len(p.URLs) != 63 || len(p.Dirs) != 0 {
		t.Errorf("plan within budget has %d URLs and %d dirs, want 63 and 0", len(p.URLs), len(p.Dirs))
	}
}

func TestPlanPurgeBoundsDirectories(t *testing.T) {
	var changed []string
	for i := range 200 {
		changed = append(changed, fmt.Sprintf("s%d/a/p.html", i))
	}
	p := PlanPurge("cdn.example.com", changed, 50)
	if len(p.URLs) > 50 || len(p.Dirs) > maxDirs {
		t.Errorf("plan %d URLs, %d dirs exceeds the budget", len(p.URLs), len(p.Dirs))
	}
}

func TestPurgeSignsAndBatches(t *testing.T) {
	fake := cdnfake.New(t, keyID, secret)
	var plan Plan
	for i := range 2500 {
		plan.URLs = append(plan.URLs, fmt.Sprintf("https://cdn.example.com/p/%d.html", i))
	}
	plan.Dirs = []string{"https://cdn.example.com/blog/"}
	var log bytes.Buffer
	if err := Purge(context.Background(), Config{Endpoint: fake.URL, AccessKeyID: keyID, AccessKeySecret: secret}, plan, &log); err != nil {
		t.Fatal(err)
	}
	calls := fake.Calls()
	var sizes []string
	for _, c := range calls {
		sizes = append(sizes, fmt.Sprint(c.ObjectType, len(c.Paths)))
	}
	if want := []string{"File1000", "File1000", "File500", "Directory1"}; !slices.Equal(sizes, want) {
		t.Errorf("calls %q, want %q", sizes, want)
	}
	if fake.URLCount() != 2501 || fake.Rejected() != 0 {
		t.Errorf("fake counted %d paths, rejected %d requests", fake.URLCount(), fake.Rejected())
	}
	if !strings.Contains(log.String(), "purge plan: 2500 URLs, 1 directories") {
		t.Errorf("log lacks the plan:\n%s", log.String())
	}
}

func TestPurgeFailuresAreErrorsWithoutCredentials(t *testing.T) {
	fake := cdnfake.New(t, keyID, secret)
	plan := PlanPurge("cdn.example.com", []string{"index.html"}, 0)

	err := Purge(context.Background(), Config{Endpoint: fake.URL, AccessKeyID: keyID, AccessKeySecret: "wrong"}, plan, nil)
	if err == nil || fake.Rejected() != 1 {
		t.Fatalf("a wrongly signed purge: err %v, %d rejected", err, fake.Rejected())
	}
	if strings.Contains(err.Error(), keyID) || strings.Contains(err.Error(), "wrong") {
		t.Errorf("error quotes a credential: %v", err)
	}

	fake.FailWith(http.StatusServiceUnavailable)
	if err := Purge(context.Background(), Config{Endpoint: fake.URL, AccessKeyID: keyID, AccessKeySecret: secret}, plan, nil); err == nil {
		t.Error("a failed purge reported success")
	}
	if len(fake.Calls()) != 0 {
		t.Errorf("fake accepted %d calls", len(fake.Calls()))
	}
}

func TestPurgeOfEmptyPlanSendsNothing(t *testing.T) {
	fake := cdnfake.New(t, keyID, secret)
	if err := Purge(context.Background(), Config{Endpoint: fake.URL}, Plan{}, nil); err != nil || len(fake.Calls())+fake.Rejected() != 0 {
		t.Errorf("empty plan: err %v, %d calls", err, len(fake.Calls()))
	}
}
