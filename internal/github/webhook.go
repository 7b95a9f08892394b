package github

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/valyala/fastjson"
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

// VerifyDelivery checks the X-Hub-Signature-256 of a webhook body under secret and returns the JSON
// payload the body carries: the body itself, or for a form-encoded body its payload= field (nil when
// it has none). GitHub signs the raw body; Gitea and Forgejo sign the JSON inside payload=, so for
// a form body a signature over either is accepted. A form body is decoded in place (a second copy of
// a large body would be memory nobody bounds), so body must not be used afterwards.
func VerifyDelivery(secret []byte, signatureHeader, contentType string, body []byte) (payload []byte, ok bool) {
	// The raw body is checked first, as decoding overwrites it.
	ok = VerifySignature(secret, signatureHeader, body)
	if !isFormContentType(contentType) {
		return body, ok
	}
	payload, err := DecodeFormPayload(body)
	if err != nil {
		return nil, ok
	}
	return payload, ok || VerifySignature(secret, signatureHeader, payload)
}

// isFormContentType reports whether a Content-Type header is a form-encoded webhook body.
func isFormContentType(contentType string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(contentType)), "application/x-www-form-urlencoded")
}

// ErrInvalidForm is returned for a form-encoded body that url.ParseQuery would refuse, or that has
// no payload field.
var ErrInvalidForm = errors.New("invalid form body")

// DecodeFormPayload returns the JSON inside a form-encoded body's payload field (its first value),
// decoded in place: body is overwritten, so that a large body needs no second copy. It refuses
// what url.ParseQuery refuses (a malformed escape, a semicolon separator) and an empty payload.
func DecodeFormPayload(body []byte) ([]byte, error) {
	var payload []byte
	found := false
	for rest := body; len(rest) > 0; {
		var pair []byte
		pair, rest, _ = bytes.Cut(rest, []byte("&"))
		if bytes.IndexByte(pair, ';') >= 0 {
			return nil, ErrInvalidForm
		}
		if len(pair) == 0 {
			continue
		}
		// Decoding only shortens, and each part is decoded over itself: no part overwrites another.
		key, value, _ := bytes.Cut(pair, []byte("="))
		key, ok := unescapeInPlace(key)
		if !ok {
			return nil, ErrInvalidForm
		}
		if value, ok = unescapeInPlace(value); !ok {
			return nil, ErrInvalidForm
		}
		if !found && string(key) == "payload" {
			payload, found = value, true
		}
	}
	if len(payload) == 0 {
		return nil, ErrInvalidForm
	}
	return payload, nil
}

// unescapeInPlace decodes a query component (%XX escapes, + for space) over itself and returns the
// decoded part, or false for a malformed escape.
func unescapeInPlace(s []byte) ([]byte, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '%':
			var b [1]byte
			if i+2 >= len(s) {
				return nil, false
			}
			if _, err := hex.Decode(b[:], s[i+1:i+3]); err != nil {
				return nil, false
			}
			s[n] = b[0]
			i += 2
		case '+':
			s[n] = ' '
		default:
			s[n] = s[i]
		}
		n++
	}
	return s[:n], true
}

// Push is the part of a push payload that a deployment and the trigger rules need.
type Push struct {
	Ref string
	// Before is the commit the ref pointed at before the push (all zeros for a new ref).
	Before     string
	After      string
	Deleted    bool
	Forced     bool
	HeadCommit *HeadCommit
	// Commits is the length of the payload's commits list, which GitHub cuts at 2048.
	Commits int
	// Files is the union of the commits' added, modified and removed paths, sorted.
	Files []string
}

// HeadCommit is the pushed commit of a push payload.
type HeadCommit struct {
	ID, Message, AuthorName string
}

// ErrInvalidPayload is returned for a body that is not a payload of its event.
var ErrInvalidPayload = errors.New("invalid webhook payload")

// parsers are reused across deliveries: a payload is validated and indexed without allocating,
// several times faster than decoding it with encoding/json, which matters on the webhook's hot
// path. The parser alone lets control characters through inside strings, so the payload is
// validated strictly first.
var parsers fastjson.ParserPool

