package github

import "github.com/valyala/fastjson"

// PullRequest is the part of a pull_request payload that a preview needs.
type PullRequest struct {
	// Action is what happened: opened, reopened, synchronize, closed, labeled and so on.
	Action string
	Number int
	Title  string
	// Author is the login of the user who opened the pull request.
	Author  string
	HeadSHA string
	HeadRef string
	// Before is the head commit before a synchronize action, "" for other actions.
	Before string
	// HeadRepo is the full name (owner/name) of the repository the head commit comes from, ""
	// when that repository was deleted.
	HeadRepo string
	BaseRepo string
	BaseRef  string
	// Label is the name of the label a labeled or unlabeled action added or removed.
	Label  string
	Merged bool
}

// ParsePullRequest validates a pull_request payload as JSON and extracts the fields a preview
// needs; a missing action, pull request, head or base, a number that is not positive, or a field
// of the wrong type makes it invalid.
func ParsePullRequest(payload []byte) (*PullRequest, error) {
	var p PullRequest
	if err := parseObject(payload, func(v *fastjson.Value) error { return p.read(v) }); err != nil {
		return nil, err
	}
	return &p, nil
}

// read fills p from a pull_request payload's top-level object.
func (p *PullRequest) read(v *fastjson.Value) error {
	ok := true
	p.Action, ok = stringField(v, ok, "action")
	pr, ok := objectField(v, ok, "pull_request", true)
	head, ok := objectField(pr, ok, "head", true)
	base, ok := objectField(pr, ok, "base", true)
	if !ok || p.Action == "" {
		return ErrInvalidPayload
	}
	p.Number, ok = numberField(v, ok)
	if p.Number == 0 {
		p.Number, ok = numberField(pr, ok)
	}
	p.Title, ok = stringField(pr, ok, "title")
	user, ok := objectField(pr, ok, "user", false)
	p.Author, ok = stringField(user, ok, "login")
	p.Merged, ok = boolField(pr, ok, "merged")
	p.HeadSHA, ok = stringField(head, ok, "sha")
	p.HeadRef, ok = stringField(head, ok, "ref")
	p.Before, ok = stringField(v, ok, "before")
	headRepo, ok := objectField(head, ok, "repo", false)
	p.HeadRepo, ok = stringField(headRepo, ok, "full_name")
	p.BaseRef, ok = stringField(base, ok, "ref")
	baseRepo, ok := objectField(base, ok, "repo", false)
	p.BaseRepo, ok = stringField(baseRepo, ok, "full_name")
	label, ok := objectField(v, ok, "label", false)
	p.Label, ok = stringField(label, ok, "name")
	if !ok || p.Number <= 0 {
		return ErrInvalidPayload
	}
	return nil
}

// IsFork reports whether the head commit comes from another repository than the base: a fork,
// including one that was deleted since.
func (p *PullRequest) IsFork() bool {
	return isFork(p.HeadRepo, p.BaseRepo)
}

// isFork reports whether a pull request's head repository, "" when it was deleted, is another than
// its base repository.
func isFork(headRepo, baseRepo string) bool {
	return headRepo == "" || headRepo != baseRepo
}

// numberField returns the positive integer at "number" of object v (0 when absent or null) and
// whether all is still well.
func numberField(v *fastjson.Value, ok bool) (int, bool) {
	field := v.Get("number")
	if field == nil || field.Type() == fastjson.TypeNull {
		return 0, ok
	}
	n, err := field.Int()
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, ok
}
