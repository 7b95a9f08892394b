package githubtest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
)

// Login is the user the fake's token belongs to, who writes the comments made through it.
const Login = "miaobu-bot"

// Comment is a comment on a pull request as the fake holds it, with how often it was edited.
type Comment struct {
	ID          int64
	PullRequest int
	Login       string
	Body        string
	Edits       int
}

// Comments returns the comments on the pull requests of repo, oldest first.
func (s *Server) Comments(repo string) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.repos[repo].comments)
}

// AddComment puts a comment by login on pull request n of repo, as if written earlier, and returns
// its id.
func (s *Server) AddComment(repo string, n int, login, body string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	s.repos[repo].comments = append(s.repos[repo].comments, Comment{ID: s.nextID, PullRequest: n, Login: login, Body: body})
	return s.nextID
}

// commentJSON is a comment as GitHub shows it.
func commentJSON(c Comment) map[string]any {
	return map[string]any{"id": c.ID, "body": c.Body, "user": map[string]any{"login": c.Login}}
}

// getUser answers GET /user for the token's user.
func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	s.noQuery(r)
	reply(w, http.StatusOK, map[string]any{"login": Login, "id": 1})
}

// commentBody reads the body of a comment to create or edit, answering 422 without one.
func commentBody(w http.ResponseWriter, r *http.Request) (string, bool) {
	var req struct {
		Body *string `json:"body"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Body == nil {
		reply(w, http.StatusUnprocessableEntity, map[string]string{"message": "Validation Failed: body is required"})
		return "", false
	}
	return *req.Body, true
}

// listComments answers the comments of a pull request, all on one page.
func (s *Server) listComments(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.repo(w, r)
	if !ok {
		return
	}
	n, _ := strconv.Atoi(r.PathValue("n"))
	out := []map[string]any{}
	for _, c := range st.comments {
		if c.PullRequest == n {
			out = append(out, commentJSON(c))
		}
	}
	reply(w, http.StatusOK, out)
}

// createComment adds a comment by the token's user to a pull request.
func (s *Server) createComment(w http.ResponseWriter, r *http.Request) {
	body, ok := commentBody(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.repo(w, r)
	if !ok {
		return
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 {
		notFound(w)
		return
	}
	s.nextID++
	c := Comment{ID: s.nextID, PullRequest: n, Login: Login, Body: body}
	st.comments = append(st.comments, c)
	reply(w, http.StatusCreated, commentJSON(c))
}

// editComment replaces the body of a comment; another user's comment cannot be edited.
func (s *Server) editComment(w http.ResponseWriter, r *http.Request) {
	body, ok := commentBody(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.repo(w, r)
	if !ok {
		return
	}
	i, ok := byID(w, r, st.comments, func(c Comment) int64 { return c.ID })
	if !ok {
		return
	}
	if st.comments[i].Login != Login {
		reply(w, http.StatusForbidden, map[string]string{"message": "Must have admin rights to Repository."})
		return
	}
	st.comments[i].Body = body
	st.comments[i].Edits++
	reply(w, http.StatusOK, commentJSON(st.comments[i]))
}
