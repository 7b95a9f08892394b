package githubtest

import (
	"embed"
	"encoding/json"
	"testing"
)

// payloads are webhook payloads in GitHub's shapes; payloads/README.md says what each is.
//
//go:embed payloads/*.json
var payloads embed.FS

// Payload returns the webhook payload name of payloads/, after edit (when not nil) has changed its
// decoded form.
func Payload(t testing.TB, name string, edit func(map[string]any)) []byte {
	t.Helper()
	body, err := payloads.ReadFile("payloads/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if edit == nil {
		return body
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	edit(doc)
	if body, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	return body
}
