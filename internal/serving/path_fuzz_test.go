package serving

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"testing"
)

// checkLocation fails the test unless loc, a redirect sent for a request to urlPath, leads to the
// directory the cleaned path names on the same site, also in a browser that reads "\" as "/"; it
// returns the query loc carries.
func checkLocation(t *testing.T, urlPath, loc string) string {
	t.Helper()
	if loc == "" || loc[0] != '/' || (len(loc) > 1 && (loc[1] == '/' || loc[1] == '\\')) {
		t.Fatalf("path %q: Location %q is not a path of the site", urlPath, loc)
	}
	// Only what comes before the query can name a host.
	locPath, query, _ := strings.Cut(loc, "?")
	base, _ := url.Parse("https://site.example/a/b")
	for _, seen := range []string{locPath, strings.ReplaceAll(locPath, `\`, "/")} {
		ref, err := url.Parse(seen)
		if err != nil {
			t.Fatalf("path %q: Location %q does not parse: %v", urlPath, loc, err)
		}
		if to := base.ResolveReference(ref); to.Host != base.Host || to.Scheme != base.Scheme {
			t.Fatalf("path %q: Location %q leads to %s", urlPath, loc, to)
		}
	}
	ref, _ := url.Parse(locPath)
	want := CleanPath(urlPath)
	if want != "/" {
		want += "/"
	}
	if ref.Path != want {
		t.Fatalf("path %q: Location %q names %q, want the cleaned %q", urlPath, loc, ref.Path, want)
	}
	return query
}

func FuzzDirectoryLocation(f *testing.F) {
	for _, seed := range [][2]string{
		{"/docs", ""}, {"/docs", "x=1"}, {"//evil.com/..", ""}, {"//evil.com", "next=//evil.com"},
		{`/\evil.com`, ""}, {`/\\evil.com/..`, ""}, {"/./", ""}, {"/.", ""}, {"", ""}, {"/a/../../b", ""},
		{"/%2Fevil.com", ""}, {"/a b?#", "q=#frag"}, {"/:x", ""}, {`\/evil.com`, ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, urlPath, rawQuery string) {
		if _, err := url.ParseRequestURI("/?" + rawQuery); err != nil {
			t.Skip("no request carries this query: the server refuses it")
		}
		clean := CleanPath(urlPath)
		if !strings.HasPrefix(clean, "/") || strings.Contains(clean, "//") || path.Clean(clean) != clean ||
			clean == "/.." || strings.HasPrefix(clean, "/../") {
			t.Fatalf("CleanPath(%q) = %q", urlPath, clean)
		}
		if query := checkLocation(t, urlPath, DirectoryLocation(urlPath, rawQuery)); query != rawQuery {
			t.Fatalf("path %q: the query %q became %q", urlPath, rawQuery, query)
		}

		// What net/http makes of it on the way out (it escapes bytes outside ASCII) must hold as well.
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path, r.URL.RawQuery = urlPath, rawQuery
		w := httptest.NewRecorder()
		http.Redirect(w, r, DirectoryLocation(urlPath, rawQuery), http.StatusMovedPermanently)
		checkLocation(t, urlPath, w.Header().Get("Location"))
	})
}
