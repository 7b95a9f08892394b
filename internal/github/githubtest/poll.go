package githubtest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// Pull is an open pull request of a repository the fake serves.
type Pull struct {
	Number  int
	HeadSHA string
	HeadRef string
	// HeadRepo is the full name of the repository the head comes from; the base repository's
	// when empty.
	HeadRepo string
}

// Answer is one answer of the polling endpoints (commits/{ref}, pulls and branches), as the fake gave it.
type Answer struct {
	// Request is "METHOD /path".
	Request string
	// IfNoneMatch is the request's If-None-Match header.
	IfNoneMatch string
	Status      int
	At          time.Time
}

// rateLimit is the fake's primary rate limit, which only the polling endpoints count and enforce.
type rateLimit struct {
	limit, remaining int
	reset            time.Time
}

// SetBranch moves branch of repo to sha, as a push does; an empty sha deletes the branch.
func (s *Server) SetBranch(repo, branch, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.repos[repo]
	if st.Branches == nil {
		st.Branches = map[string]string{}
	}
	if sha == "" {
		delete(st.Branches, branch)
		return
	}
	st.Branches[branch] = sha
}

// SetMessage gives commit sha of repo its message (by default "Tip of <branch>" for the head of a
// branch or pull request).
func (s *Server) SetMessage(repo, sha, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.repos[repo]
	if st.messages == nil {
		st.messages = map[string]string{}
	}
	st.messages[sha] = message
}

// SetPulls replaces the open pull requests of repo.
func (s *Server) SetPulls(repo string, pulls []Pull) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repos[repo].pulls = pulls
}

// SetRateLimit makes the polling endpoints show a primary rate limit of limit requests an hour with
// remaining left until reset: each answer but a 304 takes one, and with none left they answer 403
// as GitHub does, until the test sets the limit again.
func (s *Server) SetRateLimit(limit, remaining int, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rate = &rateLimit{limit: limit, remaining: remaining, reset: reset}
}

// Answers returns the answers of the polling endpoints, in order.
func (s *Server) Answers() []Answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Answer(nil), s.answers...)
}

// pollAnswer records an answer of a polling endpoint, sets the rate headers, and answers 403 when
// no request is left, returning false then. It runs with s.mu held.
func (s *Server) pollAnswer(w http.ResponseWriter, r *http.Request, status int) bool {
	a := Answer{Request: r.Method + " " + r.URL.EscapedPath(), IfNoneMatch: r.Header.Get("If-None-Match"), Status: status, At: time.Now()}
	if rl := s.rate; rl != nil {
		if rl.remaining == 0 {
			a.Status = http.StatusForbidden
		} else if status != http.StatusNotModified {
			rl.remaining--
		}
		h := w.Header()
		h.Set("X-RateLimit-Limit", strconv.Itoa(rl.limit))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(rl.remaining))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(rl.reset.Unix(), 10))
		h.Set("X-RateLimit-Resource", "core")
	}
	s.answers = append(s.answers, a)
	if a.Status == http.StatusForbidden {
		reply(w, http.StatusForbidden, map[string]string{"message": "API rate limit exceeded for user ID 1.",
			"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"})
		return false
	}
	return true
}

