// Package githubtest is a fake of the GitHub REST API for tests: it serves repositories, branch
// tips (also as polling asks for them, with ETags and 304s), open pull requests, files and hooks,
// records commit statuses, deployments and deployment statuses and lists deployments, the way
// GitHub does, through exactly the endpoints of contract section 6. It fails the test on any other
// request, a wrong token, a hook body that is not the contract's hook, or a report whose body is
// not one that miaobu sends.
package githubtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"path"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// Repo is a repository the fake serves.
type Repo struct {
	// FullName is OWNER/REPO.
	FullName      string
	DefaultBranch string
	Private       bool
	// Branches maps a branch name to the commit SHA at its tip.
	Branches map[string]string
	// Files maps a slash path to the contents it has at every tip.
	Files map[string]string
	// CloneURL is where git fetches the repository; by default a loopback port that refuses
	// connections, so a build started by a test never reaches out to the real GitHub.
	CloneURL string
}

// Hook is a hook of a repository as the fake holds it, secret included.
type Hook struct {
	ID     int64
	URL    string
	Secret string
	Events []string
}

// Status is a commit status the fake received.
type Status struct {
	SHA         string
	State       string
	Description string
	TargetURL   string
	Context     string
}

// Deployment is a deployment of a repository, with the statuses it received in order.
type Deployment struct {
	ID          int64
	Ref         string
	Environment string
	Description string
	Production  bool
	Transient   bool
	// Payload is the deployment's payload as JSON.
	Payload  string
	Statuses []DeploymentStatus
}

// DeploymentStatus is a status a deployment received.
type DeploymentStatus struct {
	State          string
	Description    string
	EnvironmentURL string
	LogURL         string
}

// Server is a running fake GitHub API; URL is its API root.
type Server struct {
	URL string

	t     testing.TB
	token string
	srv   *httptest.Server

	mu       sync.Mutex
	repos    map[string]*repoState
	failures map[string][]failure
	outage   int
	expired  bool
	requests []string
	nextHook int64
	nextID   int64
	rate     *rateLimit
	answers  []Answer
	// done is closed when the test ends, to let go of stalled requests.
	done chan struct{}
	// lost holds, for a request, how the answers to its next occurrences are lost.
	lost map[string][]Loss
}

// Loss is how the answer to a request that the fake handles is lost on its way back.
type Loss int

// String names the loss.
func (l Loss) String() string {
	if l == Hung {
		return "hung"
	}
	return "dropped"
}

// Losses of an answer.
const (
	// Dropped closes the connection instead of answering, as a crash or a network failure does.
	Dropped Loss = iota + 1
	// Hung answers nothing until the client gives up, as when it times out.
	Hung
)

// repoState is a repository, its hooks, its open pull requests, the messages of its commits and
// what was reported to it.
type repoState struct {
	Repo
	hooks       []Hook
	pulls       []Pull
	messages    map[string]string
	statuses    []Status
	deployments []Deployment
	comments    []Comment
}

// failure is an answer that replaces the next answer to one request; a stalled one is no answer.
type failure struct {
	status int
	header map[string]string
	body   string
	stall  bool
}

