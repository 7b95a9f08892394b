package github

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
)

// VerifySignature reports whether header is "sha256=<hex>" carrying the HMAC-SHA256 of body under
// secret; the comparison is constant-time and an empty secret never verifies.
func VerifySignature(secret []byte, header string, body []byte) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(secret) == 0 || len(hexSig) != sha256.Size*2 {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// Sign returns the X-Hub-Signature-256 value GitHub sends for body under secret.
func Sign(secret []byte, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// IsFormContentType reports whether a Content-Type header is a form-encoded webhook body.
func IsFormContentType(contentType string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(contentType)), "application/x-www-form-urlencoded")
}

// FormPayload returns the JSON inside a form-encoded body's payload field.
func FormPayload(body []byte) ([]byte, error) {
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, err
	}
	payload := values.Get("payload")
	if payload == "" {
		return nil, errors.New("form body has no payload field")
	}
	return []byte(payload), nil
}

// Push is the part of a push payload that a deployment needs.
type Push struct {
	Ref        string `json:"ref"`
	After      string `json:"after"`
	Deleted    bool   `json:"deleted"`
	HeadCommit *struct {
		ID      string `json:"id"`
		Message string `json:"message"`
		Author  struct {
			Name string `json:"name"`
		} `json:"author"`
	} `json:"head_commit"`
}

// ErrInvalidPayload is returned for a body that is not a push payload.
var ErrInvalidPayload = errors.New("invalid push payload")

// ParsePush decodes the fields of a push payload that a deployment needs.
func ParsePush(payload []byte) (*Push, error) {
	var p Push
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, ErrInvalidPayload
	}
	if p.Ref == "" {
		return nil, ErrInvalidPayload
	}
	return &p, nil
}

// zeroSHA is the "after" of a push that deletes a ref.
const zeroSHA = "0000000000000000000000000000000000000000"

// IsDeletion reports whether the push deletes its ref.
func (p *Push) IsDeletion() bool {
	return p.Deleted || p.After == zeroSHA
}

// Branch returns the branch the push updates and true, or "" and false for a tag or other ref.
func (p *Push) Branch() (string, bool) {
	return strings.CutPrefix(p.Ref, "refs/heads/")
}

// Commit returns the pushed commit's SHA, message and author name.
func (p *Push) Commit() (sha, message, author string) {
	sha = p.After
	if p.HeadCommit != nil {
		if p.HeadCommit.ID != "" {
			sha = p.HeadCommit.ID
		}
		message, author = p.HeadCommit.Message, p.HeadCommit.Author.Name
	}
	return sha, message, author
}

// ValidSHA reports whether s looks like a full SHA-1 or SHA-256 commit id in lowercase hex.
func ValidSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