// getCommit serves a branch's head SHA (Accept: application/vnd.github.sha, which go-github spells
// application/vnd.github.v3.sha, with If-None-Match answered 304 as GitHub does) or a commit's
// JSON by its SHA.
func (s *Server) getCommit(w http.ResponseWriter, r *http.Request) {
	s.noQuery(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.repo(w, r)
	if !ok {
		return
	}
	ref := r.PathValue("ref")
	if accept := r.Header.Get("Accept"); accept == "application/vnd.github.sha" || accept == "application/vnd.github.v3.sha" {
		sha, ok := st.Branches[ref]
		switch {
		case !ok:
			if s.pollAnswer(w, r, http.StatusUnprocessableEntity) {
				reply(w, http.StatusUnprocessableEntity, map[string]string{"message": "No commit found for SHA: " + ref})
			}
		case r.Header.Get("If-None-Match") == `"`+sha+`"`:
			if s.pollAnswer(w, r, http.StatusNotModified) {
				w.Header().Set("ETag", `"`+sha+`"`)
				w.WriteHeader(http.StatusNotModified)
			}
		default:
			if s.pollAnswer(w, r, http.StatusOK) {
				w.Header().Set("ETag", `"`+sha+`"`)
				w.Header().Set("Content-Type", "application/vnd.github.sha")
				fmt.Fprint(w, sha)
			}
		}
		return
	}
	message, ok := st.messages[ref]
	for branch, sha := range st.Branches {
		if sha == ref && !ok {
			message, ok = "Tip of "+branch, true
		}
	}
	for _, p := range st.pulls {
		if p.HeadSHA == ref && !ok {
			message, ok = "Tip of "+p.HeadRef, true
		}
	}
	if !ok {
		if s.pollAnswer(w, r, http.StatusUnprocessableEntity) {
			reply(w, http.StatusUnprocessableEntity, map[string]string{"message": "No commit found for SHA: " + ref})
		}
		return
	}
	if s.pollAnswer(w, r, http.StatusOK) {
		reply(w, http.StatusOK, map[string]any{"sha": ref,
			"commit": map[string]any{"message": message, "author": map[string]any{"name": "Mona Lisa"}},
			"author": map[string]any{"login": "octocat"}})
	}
}

// listPulls serves the open pull requests a page of 100 at a time, with a weak ETag of the page
// that a matching If-None-Match answers 304.
func (s *Server) listPulls(w http.ResponseWriter, r *http.Request) {
	st, page, ok := s.listingPage(w, r, "pulls", "state=open&per_page=100")
	if !ok {
		return
	}
	defer s.mu.Unlock()
	var list []map[string]any
	for i := (page - 1) * 100; i < min(page*100, len(st.pulls)); i++ {
		p := st.pulls[i]
		head := p.HeadRepo
		if head == "" {
			head = st.FullName
		}
		list = append(list, map[string]any{"number": p.Number, "state": "open",
			"head": map[string]any{"sha": p.HeadSHA, "ref": p.HeadRef, "repo": map[string]any{"full_name": head}},
			"base": map[string]any{"ref": st.DefaultBranch, "repo": map[string]any{"full_name": st.FullName}}})
	}
	s.servePage(w, r, list, page, len(st.pulls), "state=open&per_page=100")
}

// listBranches serves the branches and their heads a page of 100 at a time, sorted by name as
// GitHub sorts them, with a weak ETag of the page that a matching If-None-Match answers 304.
func (s *Server) listBranches(w http.ResponseWriter, r *http.Request) {
	st, page, ok := s.listingPage(w, r, "branches", "per_page=100")
	if !ok {
		return
	}
	defer s.mu.Unlock()
	names := slices.Sorted(maps.Keys(st.Branches))
	var list []map[string]any
	for _, name := range names[min((page-1)*100, len(names)):min(page*100, len(names))] {
		list = append(list, map[string]any{"name": name, "commit": map[string]any{"sha": st.Branches[name]}, "protected": false})
	}
	s.servePage(w, r, list, page, len(names), "per_page=100")
}

// listingPage checks the query of a request for a page of the listing of what (its first page's
// query is query, with page=N after it) and returns the repository and the page's number, with
// s.mu held when it reports ok (the caller unlocks it); otherwise the request is answered.
func (s *Server) listingPage(w http.ResponseWriter, r *http.Request, what, query string) (*repoState, int, bool) {
	q := r.URL.Query()
	page, _ := strconv.Atoi(q.Get("page"))
	q.Del("page")
	if want, _ := url.ParseQuery(query); !maps.EqualFunc(q, want, slices.Equal) || (r.URL.Query().Has("page") && page < 2) {
		s.t.Errorf("fake GitHub: %s listed with query %q, want %s and a page after the first", what, r.URL.RawQuery, query)
	}
	s.mu.Lock()
	st, ok := s.repo(w, r)
	if !ok {
		s.mu.Unlock()
	}
	return st, max(page, 1), ok
}

// servePage answers one page of a listing of total items (100 a page) with list, its items: 304
// when If-None-Match matches the page's weak ETag, else the page with its ETag and, unless it is
// the last, a Link to the next page, whose query is query and the page's number. It runs with s.mu
// held.
func (s *Server) servePage(w http.ResponseWriter, r *http.Request, list []map[string]any, page, total int, query string) {
	body, _ := json.Marshal(list)
	if list == nil {
		body = []byte("[]")
	}
	sum := sha256.Sum256(body)
	etag := `W/"` + hex.EncodeToString(sum[:]) + `"`
	if r.Header.Get("If-None-Match") == etag {
		if s.pollAnswer(w, r, http.StatusNotModified) {
			w.Header().Set("ETag", etag)
			w.WriteHeader(http.StatusNotModified)
		}
		return
	}
	if !s.pollAnswer(w, r, http.StatusOK) {
		return
	}
	if page*100 < total {
		w.Header().Set("Link", fmt.Sprintf(`<%s%s?%s&page=%d>; rel="next"`, s.srv.URL, r.URL.Path, query, page+1))
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}
