package serving

import "testing"

func TestCacheControl(t *testing.T) {
	for _, tc := range []struct {
		path string
		want string
	}{
		{"assets/index-BdKz3x9a.js", CacheImmutable},
		{"static/js/main.3f9a1c2e.chunk.js", CacheImmutable},
		{"static/css/main.3f9a1c2e.css", CacheImmutable},
		{"_next/static/chunks/webpack-0a1b2c3d4e5f6a7b.js", CacheImmutable},
		{"index.html", CacheRevalidate},
		{"about/index.html", CacheRevalidate},
		{"page-3f9a1c2e.html", CacheRevalidate},
		{"favicon.ico", CacheRevalidate},
		{"assets/logo.svg", CacheRevalidate},
		{"robots.txt", CacheRevalidate},
		{"jquery-migrate.js", CacheRevalidate},
		{"service-worker.js", CacheRevalidate},
		{"fonts/Inter-Regular.woff2", CacheRevalidate},
	} {
		if got := CacheControl(tc.path); got != tc.want {
			t.Errorf("CacheControl(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

func TestContentType(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"index.html", "text/html; charset=utf-8"},
		{"a/b.CSS", "text/css; charset=utf-8"},
		{"app.js", "text/javascript; charset=utf-8"},
		{"data.json", "application/json; charset=utf-8"},
		{"logo.svg", "image/svg+xml; charset=utf-8"},
		{"photo.png", "image/png"},
		{"font.woff2", "font/woff2"},
		{"blob", "application/octet-stream"},
	} {
		if got := ContentType(tc.path); got != tc.want {
			t.Errorf("ContentType(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}
