package github

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseDeploymentRealPayload(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("..", "agent", "testdata", "github-payloads", "deployment.payload.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseDeployment(body)
	if err != nil {
		t.Fatal(err)
	}
	want := DeploymentEvent{Action: "created", Repository: "Codertocat/Hello-World", ID: 145988746,
		SHA: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", Ref: "master", Environment: "production", Creator: "Codertocat"}
	if *got != want {
		t.Errorf("ParseDeployment = %+v, want %+v", *got, want)
	}
}

func TestParseDeployment(t *testing.T) {
	sha := strings.Repeat("a", 40)
	deployment := func(fields string) string {
		return `{"action":"created","deployment":{"id":7,"sha":"` + sha + `","ref":"main","environment":"production"` + fields + `}}`
	}
	for _, tc := range []struct {
		name, body string
		fromMiaobu bool
	}{
		{"no payload", deployment(``), false},
		{"empty payload", deployment(`,"payload":{}`), false},
		{"someone else's payload", deployment(`,"payload":{"deploy":{"miaobu":1}}`), false},
		{"miaobu's payload", deployment(`,"payload":{"miaobu":{"deployment_id":42}}`), true},
		{"miaobu's payload as a string", deployment(`,"payload":"{\"miaobu\":{\"deployment_id\":42}}"`), true},
		{"a string payload that is not JSON", deployment(`,"payload":"miaobu"`), false},
		{"null payload", deployment(`,"payload":null`), false},
		{"null creator", deployment(`,"creator":null`), false},
	} {
		got, err := ParseDeployment([]byte(tc.body))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got.ID != 7 || got.SHA != sha || got.Ref != "main" || got.Environment != "production" || got.FromMiaobu != tc.fromMiaobu {
			t.Errorf("%s: ParseDeployment = %+v, want FromMiaobu %v", tc.name, *got, tc.fromMiaobu)
		}
	}
}

func TestParseDeploymentRefuses(t *testing.T) {
	sha := strings.Repeat("b", 40)
	for _, body := range []string{
		``, `null`, `[]`, `{}`, `{"deployment":null}`, `{"deployment":[]}`,
		`{"deployment":{"sha":"` + sha + `","environment":"production"}}`,
		`{"deployment":{"id":0,"sha":"` + sha + `","environment":"production"}}`,
		`{"deployment":{"id":-1,"sha":"` + sha + `","environment":"production"}}`,
		`{"deployment":{"id":"7","sha":"` + sha + `","environment":"production"}}`,
		`{"deployment":{"id":7,"sha":"main","environment":"production"}}`,
		`{"deployment":{"id":7,"sha":"` + strings.ToUpper(sha) + `","environment":"production"}}`,
		`{"deployment":{"id":7,"sha":"` + sha + `"}}`,
		`{"deployment":{"id":7,"sha":"` + sha + `","environment":1}}`,
		`{"deployment":{"id":7,"sha":"` + sha + `","environment":"production","creator":"x"}}`,
		`{"deployment":{"id":7,"sha":"` + sha + `","environment":"production"}} trailing`,
	} {
		if e, err := ParseDeployment([]byte(body)); err == nil {
			t.Errorf("accepted %s as %+v", body, e)
		}
	}
}

// FuzzParseDeployment feeds arbitrary bodies: never a panic, and what is accepted is valid JSON with
// a positive id, a full SHA and an environment, and reads the same when written back.
func FuzzParseDeployment(f *testing.F) {
	sha := strings.Repeat("c", 40)
	f.Add([]byte(`{"deployment":{"id":1,"sha":"` + sha + `","ref":"main","environment":"production","payload":{"miaobu":{"deployment_id":3}}}}`))
	f.Add([]byte(`{"deployment":{"id":9007199254740993,"sha":"` + sha + `","environment":"preview/pr-1","payload":"{\"miaobu\":1}","creator":{"login":"\u00e9"}}}`))
	f.Add([]byte(`{"deployment":{"id":1e3,"sha":"` + sha + `","environment":"\xff"}}`))
	if body, err := os.ReadFile(filepath.Join("..", "agent", "testdata", "github-payloads", "deployment.payload.json")); err == nil {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := ParseDeployment(body)
		if err != nil {
			return
		}
		if !json.Valid(body) || e.ID <= 0 || !ValidSHA(e.SHA) || e.Environment == "" {
			t.Fatalf("accepted %q as %+v", body, e)
		}
		payload := map[string]any{}
		if e.FromMiaobu {
			payload[PayloadKey] = map[string]any{}
		}
		again, err := json.Marshal(map[string]any{"action": e.Action, "repository": map[string]any{"full_name": e.Repository},
			"deployment": map[string]any{"id": e.ID, "sha": e.SHA, "ref": e.Ref, "environment": e.Environment, "payload": payload,
				"creator": map[string]any{"login": e.Creator}}})
		if err != nil {
			t.Fatal(err)
		}
		if back, err := ParseDeployment(again); err != nil || *back != *e {
			t.Fatalf("%+v written back as %s reads %+v, %v", e, again, back, err)
		}
	})
}
