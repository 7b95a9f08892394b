package github

import (
	"bytes"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// GitHub's published test vector for X-Hub-Signature-256.
const (
	vectorSecret    = "It's a Secret to Everybody"
	vectorBody      = "Hello, World!"
	vectorSignature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
)

func TestSignatureVector(t *testing.T) {
	if got := Sign([]byte(vectorSecret), []byte(vectorBody)); got != vectorSignature {
		t.Fatalf("Sign = %s, want %s", got, vectorSignature)
	}
	for _, tc := range []struct {
		name, secret, header, body string
		want                       bool
	}{
		{"vector", vectorSecret, vectorSignature, vectorBody, true},
		{"other body", vectorSecret, vectorSignature, vectorBody + " ", false},
		{"other secret", "It's a Secret to Nobody", vectorSignature, vectorBody, false},
		{"empty secret", "", Sign(nil, []byte(vectorBody)), vectorBody, false},
		{"no prefix", vectorSecret, strings.TrimPrefix(vectorSignature, "sha256="), vectorBody, false},
		{"sha1 prefix", vectorSecret, "sha1=" + strings.TrimPrefix(vectorSignature, "sha256="), vectorBody, false},
		{"truncated", vectorSecret, vectorSignature[:len(vectorSignature)-2], vectorBody, false},
		{"not hex", vectorSecret, "sha256=" + strings.Repeat("z", 64), vectorBody, false},
		{"empty header", vectorSecret, "", vectorBody, false},
	} {
		if got := VerifySignature([]byte(tc.secret), tc.header, []byte(tc.body)); got != tc.want {
			t.Errorf("%s: VerifySignature = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParsePush(t *testing.T) {
	for _, tc := range []struct {
		name, body     string
		wantErr        bool
		branch         string
		isBranch, gone bool
		sha            string
	}{
		{"branch push", `{"ref":"refs/heads/main","after":"` + strings.Repeat("a", 40) + `","head_commit":{"id":"` + strings.Repeat("a", 40) + `","message":"m","author":{"name":"n"}}}`, false, "main", true, false, strings.Repeat("a", 40)},
		{"branch deletion", `{"ref":"refs/heads/main","after":"0000000000000000000000000000000000000000","deleted":true,"head_commit":null}`, false, "main", true, true, "0000000000000000000000000000000000000000"},
		{"tag", `{"ref":"refs/tags/v1","after":"` + strings.Repeat("b", 40) + `"}`, false, "", false, false, strings.Repeat("b", 40)},
		{"no ref", `{"after":"x"}`, true, "", false, false, ""},
		{"not json", `nope`, true, "", false, false, ""},
		{"ref of wrong type", `{"ref":1}`, true, "", false, false, ""},
	} {
		p, err := ParsePush([]byte(tc.body))
		if (err != nil) != tc.wantErr {
			t.Fatalf("%s: err %v", tc.name, err)
		}
		if err != nil {
			continue
		}
		branch, ok := p.Branch()
		sha, _, _ := p.Commit()
		if branch != tc.branch || ok != tc.isBranch || p.IsDeletion() != tc.gone || sha != tc.sha {
			t.Errorf("%s: branch %q %v deletion %v sha %q", tc.name, branch, ok, p.IsDeletion(), sha)
		}
	}
}

func TestNewWebhookSecret(t *testing.T) {
	a, err := NewWebhookSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewWebhookSecret()
	if len(a) != 43 || a == b || strings.ContainsAny(a, "+/=") {
		t.Fatalf("secrets %q %q", a, b)
	}
}

// FuzzParsePayload feeds arbitrary bodies to the push and pull_request parsers: never a panic,
// nothing that is not valid JSON is accepted, and an accepted pull request has an action and a
// positive number.
func FuzzParsePayload(f *testing.F) {
	for _, name := range []string{"pull_request.opened.json", "pull_request.labeled.fork.json", "pull_request.synchronize.deleted-fork.json"} {
		f.Add(readFixture(f, name))
	}
	f.Add([]byte(`{"action":"opened","number":1,"pull_request":{"head":{"repo":null},"base":{}}}`))
	f.Add([]byte(`{"action":"closed","pull_request":{"number":3,"merged":true,"head":{},"base":{}},"label":null}`))
	f.Add([]byte(`{"ref":"refs/heads/main","after":"` + strings.Repeat("a", 40) + `"}`))
	f.Add([]byte(`{"ref":"refs/heads/main","deleted":true,"head_commit":null}`))
	f.Add([]byte(`{"ref":"refs/heads/main","head_commit":{"id":"x","author":{"name":"\u00e9"}}} `))
	f.Add([]byte(`{"ref":"refs/heads/main"} trailing`))
	f.Add([]byte(`payload=%7B%7D`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if payload, err := DecodeFormPayload(bytes.Clone(body)); err == nil {
			_, _ = ParsePush(payload)
			_, _ = ParsePullRequest(payload)
		}
		if p, err := ParsePush(body); err == nil {
			if !json.Valid(body) {
				t.Fatalf("accepted invalid JSON %q as a push", body)
			}
			p.Branch()
			p.Commit()
			p.IsDeletion()
		}
		if p, err := ParsePullRequest(body); err == nil {
			if !json.Valid(body) || p.Action == "" || p.Number <= 0 {
				t.Fatalf("accepted %q as pull request %+v", body, p)
			}
			if p.HeadRepo == "" && !p.IsFork() {
				t.Fatalf("a pull request without a head repository is not a fork: %q", body)
			}
		}
	})
}

// TestDecodeFormPayloadInPlace checks that a form body is decoded over itself: a 1 MiB payload
// costs no allocation, so a flood of form bodies holds no more memory than their bytes.
func TestDecodeFormPayloadInPlace(t *testing.T) {
	want := `{"ref":"refs/heads/main","message":"a b+c%"}` + strings.Repeat(" ", 1<<20)
	form := []byte("other=1&payload=" + url.QueryEscape(want))
	body := bytes.Clone(form)
	payload, err := DecodeFormPayload(body)
	if err != nil || string(payload) != want {
		t.Fatalf("decoded %.60q…, %v", payload, err)
	}
	if &payload[0] != &body[len("other=1&payload=")] {
		t.Fatal("the payload is a copy, not the body decoded in place")
	}
	allocs := testing.AllocsPerRun(10, func() {
		copy(body, form)
		if _, err := DecodeFormPayload(body); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("decoding a 1 MiB form body allocates %v times", allocs)
	}
}

// FuzzDecodeFormPayload checks the in-place decoder against url.ParseQuery: the same payload, or
// an error where ParseQuery fails or finds no payload.
func FuzzDecodeFormPayload(f *testing.F) {
	f.Add("payload=" + url.QueryEscape(`{"ref":"refs/heads/main","after":"a b+c"}`))
	f.Add("a=1&payload=%7B%7D&payload=second")
	f.Add("payload=&payload=x")
	f.Add("pay%6coad=x")
	f.Add("payload=%zz")
	f.Add("payload=x;y=1")
	f.Add("&&payload=%41+%2b&b")
	f.Add("payload=%4")
	f.Fuzz(func(t *testing.T, body string) {
		if strings.Count(body, "&") >= 10000 {
			return // ParseQuery refuses that many fields; the decoder has no such limit
		}
		got, err := DecodeFormPayload([]byte(body))
		values, want := url.ParseQuery(body)
		if want == nil && values.Get("payload") == "" {
			want = ErrInvalidForm
		}
		if (err == nil) != (want == nil) {
			t.Fatalf("%q: decoder error %v, ParseQuery error %v", body, err, want)
		}
		if err == nil && string(got) != values.Get("payload") {
			t.Fatalf("%q: decoded %q, ParseQuery %q", body, got, values.Get("payload"))
		}
	})
}

// FuzzParsePushFields builds push payloads with encoding/json and checks ParsePush reads back
// exactly the fields that were written, whatever their text.
func FuzzParsePushFields(f *testing.F) {
	f.Add("refs/heads/main", strings.Repeat("a", 40), false, true, "Fix: \"quotes\"\n", "Ada", "x", false, "src/a.ts", "docs/b.md")
	f.Add("refs/tags/v1", "", true, false, "", "", "", true, "", "")
	f.Add("refs/heads/\xff", "\u2028", false, true, "\x00", "é", "\xc3", false, "a\xffb", "a\xfeb")
	f.Fuzz(func(t *testing.T, ref, after string, deleted, hasHead bool, message, author, filler string, forced bool, file1, file2 string) {
		commits := []any{
			map[string]any{"id": filler, "added": []string{file1}, "modified": []string{}, "removed": nil},
			map[string]any{"id": after, "modified": []string{file2, file1}, "removed": []string{file2}},
		}
		payload := map[string]any{"ref": ref, "before": filler, "after": after, "deleted": deleted, "forced": forced,
			"head_commit": nil, "commits": commits,
			"repository": map[string]any{"full_name": filler, "ref": "not this one", "topics": []any{filler, 1.5, nil}}}
		if hasHead {
			payload["head_commit"] = map[string]any{"id": after, "message": message, "author": map[string]any{"name": author, "email": filler}}
		}
		body, err := json.Marshal(payload)
		if err != nil {
			t.Fatal(err)
		}
		var want struct {
			Ref     string `json:"ref"`
			Before  string `json:"before"`
			After   string `json:"after"`
			Commits []struct {
				Added    []string `json:"added"`
				Modified []string `json:"modified"`
			} `json:"commits"`
			HeadCommit *struct {
				Message string `json:"message"`
				Author  struct {
					Name string `json:"name"`
				} `json:"author"`
			} `json:"head_commit"`
		}
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatal(err)
		}
		p, err := ParsePush(body)
		if want.Ref == "" {
			if err == nil {
				t.Fatalf("accepted an empty ref: %s", body)
			}
			return
		}
		if err != nil {
			t.Fatalf("refused %s: %v", body, err)
		}
		if p.Ref != want.Ref || p.Before != want.Before || p.After != want.After || p.Deleted != deleted || p.Forced != forced ||
			(p.HeadCommit != nil) != hasHead {
			t.Fatalf("read %+v from %s", p, body)
		}
		files := []string{want.Commits[0].Added[0], want.Commits[1].Modified[0]}
		slices.Sort(files)
		if p.Commits != 2 || !slices.Equal(p.Files, slices.Compact(files)) {
			t.Fatalf("read %d commits and files %q from %s", p.Commits, p.Files, body)
		}
		if hasHead && (p.HeadCommit.ID != want.After || p.HeadCommit.Message != want.HeadCommit.Message || p.HeadCommit.AuthorName != want.HeadCommit.Author.Name) {
			t.Fatalf("read head commit %+v from %s", p.HeadCommit, body)
		}
	})
}

func TestParsePushRefusesWrongTypes(t *testing.T) {
	for _, body := range []string{
		`{"ref":1}`, `{"ref":"refs/heads/main","after":2}`, `{"ref":"refs/heads/main","before":[]}`, `{"ref":"refs/heads/main","deleted":"yes"}`,
		`{"ref":"refs/heads/main","head_commit":"abc"}`, `{"ref":"refs/heads/main","head_commit":{"id":1}}`,
		`{"ref":"refs/heads/main","head_commit":{"author":"Ada"}}`, `[]`, `"refs/heads/main"`, `{"ref":"x"`,
		`{"ref":"refs/heads/main","before":1}`, `{"ref":"refs/heads/main","forced":"yes"}`, `{"ref":"refs/heads/main","commits":{}}`,
		`{"ref":"refs/heads/main","commits":[1]}`, `{"ref":"refs/heads/main","commits":[{"added":"a.txt"}]}`,
		`{"ref":"refs/heads/main","commits":[{"modified":[1]}]}`, `{"ref":"refs/heads/main","commits":[{"removed":[null]}]}`,
	} {
		if _, err := ParsePush([]byte(body)); err == nil {
			t.Errorf("accepted %s", body)
		}
	}
}

// BenchmarkParsePush measures extracting the push fields from a real 8.8 KB payload.
func BenchmarkParsePush(b *testing.B) {
	body := readFixture(b, "real/push.with-new-branch.payload.json")
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ParsePush(body); err != nil {
			b.Fatal(err)
		}
	}
}

func TestVerifyDelivery(t *testing.T) {
	secret := []byte("s3cret")
	jsonBody := `{"ref":"refs/heads/main"}`
	form := "payload=" + url.QueryEscape(jsonBody)
	const formType = "application/x-www-form-urlencoded"
	for _, tc := range []struct {
		name, contentType, body, signed string
		payload                         string
		ok                              bool
	}{
		{"JSON signed", "application/jsonBody", jsonBody, jsonBody, jsonBody, true},
		{"JSON signed elsewhere", "application/jsonBody", jsonBody, jsonBody + " ", jsonBody, false},
		{"form, raw body signed (GitHub)", formType, form, form, jsonBody, true},
		{"form, payload signed (Gitea, Forgejo)", formType + "; charset=utf-8", form, jsonBody, jsonBody, true},
		{"form content type in capitals", "Application/X-WWW-Form-Urlencoded", form, jsonBody, jsonBody, true},
		{"JSON body, payload signature", "application/jsonBody", form, jsonBody, form, false},
		{"form without payload, body signed", formType, "other=1", "other=1", "", true},
		{"form without payload, other signature", formType, "other=1", "", "", false},
		{"form, wrong signature", formType, form, "x", jsonBody, false},
	} {
		payload, ok := VerifyDelivery(secret, Sign(secret, []byte(tc.signed)), tc.contentType, []byte(tc.body))
		if ok != tc.ok || string(payload) != tc.payload {
			t.Errorf("%s: VerifyDelivery = %q %v, want %q %v", tc.name, payload, ok, tc.payload, tc.ok)
		}
	}
	if _, ok := VerifyDelivery(nil, Sign(nil, []byte(jsonBody)), "application/jsonBody", []byte(jsonBody)); ok {
		t.Error("an empty secret verified")
	}
}