// New starts a fake GitHub that accepts only requests authenticated with token; it stops when the test ends.
func New(t testing.TB, token string) *Server {
	s := &Server{t: t, token: token, repos: map[string]*repoState{}, failures: map[string][]failure{}, nextHook: 100, nextID: 5000,
		done: make(chan struct{}), lost: map[string][]Loss{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /repos/{owner}/{repo}", s.getRepo)
	mux.HandleFunc("GET /repos/{owner}/{repo}/branches/{branch}", s.getBranch)
	mux.HandleFunc("GET /repos/{owner}/{repo}/contents/{path...}", s.getContents)
	mux.HandleFunc("GET /repos/{owner}/{repo}/hooks", s.listHooks)
	mux.HandleFunc("POST /repos/{owner}/{repo}/hooks", s.createHook)
	mux.HandleFunc("PATCH /repos/{owner}/{repo}/hooks/{id}", s.editHook)
	mux.HandleFunc("DELETE /repos/{owner}/{repo}/hooks/{id}", s.deleteHook)
	mux.HandleFunc("GET /repos/{owner}/{repo}/commits/{ref...}", s.getCommit)
	mux.HandleFunc("GET /repos/{owner}/{repo}/pulls", s.listPulls)
	mux.HandleFunc("GET /repos/{owner}/{repo}/branches", s.listBranches)
	mux.HandleFunc("POST /repos/{owner}/{repo}/statuses/{sha}", s.createStatus)
	mux.HandleFunc("GET /repos/{owner}/{repo}/deployments", s.listDeployments)
	mux.HandleFunc("POST /repos/{owner}/{repo}/deployments", s.createDeployment)
	mux.HandleFunc("POST /repos/{owner}/{repo}/deployments/{id}/statuses", s.createDeploymentStatus)
	mux.HandleFunc("GET /user", s.getUser)
	mux.HandleFunc("GET /repos/{owner}/{repo}/issues/{n}/comments", s.listComments)
	mux.HandleFunc("POST /repos/{owner}/{repo}/issues/{n}/comments", s.createComment)
	mux.HandleFunc("PATCH /repos/{owner}/{repo}/issues/comments/{id}", s.editComment)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("fake GitHub: unexpected request %s %s", r.Method, r.URL)
		reply(w, http.StatusTeapot, map[string]string{"message": "unexpected request"})
	})
	s.srv = httptest.NewServer(s.check(mux))
	s.URL = s.srv.URL + "/"
	t.Cleanup(func() {
		close(s.done)
		s.srv.Close()
	})
	return s
}

// AddRepo makes the fake serve r.
func (s *Server) AddRepo(r Repo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repos[r.FullName] = &repoState{Repo: r}
}

// AddHook gives repo an existing hook, as if made earlier, and returns its id. It sends push events
// only, as the hooks of miaobu before deployments were reported.
func (s *Server) AddHook(repo, hookURL, secret string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextHook++
	s.repos[repo].hooks = append(s.repos[repo].hooks, Hook{ID: s.nextHook, URL: hookURL, Secret: secret, Events: []string{"push"}})
	return s.nextHook
}

// AddDeployment gives repo a deployment made by someone else than miaobu, as from GitHub's API,
// and returns its id.
func (s *Server) AddDeployment(repo string, d Deployment) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	d.ID = s.nextID
	s.repos[repo].deployments = append(s.repos[repo].deployments, d)
	return d.ID
}

// RemoveDeployment deletes deployment id of repo, as a user may on GitHub.
func (s *Server) RemoveDeployment(repo string, id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.repos[repo]
	st.deployments = slices.DeleteFunc(st.deployments, func(d Deployment) bool { return d.ID == id })
}

// Statuses returns the commit statuses repo received, in order.
func (s *Server) Statuses(repo string) []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.repos[repo].statuses)
}

// Deployments returns the deployments of repo, oldest first, each with the statuses it received.
func (s *Server) Deployments(repo string) []Deployment {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.repos[repo].deployments)
	for i := range out {
		out[i].Statuses = slices.Clone(out[i].Statuses)
	}
	return out
}

// RemoveHook deletes a hook of repo, as a user would on GitHub's settings page.
func (s *Server) RemoveHook(repo string, id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.repos[repo]
	st.hooks = slices.DeleteFunc(st.hooks, func(h Hook) bool { return h.ID == id })
}

// Hooks returns the hooks of repo.
func (s *Server) Hooks(repo string) []Hook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.repos[repo].hooks)
}

// Fail makes the next request "METHOD /path" (an escaped path, no query; for a listing's page
// after the first, "METHOD /path?page=N") answer status with a GitHub error message instead.
func (s *Server) Fail(request string, status int, message string) {
	s.FailWith(request, status, message, nil)
}

// FailWith is Fail with headers in the answer, such as Retry-After.
func (s *Server) FailWith(request string, status int, message string, header map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	body, _ := json.Marshal(map[string]string{"message": message})
	s.failures[request] = append(s.failures[request], failure{status: status, header: header, body: string(body)})
}

// Stall makes the next request "METHOD /path" go unanswered until the client gives up on it, as
// when GitHub is slow.
func (s *Server) Stall(request string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[request] = append(s.failures[request], failure{stall: true})
}

// LoseAnswer makes the fake handle the next request "METHOD /path" as usual, then lose its answer
// as loss says.
func (s *Server) LoseAnswer(request string, loss Loss) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lost[request] = append(s.lost[request], loss)
}

// Outage makes every later request answer status with a server error, as GitHub does when it is
// down, until Outage(0).
func (s *Server) Outage(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outage = status
}

