package github

import (
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

func FuzzParsePush(f *testing.F) {
	f.Add([]byte(`{"ref":"refs/heads/main","after":"` + strings.Repeat("a", 40) + `"}`))
	f.Add([]byte(`{"ref":"refs/heads/main","deleted":true,"head_commit":null}`))
	f.Add([]byte(`payload=%7B%7D`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParsePush(body)
		if err != nil {
			return
		}
		p.Branch()
		p.Commit()
		p.IsDeletion()
		if payload, err := FormPayload(body); err == nil {
			_, _ = ParsePush(payload)
		}
	})
}
