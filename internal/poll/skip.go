package poll

import "strings"

// skipMarkers are the markers of contract section 7 that skip a commit, in lowercase.
var skipMarkers = []string{"[skip ci]", "[ci skip]", "[no ci]", "[skip miaobu]", "[miaobu skip]"}

// SkipMarker returns the first skip marker in a commit message as it is written there (any case),
// "" when there is none.
func SkipMarker(message string) string {
	// Only ASCII letters are folded, so that offsets in lower are offsets in message.
	lower := []byte(message)
	for i, c := range lower {
		if 'A' <= c && c <= 'Z' {
			lower[i] = c + 'a' - 'A'
		}
	}
	first, end := -1, 0
	for _, marker := range skipMarkers {
		if i := strings.Index(string(lower), marker); i >= 0 && (first < 0 || i < first) {
			first, end = i, i+len(marker)
		}
	}
	if first < 0 {
		return ""
	}
	return message[first:end]
}