// ExpireToken makes every later request answer 401, as for an expired or revoked token.
func (s *Server) ExpireToken() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expired = true
}

// Requests returns every request received, as "METHOD /path", in order.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// check records every request, checks its token and answers the failures that tests set up.
func (s *Server) check(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		request := r.Method + " " + r.URL.EscapedPath()
		s.mu.Lock()
		s.requests = append(s.requests, request)
		expired := s.expired
		var fail *failure
		var loss Loss
		if l := s.lost[request]; len(l) > 0 {
			loss, s.lost[request] = l[0], l[1:]
		}
		failing := request
		if page := r.URL.Query().Get("page"); page != "" {
			failing += "?page=" + page // a listing's later page fails on its own
		}
		if f := s.failures[failing]; len(f) > 0 {
			fail, s.failures[failing] = &f[0], f[1:]
		} else if s.outage != 0 {
			fail = &failure{status: s.outage, body: `{"message":"Server Error"}`}
		}
		s.mu.Unlock()
		if got := r.Header.Get("Authorization"); got != "Bearer "+s.token {
			s.t.Errorf("fake GitHub: %s with Authorization %q, want the configured token", request, got)
			reply(w, http.StatusUnauthorized, map[string]string{"message": "Requires authentication"})
			return
		}
		switch {
		case expired:
			reply(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials"})
		case fail != nil && fail.stall:
			s.hang(r)
		case fail != nil:
			w.Header().Set("Content-Type", "application/json")
			for k, v := range fail.header {
				w.Header().Set(k, v)
			}
			w.WriteHeader(fail.status)
			io.WriteString(w, fail.body)
		case loss != 0:
			next.ServeHTTP(httptest.NewRecorder(), r)
			s.lose(w, r, loss)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// lose answers r, already handled, by loss: closing the connection, or waiting for the client to
// give up.
func (s *Server) lose(w http.ResponseWriter, r *http.Request, loss Loss) {
	if loss == Hung {
		s.hang(r)
		return
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		s.t.Errorf("fake GitHub: dropping the answer to %s %s: %v", r.Method, r.URL.Path, err)
		return
	}
	conn.Close()
}

// hang answers r nothing until its client gives up or the test ends.
func (s *Server) hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.done:
	}
}

// reply answers status with v as JSON.
func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// notFound answers GitHub's 404.
func notFound(w http.ResponseWriter) {
	reply(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
}

// repo returns the repository of the request, or answers 404.
func (s *Server) repo(w http.ResponseWriter, r *http.Request) (*repoState, bool) {
	st, ok := s.repos[r.PathValue("owner")+"/"+r.PathValue("repo")]
	if !ok {
		notFound(w)
	}
	return st, ok
}

// noQuery fails the test when a request that takes no query has one.
func (s *Server) noQuery(r *http.Request) {
	if r.URL.RawQuery != "" {
		s.t.Errorf("fake GitHub: %s %s has unexpected query %q", r.Method, r.URL.Path, r.URL.RawQuery)
	}
}

func (s *Server) getRepo(w http.ResponseWriter, r *http.Request) {
	s.noQuery(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.repo(w, r)
	if !ok {
		return
	}
	reply(w, http.StatusOK, map[string]any{
		"id": 4242, "full_name": st.FullName, "name": path.Base(st.FullName), "default_branch": st.DefaultBranch,
		"private": st.Private, "clone_url": st.cloneURL(), "html_url": "https://github.com/" + st.FullName,
	})
}

func (s *Server) getBranch(w http.ResponseWriter, r *http.Request) {
	s.noQuery(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.repo(w, r)
	if !ok {
		return
	}
	branch := r.PathValue("branch")
	sha, ok := st.Branches[branch]
	if !ok {
		reply(w, http.StatusNotFound, map[string]string{"message": "Branch not found"})
		return
	}
	reply(w, http.StatusOK, map[string]any{"name": branch, "commit": map[string]any{
		"sha":    sha,
		"commit": map[string]any{"message": "Tip of " + branch, "author": map[string]any{"name": "Mona Lisa"}},
		"author": map[string]any{"login": "octocat"},
	}})
}

// getContents serves a file (base64 with line breaks, as GitHub sends it) or a directory listing
// at a ref that must be one of the branch tips.
func (s *Server) getContents(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.repo(w, r)
	if !ok {
		return
	}
	ref := r.URL.Query().Get("ref")
	if r.URL.RawQuery != "ref="+ref || !slices.Contains(slices.Collect(maps.Values(st.Branches)), ref) {
		s.t.Errorf("fake GitHub: contents read at %q, want a branch tip's SHA", r.URL.RawQuery)
	}
	name := strings.TrimSuffix(r.PathValue("path"), "/")
	if data, ok := st.Files[name]; ok {
		enc := base64.StdEncoding.EncodeToString([]byte(data))
		var lines []string
		for len(enc) > 60 {
			lines, enc = append(lines, enc[:60]), enc[60:]
		}
		reply(w, http.StatusOK, map[string]any{"type": "file", "encoding": "base64", "name": path.Base(name), "path": name,
			"size": len(data), "content": strings.Join(append(lines, enc), "\n") + "\n"})
		return
	}
	children := map[string]map[string]any{}
	for p, data := range st.Files {
		rest, ok := strings.CutPrefix(p, name+"/")
		if name == "" {
			rest, ok = p, true
		}
		if !ok {
			continue
		}
		child, _, isDir := strings.Cut(rest, "/")
		item := map[string]any{"type": "file", "name": child, "path": path.Join(name, child), "size": len(data)}
		if isDir {
			item = map[string]any{"type": "dir", "name": child, "path": path.Join(name, child), "size": 0}
		}
		children[child] = item
	}
	if len(children) == 0 {
		notFound(w)
		return
	}
	list := make([]map[string]any, 0, len(children))
	for _, item := range children {
		list = append(list, item)
	}
	sort.Slice(list, func(i, j int) bool { return list[i]["name"].(string) < list[j]["name"].(string) })
	reply(w, http.StatusOK, list)
}

// hookJSON is a hook as GitHub shows it: the secret masked.
func hookJSON(h Hook) map[string]any {
	return map[string]any{"id": h.ID, "name": "web", "active": true, "events": h.Events,
		"config": map[string]any{"url": h.URL, "content_type": "json", "secret": "********", "insecure_ssl": "0"}}
}

func (s *Server) listHooks(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawQuery != "per_page=100" {
		s.t.Errorf("fake GitHub: hooks listed with query %q, want per_page=100", r.URL.RawQuery)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.repo(w, r)
	if !ok {
		return
	}
	list := make([]map[string]any, 0, len(st.hooks))
	for _, h := range st.hooks {
		list = append(list, hookJSON(h))
	}
	reply(w, http.StatusOK, list)
}

// hookBody checks that a create (withName) or edit request carries exactly the contract's hook
// and returns its URL and secret.
func (s *Server) hookBody(r *http.Request, withName bool) (hookURL, secret string, ok bool) {
	raw, _ := io.ReadAll(r.Body)
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		s.t.Errorf("fake GitHub: %s %s body is not JSON: %q", r.Method, r.URL.Path, raw)
		return "", "", false
	}
	config, _ := got["config"].(map[string]any)
	hookURL, _ = config["url"].(string)
	secret, _ = config["secret"].(string)
	want := map[string]any{"active": true, "events": []any{"push", "pull_request", "deployment"}, "config": map[string]any{
		"url": hookURL, "content_type": "json", "secret": secret, "insecure_ssl": "0"}}
	if withName {
		want["name"] = "web"
	}
	if !reflect.DeepEqual(got, want) {
		s.t.Errorf("fake GitHub: %s %s hook body\n%s\nis not the contract's hook", r.Method, r.URL.Path, raw)
		return "", "", false
	}
	if b, err := base64.RawURLEncoding.DecodeString(secret); err != nil || len(b) != 32 || len(secret) != 43 {
		s.t.Errorf("fake GitHub: hook secret %q is not 32 bytes in unpadded base64url", secret)
		return "", "", false
	}
	if !strings.HasPrefix(hookURL, "http://") && !strings.HasPrefix(hookURL, "https://") {
		s.t.Errorf("fake GitHub: hook URL %q is not an http(s) URL", hookURL)
		return "", "", false
	}
	return hookURL, secret, true
}

func (s *Server) createHook(w http.ResponseWriter, r *http.Request) {
	s.noQuery(r)
	hookURL, secret, ok := s.hookBody(r, true)
	if !ok {
		reply(w, http.StatusUnprocessableEntity, map[string]string{"message": "Validation Failed"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.repo(w, r)
	if !ok {
		return
	}
	for _, h := range st.hooks {
		if h.URL == hookURL {
			reply(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed",
				"errors": []map[string]string{{"resource": "Hook", "code": "custom", "message": "Hook already exists on this repository"}}})
			return
		}
	}
	s.nextHook++
	h := Hook{ID: s.nextHook, URL: hookURL, Secret: secret, Events: contractEvents()}
	st.hooks = append(st.hooks, h)
	reply(w, http.StatusCreated, hookJSON(h))
}

// hook returns the index of the request's hook in st, or answers 404.
func (s *Server) hook(w http.ResponseWriter, r *http.Request, st *repoState) (int, bool) {
	return byID(w, r, st.hooks, func(h Hook) int64 { return h.ID })
}

// byID returns the index in items of the one whose id is the request's {id}, or answers 404.
func byID[T any](w http.ResponseWriter, r *http.Request, items []T, idOf func(T) int64) (int, bool) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	i := slices.IndexFunc(items, func(item T) bool { return idOf(item) == id })
	if i < 0 {
		notFound(w)
	}
	return i, i >= 0
}

func (s *Server) editHook(w http.ResponseWriter, r *http.Request) {
	s.noQuery(r)
	hookURL, secret, ok := s.hookBody(r, false)
	if !ok {
		reply(w, http.StatusUnprocessableEntity, map[string]string{"message": "Validation Failed"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.repo(w, r)
	if !ok {
		return
	}
	i, ok := s.hook(w, r, st)
	if !ok {
		return
	}
	st.hooks[i].URL, st.hooks[i].Secret, st.hooks[i].Events = hookURL, secret, contractEvents()
	reply(w, http.StatusOK, hookJSON(st.hooks[i]))
}

func (s *Server) deleteHook(w http.ResponseWriter, r *http.Request) {
	s.noQuery(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.repo(w, r)
	if !ok {
		return
	}
	i, ok := s.hook(w, r, st)
	if !ok {
		return
	}
	st.hooks = slices.Delete(st.hooks, i, i+1)
	w.WriteHeader(http.StatusNoContent)
}

// contractEvents are the events of the contract's hook.
func contractEvents() []string { return []string{"push", "pull_request", "deployment"} }

// maxDescription is the most characters GitHub accepts in a status's description.
const maxDescription = 140

// reportBody decodes the JSON object of a report request and checks that it has exactly the
// required fields and at most the optional ones besides, each of the type of its example, with a
// description GitHub accepts and a state among states; it fails the test, answers 422 and returns
// false otherwise.
func (s *Server) reportBody(w http.ResponseWriter, r *http.Request, states []string, required, optional map[string]any) (map[string]any, bool) {
	s.noQuery(r)
	raw, _ := io.ReadAll(r.Body)
	var got map[string]any
	allowed := map[string]any{}
	maps.Copy(allowed, optional)
	maps.Copy(allowed, required)
	problem := ""
	if err := json.Unmarshal(raw, &got); err != nil {
		problem = "is not a JSON object"
	}
	for k := range required {
		if _, ok := got[k]; !ok && problem == "" {
			problem = fmt.Sprintf("lacks %q", k)
		}
	}
	for k, v := range got {
		if example, ok := allowed[k]; (!ok || reflect.TypeOf(v) != reflect.TypeOf(example)) && problem == "" {
			problem = fmt.Sprintf("has unexpected field %q", k)
		}
	}
	if d, _ := got["description"].(string); utf8.RuneCountInString(d) > maxDescription && problem == "" {
		problem = fmt.Sprintf("has a description of %d characters", utf8.RuneCountInString(d))
	}
	if state, _ := got["state"].(string); !slices.Contains(states, state) && problem == "" {
		problem = fmt.Sprintf("has state %q", state)
	}
	if problem != "" {
		s.t.Errorf("fake GitHub: %s %s body %s %s", r.Method, r.URL.Path, problem, raw)
		reply(w, http.StatusUnprocessableEntity, map[string]string{"message": "Validation Failed"})
		return nil, false
	}
	return got, true
}

// fullSHA reports whether sha is a full commit SHA, failing the test and answering 422 when not.
func (s *Server) fullSHA(w http.ResponseWriter, sha string) bool {
	if len(sha) == 40 && strings.Trim(sha, "0123456789abcdef") == "" {
		return true
	}
	s.t.Errorf("fake GitHub: a report for %q, not a full commit SHA", sha)
	reply(w, http.StatusUnprocessableEntity, map[string]string{"message": "No commit found for SHA: " + sha})
	return false
}

func (s *Server) createStatus(w http.ResponseWriter, r *http.Request) {
	body, ok := s.reportBody(w, r, []string{"pending", "success", "failure", "error"},
		map[string]any{"state": "", "description": "", "context": ""}, map[string]any{"target_url": ""})
	if !ok || !s.fullSHA(w, r.PathValue("sha")) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.repo(w, r)
	if !ok {
		return
	}
	targetURL, _ := body["target_url"].(string)
	st.statuses = append(st.statuses, Status{SHA: r.PathValue("sha"), State: body["state"].(string), Description: body["description"].(string),
		TargetURL: targetURL, Context: body["context"].(string)})
	s.nextID++
	reply(w, http.StatusCreated, map[string]any{"id": s.nextID, "state": body["state"], "context": body["context"]})
}

// createDeployment records a deployment made the way the contract asks: the full SHA as ref, no
// merge of the default branch, no required contexts.
func (s *Server) createDeployment(w http.ResponseWriter, r *http.Request) {
	body, ok := s.reportBody(w, r, []string{""}, map[string]any{"ref": "", "environment": "", "description": "", "auto_merge": false,
		"required_contexts": []any{}, "transient_environment": false, "production_environment": false, "payload": map[string]any{}}, nil)
	if !ok || !s.fullSHA(w, body["ref"].(string)) {
		return
	}
	if body["auto_merge"] != false || len(body["required_contexts"].([]any)) != 0 {
		s.t.Errorf("fake GitHub: deployment with auto_merge %v and required_contexts %v", body["auto_merge"], body["required_contexts"])
	}
	payload, _ := json.Marshal(body["payload"])
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.repo(w, r)
	if !ok {
		return
	}
	s.nextID++
	st.deployments = append(st.deployments, Deployment{ID: s.nextID, Ref: body["ref"].(string), Environment: body["environment"].(string),
		Description: body["description"].(string), Production: body["production_environment"].(bool),
		Transient: body["transient_environment"].(bool), Payload: string(payload)})
	reply(w, http.StatusCreated, map[string]any{"id": s.nextID, "sha": body["ref"], "ref": body["ref"], "environment": body["environment"]})
}

// listDeployments lists the deployments of a commit SHA and environment, newest first, as miaobu
// asks before it creates one.
func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sha, environment := q.Get("sha"), q.Get("environment")
	if len(q) != 3 || q.Get("per_page") != "100" || environment == "" {
		s.t.Errorf("fake GitHub: deployments listed with query %q, want sha, environment and per_page=100", r.URL.RawQuery)
	}
	if !s.fullSHA(w, sha) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.repo(w, r)
	if !ok {
		return
	}
	list := []map[string]any{}
	for _, d := range slices.Backward(st.deployments) {
		if d.Ref != sha || d.Environment != environment {
			continue
		}
		payload := json.RawMessage(d.Payload)
		if !json.Valid(payload) {
			payload = json.RawMessage("{}")
		}
		list = append(list, map[string]any{"id": d.ID, "sha": d.Ref, "ref": d.Ref, "environment": d.Environment, "payload": payload})
	}
	reply(w, http.StatusOK, list)
}

func (s *Server) createDeploymentStatus(w http.ResponseWriter, r *http.Request) {
	body, ok := s.reportBody(w, r, []string{"in_progress", "success", "failure", "error", "inactive"},
		map[string]any{"state": "", "description": ""}, map[string]any{"environment_url": "", "log_url": ""})
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.repo(w, r)
	if !ok {
		return
	}
	i, ok := byID(w, r, st.deployments, func(d Deployment) int64 { return d.ID })
	if !ok {
		return
	}
	envURL, _ := body["environment_url"].(string)
	logURL, _ := body["log_url"].(string)
	st.deployments[i].Statuses = append(st.deployments[i].Statuses, DeploymentStatus{State: body["state"].(string),
		Description: body["description"].(string), EnvironmentURL: envURL, LogURL: logURL})
	s.nextID++
	reply(w, http.StatusCreated, map[string]any{"id": s.nextID, "state": body["state"]})
}

// cloneURL is the repository's CloneURL or the refusing loopback default.
func (r *Repo) cloneURL() string {
	if r.CloneURL != "" {
		return r.CloneURL
	}
	return "http://127.0.0.1:9/" + r.FullName + ".git"
}
