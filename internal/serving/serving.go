// Package serving owns how a published file is served: the local target's sites by Host, the site
// path a request names, its Content-Type and its cache policy, shared by the local target and the
// object-storage upload so both send the same headers.
package serving

import (
	"mime"
	"net/url"
	"path"
	"regexp"
	"strings"
)

// CleanPath returns the site path a request's URL path names: rooted, with "." and ".." resolved
// and no empty segments, so it never leaves the site and never starts with "//".
func CleanPath(urlPath string) string {
	return path.Clean("/" + urlPath)
}

// DirectoryLocation returns where to redirect a request for a directory whose URL path lacks the
// trailing slash: the cleaned path with the slash, escaped, and the query. It is always a path of
// the same site: never a scheme-relative "//host", and a backslash, which browsers read as a slash
// ("/\host"), is sent escaped.
func DirectoryLocation(urlPath, rawQuery string) string {
	dir := CleanPath(urlPath)
	if dir != "/" {
		dir += "/"
	}
	return (&url.URL{Path: dir, RawQuery: rawQuery}).String()
}

// CacheImmutable is the Cache-Control of files whose names carry a content hash.
const CacheImmutable = "public, max-age=31536000, immutable"

// CacheRevalidate is the Cache-Control of everything else: HTML and unhashed files are revalidated on every visit.
const CacheRevalidate = "no-cache"

// hashedName matches a file name with a content hash of 8 or more hex or base64url characters
// between dots or after a dash, such as index-BdKz3x9a.js, main.3f9a1c2e.css or app.3f9a1c2e.chunk.js.
var hashedName = regexp.MustCompile(`[.-]([0-9a-f]{8,}|[A-Za-z0-9_]{8,})(\.chunk)?\.[A-Za-z0-9]+$`)

// hasDigitAndLetter reports whether s mixes digits with letters, as a hash does and a word does not.
func hasDigitAndLetter(s string) bool {
	return strings.ContainsAny(s, "0123456789") && strings.IndexFunc(s, func(r rune) bool {
		return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
	}) >= 0
}

// IsHashedAsset reports whether the file at slash path p carries a content hash in its name and is not HTML.
func IsHashedAsset(p string) bool {
	name := path.Base(p)
	if isHTML(name) || name == "sw.js" || name == "service-worker.js" {
		return false
	}
	m := hashedName.FindStringSubmatch(name)
	return m != nil && hasDigitAndLetter(m[1])
}

// CacheControl returns the Cache-Control header for the file at slash path p.
func CacheControl(p string) string {
	if IsHashedAsset(p) {
		return CacheImmutable
	}
	return CacheRevalidate
}

var extraTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".htm":         "text/html; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".json":        "application/json; charset=utf-8",
	".map":         "application/json; charset=utf-8",
	".webmanifest": "application/manifest+json; charset=utf-8",
	".txt":         "text/plain; charset=utf-8",
	".md":          "text/markdown; charset=utf-8",
	".xml":         "application/xml; charset=utf-8",
	".svg":         "image/svg+xml; charset=utf-8",
	".csv":         "text/csv; charset=utf-8",
	".wasm":        "application/wasm",
	".woff":        "font/woff",
	".woff2":       "font/woff2",
	".ico":         "image/x-icon",
	".png":         "image/png",
	".jpg":         "image/jpeg",
	".jpeg":        "image/jpeg",
	".gif":         "image/gif",
	".webp":        "image/webp",
	".avif":        "image/avif",
	".pdf":         "application/pdf",
}

// ContentType returns the Content-Type for the file at slash path p, with a UTF-8 charset for text,
// independent of the machine's MIME tables so every agent serves the same headers.
func ContentType(p string) string {
	ext := strings.ToLower(path.Ext(p))
	if t, ok := extraTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		if strings.HasPrefix(t, "text/") && !strings.Contains(t, "charset") {
			t += "; charset=utf-8"
		}
		return t
	}
	return "application/octet-stream"
}

// isHTML reports whether name is an HTML page.
func isHTML(name string) bool {
	ext := strings.ToLower(path.Ext(name))
	return ext == ".html" || ext == ".htm"
}

// IsHTML reports whether the file at slash path p is an HTML page.
func IsHTML(p string) bool { return isHTML(path.Base(p)) }