// parseObject validates payload strictly and calls read with its top-level object, from a pooled
// parser that must not be used after read returns.
func parseObject(payload []byte, read func(v *fastjson.Value) error) error {
	if fastjson.ValidateBytes(payload) != nil {
		return ErrInvalidPayload
	}
	parser := parsers.Get()
	defer parsers.Put(parser)
	v, err := parser.ParseBytes(payload)
	if err != nil || v.Type() != fastjson.TypeObject {
		return ErrInvalidPayload
	}
	return read(v)
}

// ParsePush validates a push payload as JSON and extracts the fields a deployment and the trigger
// rules need; a missing or empty ref, or a field of the wrong type, makes it invalid.
func ParsePush(payload []byte) (*Push, error) {
	var p Push
	if err := parseObject(payload, func(v *fastjson.Value) error { return p.read(v) }); err != nil {
		return nil, err
	}
	return &p, nil
}

// read fills p from a push payload's top-level object.
func (p *Push) read(v *fastjson.Value) error {
	ok := true
	p.Ref, ok = stringField(v, ok, "ref")
	p.Before, ok = stringField(v, ok, "before")
	p.After, ok = stringField(v, ok, "after")
	p.Deleted, ok = boolField(v, ok, "deleted")
	p.Forced, ok = boolField(v, ok, "forced")
	head, ok := objectField(v, ok, "head_commit", false)
	if head != nil {
		p.HeadCommit = &HeadCommit{}
		p.HeadCommit.ID, ok = stringField(head, ok, "id")
		p.HeadCommit.Message, ok = stringField(head, ok, "message")
		var author *fastjson.Value
		author, ok = objectField(head, ok, "author", false)
		p.HeadCommit.AuthorName, ok = stringField(author, ok, "name")
	}
	p.Commits, p.Files, ok = changedFiles(v, ok)
	if !ok || p.Ref == "" {
		return ErrInvalidPayload
	}
	return nil
}

// changedFiles returns the length of a push payload's commits list and the union of their added,
// modified and removed paths, sorted, and whether all is still well.
func changedFiles(v *fastjson.Value, ok bool) (int, []string, bool) {
	list := v.Get("commits")
	if list == nil || list.Type() == fastjson.TypeNull {
		return 0, nil, ok
	}
	commits, err := list.Array()
	if err != nil {
		return 0, nil, false
	}
	var files []string
	for _, commit := range commits {
		if commit.Type() != fastjson.TypeObject {
			return 0, nil, false
		}
		for _, key := range [...]string{"added", "modified", "removed"} {
			paths := commit.Get(key)
			if paths == nil || paths.Type() == fastjson.TypeNull {
				continue
			}
			items, err := paths.Array()
			if err != nil {
				return 0, nil, false
			}
			for _, item := range items {
				file, isString := text(item)
				if !isString {
					return 0, nil, false
				}
				files = append(files, file)
			}
		}
	}
	slices.Sort(files)
	return len(commits), slices.Compact(files), ok
}

// stringField returns the string at key of object v (empty when absent or null) and whether all is
// still well: ok turns false when the field has another type.
func stringField(v *fastjson.Value, ok bool, key string) (string, bool) {
	field := v.Get(key)
	if field == nil || field.Type() == fastjson.TypeNull {
		return "", ok
	}
	s, isString := text(field)
	return s, ok && isString
}

// text returns the text of a JSON string and true, or false for another type. Invalid UTF-8 is
// replaced, as encoding/json does, so what reaches the store and logs is valid text.
func text(v *fastjson.Value) (string, bool) {
	b, err := v.StringBytes()
	if err != nil {
		return "", false
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), true
}

// objectField returns the object at key of object v and whether all is still well: ok turns false
// when the field has another type, or is absent or null while required. An absent or null field
// gives nil, whose fields read as absent too.
func objectField(v *fastjson.Value, ok bool, key string, required bool) (*fastjson.Value, bool) {
	switch field := v.Get(key); {
	case field == nil || field.Type() == fastjson.TypeNull:
		return nil, ok && !required
	case field.Type() != fastjson.TypeObject:
		return nil, false
	default:
		return field, ok
	}
}

// boolField returns the boolean at key of object v (false when absent or null) and whether all is
// still well: ok turns false when the field has another type.
func boolField(v *fastjson.Value, ok bool, key string) (bool, bool) {
	switch field := v.Get(key); {
	case field == nil || field.Type() == fastjson.TypeNull, field.Type() == fastjson.TypeFalse:
		return false, ok
	case field.Type() == fastjson.TypeTrue:
		return true, ok
	}
	return false, false
}

