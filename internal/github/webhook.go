package github

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
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
	Ref        string
	After      string
	Deleted    bool
	HeadCommit *HeadCommit
}

// HeadCommit is the pushed commit of a push payload.
type HeadCommit struct {
	ID, Message, AuthorName string
}

// ErrInvalidPayload is returned for a body that is not a push payload.
var ErrInvalidPayload = errors.New("invalid push payload")

// pushParsers are reused across deliveries: a push payload is validated and indexed without
// allocating, several times faster than decoding it with encoding/json, which matters on the
// webhook's hot path. The parser alone lets control characters through inside strings, so the
// payload is validated strictly first.
var pushParsers fastjson.ParserPool

// ParsePush validates a push payload as JSON and extracts the fields a deployment needs; a
// missing or empty ref, or a field of the wrong type, makes it invalid.
func ParsePush(payload []byte) (*Push, error) {
	if fastjson.ValidateBytes(payload) != nil {
		return nil, ErrInvalidPayload
	}
	parser := pushParsers.Get()
	defer pushParsers.Put(parser)
	v, err := parser.ParseBytes(payload)
	if err != nil || v.Type() != fastjson.TypeObject {
		return nil, ErrInvalidPayload
	}
	var p Push
	ok := true
	p.Ref, ok = stringField(v, ok, "ref")
	p.After, ok = stringField(v, ok, "after")
	switch deleted := v.Get("deleted"); {
	case deleted == nil || deleted.Type() == fastjson.TypeNull:
	case deleted.Type() == fastjson.TypeTrue:
		p.Deleted = true
	case deleted.Type() != fastjson.TypeFalse:
		ok = false
	}
	switch head := v.Get("head_commit"); {
	case head == nil || head.Type() == fastjson.TypeNull:
	case head.Type() == fastjson.TypeObject:
		p.HeadCommit = &HeadCommit{}
		p.HeadCommit.ID, ok = stringField(head, ok, "id")
		p.HeadCommit.Message, ok = stringField(head, ok, "message")
		if author := head.Get("author"); author != nil && author.Type() != fastjson.TypeNull {
			if author.Type() != fastjson.TypeObject {
				ok = false
			}
			p.HeadCommit.AuthorName, ok = stringField(author, ok, "name")
		}
	default:
		ok = false
	}
	if !ok || p.Ref == "" {
		return nil, ErrInvalidPayload
	}
	return &p, nil
}

// stringField returns the string at key of object v (empty when absent or null) and whether all is
// still well: ok turns false when the field has another type. Invalid UTF-8 is replaced, as
// encoding/json does, so what reaches the store and logs is valid text.
func stringField(v *fastjson.Value, ok bool, key string) (string, bool) {
	field := v.Get(key)
	if field == nil || field.Type() == fastjson.TypeNull {
		return "", ok
	}
	b, err := field.StringBytes()
	if err != nil {
		return "", false
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), ok
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
	e := &DeploymentEvent{ID: d.ID, SHA: d.SHA, Ref: d.Ref, Environment: d.Environment, FromMiaobu: hasPayloadKey(d.Payload)}
	if d.Creator != nil {
		e.Creator = d.Creator.Login
	}
	return e, nil
}

// hasPayloadKey reports whether a deployment's payload, a JSON object or a string holding one (as
// GitHub keeps a payload given as a string), has miaobu's key.
func hasPayloadKey(raw json.RawMessage) bool {
	var text string
	if json.Unmarshal(raw, &text) == nil {
		raw = json.RawMessage(text)
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return false
	}
	_, ok := fields[PayloadKey]
	return ok
}
