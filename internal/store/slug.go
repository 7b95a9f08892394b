package store

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// MaxSlugLength is the longest slug a project can have.
const MaxSlugLength = 50

// Slugify turns a project name into a slug: lowercase ASCII letters, digits and single dashes,
// at most MaxSlugLength characters, never empty and never containing "--" (which separates a slug
// from a deployment id in preview host names).
func Slugify(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range norm.NFKD.String(name) {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue // accents dropped by decomposition: é → e
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case r >= 'A' && r <= 'Z':
			b.WriteRune(unicode.ToLower(r))
			dash = false
		default:
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
				dash = true
			}
		}
	}
	slug := strings.Trim(b.String(), "-")
	if len(slug) > MaxSlugLength {
		slug = strings.TrimRight(slug[:MaxSlugLength], "-")
	}
	if slug == "" {
		// A name with no ASCII letters or digits, such as 博客, still gets a stable slug.
		sum := sha256.Sum256([]byte(name))
		slug = "site-" + hex.EncodeToString(sum[:4])
	}
	return slug
}

// UniqueSlug returns Slugify(base), or it with a numeric suffix when taken says it is in use.
func UniqueSlug(base string, taken func(string) bool) string {
	slug := Slugify(base)
	if !taken(slug) {
		return slug
	}
	for n := 2; ; n++ {
		suffix := "-" + strconv.Itoa(n)
		candidate := slug
		if len(candidate)+len(suffix) > MaxSlugLength {
			candidate = strings.TrimRight(candidate[:MaxSlugLength-len(suffix)], "-")
		}
		candidate += suffix
		if !taken(candidate) {
			return candidate
		}
	}
}