// zeroSHA is the "after" of a push that deletes a ref.
const zeroSHA = "0000000000000000000000000000000000000000"

// IsDeletion reports whether the push deletes its ref.
func (p *Push) IsDeletion() bool {
	return p.Deleted || p.After == zeroSHA
}

// Branch returns the branch the push updates and true, or "" and false for a tag or other ref.
func (p *Push) Branch() (string, bool) {
	branch, ok := strings.CutPrefix(p.Ref, "refs/heads/")
	if !ok {
		return "", false
	}
	return branch, true
}

// Commit returns the pushed commit's SHA, message and author name.
func (p *Push) Commit() (sha, message, author string) {
	sha = p.After
	if p.HeadCommit != nil {
		if p.HeadCommit.ID != "" {
			sha = p.HeadCommit.ID
		}
		message, author = p.HeadCommit.Message, p.HeadCommit.AuthorName
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

// PayloadKey is the key of the payload miaobu gives the deployments it creates on GitHub
// ({"miaobu": {"deployment_id": N}}), by which it knows the deployment events of its own making.
const PayloadKey = "miaobu"

// DeploymentEvent is the part of a deployment event that a deployment made on GitHub needs.
type DeploymentEvent struct {
	// Action is what happened to the deployment: GitHub sends created.
	Action string
	// Repository is the OWNER/REPO the deployment was made in.
	Repository string
	// ID is GitHub's id of the deployment, to which its statuses are posted.
	ID int64
	// SHA is the full SHA of the commit to deploy.
	SHA string
	// Ref is the branch, tag or SHA the deployment was asked for.
	Ref         string
	Environment string
	// Creator is the login of who made the deployment.
	Creator string
	// FromMiaobu says the deployment carries miaobu's payload: miaobu created it itself.
	FromMiaobu bool
}

// ErrInvalidDeployment is returned for a body that is not a deployment event payload.
var ErrInvalidDeployment = errors.New("invalid deployment payload")

// ParseDeployment reads a deployment event payload. It is invalid unless it is a JSON object whose
// deployment has a positive id, a full commit SHA and an environment, every field of the right type.
func ParseDeployment(payload []byte) (*DeploymentEvent, error) {
	var body struct {
		Action     string `json:"action"`
		Repository struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
		Deployment *struct {
			ID          int64           `json:"id"`
			SHA         string          `json:"sha"`
			Ref         string          `json:"ref"`
			Environment string          `json:"environment"`
			Payload     json.RawMessage `json:"payload"`
			Creator     *struct {
				Login string `json:"login"`
			} `json:"creator"`
		} `json:"deployment"`
	}
	if err := json.Unmarshal(payload, &body); err != nil || body.Deployment == nil {
		return nil, ErrInvalidDeployment
	}
	d := body.Deployment
	if d.ID <= 0 || !ValidSHA(d.SHA) || d.Environment == "" {
		return nil, ErrInvalidDeployment
	}
	e := &DeploymentEvent{Action: body.Action, Repository: body.Repository.FullName, ID: d.ID, SHA: d.SHA, Ref: d.Ref,
		Environment: d.Environment, FromMiaobu: hasPayloadKey(d.Payload)}
	if d.Creator != nil {
		e.Creator = d.Creator.Login
	}
	return e, nil
}

// payloadFields decodes a deployment's payload, a JSON object or a string holding one (as GitHub
// keeps a payload given as a string); nil when it is neither.
func payloadFields(raw json.RawMessage) map[string]json.RawMessage {
	var text string
	if json.Unmarshal(raw, &text) == nil {
		raw = json.RawMessage(text)
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return nil
	}
	return fields
}

// hasPayloadKey reports whether a deployment's payload has miaobu's key.
func hasPayloadKey(raw json.RawMessage) bool {
	_, ok := payloadFields(raw)[PayloadKey]
	return ok
}

// payloadDeploymentID returns the miaobu deployment a deployment's payload names, and false when it
// names none.
func payloadDeploymentID(raw json.RawMessage) (int64, bool) {
	var own struct {
		DeploymentID int64 `json:"deployment_id"`
	}
	if json.Unmarshal(payloadFields(raw)[PayloadKey], &own) != nil || own.DeploymentID == 0 {
		return 0, false
	}
	return own.DeploymentID, true
}
