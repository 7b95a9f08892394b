// Package cdnfake owns an in-process fake of the Alibaba Cloud CDN API for tests: an httptest
// server that answers RefreshObjectCaches only when the request carries a valid HMAC-SHA1 RPC
// signature for the expected key pair, and records the paths it was asked to refresh.
package cdnfake

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Call is one accepted RefreshObjectCaches request.
type Call struct {
	ObjectType string
	Paths      []string
}

// Server is a fake CDN API endpoint.
type Server struct {
	// URL is the endpoint to configure the client with.
	URL string

	accessKeyID, secret string

	mu       sync.Mutex
	calls    []Call
	rejected int
	fail     int
}

// New starts a fake CDN API on loopback that accepts requests signed with the given key pair and
// stops it when tb's test ends.
func New(tb testing.TB, accessKeyID, secret string) *Server {
	tb.Helper()
	s := &Server{accessKeyID: accessKeyID, secret: secret}
	ts := httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(ts.Close)
	s.URL = ts.URL
	return s
}

// FailWith makes every later request answer with status (0 serves them again).
func (s *Server) FailWith(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = status
}

// Calls returns the accepted refresh calls in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// URLCount returns how many paths the accepted calls asked to refresh, files and directories.
func (s *Server) URLCount() int {
	n := 0
	for _, c := range s.Calls() {
		n += len(c.Paths)
	}
	return n
}

// Rejected returns how many requests failed the signature or parameter checks.
func (s *Server) Rejected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejected
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.reject(w, http.StatusBadRequest, "InvalidParameter", err.Error())
		return
	}
	params := r.Form
	if msg := s.checkSignature(r.Method, params); msg != "" {
		s.reject(w, http.StatusForbidden, "SignatureDoesNotMatch", msg)
		return
	}
	if params.Get("Action") != "RefreshObjectCaches" || params.Get("Version") != "2018-05-10" {
		s.reject(w, http.StatusBadRequest, "InvalidAction", "only RefreshObjectCaches 2018-05-10 is faked")
		return
	}
	typ := params.Get("ObjectType")
	if typ == "" {
		typ = "File"
	}
	paths := strings.Split(params.Get("ObjectPath"), "\n")
	limit := map[string]int{"File": 1000, "Directory": 100}[typ]
	if limit == 0 || len(paths) > limit {
		s.reject(w, http.StatusBadRequest, "InvalidObjectPath.ExceedLimit", fmt.Sprintf("%d %s paths in one call", len(paths), typ))
		return
	}
	s.mu.Lock()
	fail := s.fail
	if fail == 0 {
		s.calls = append(s.calls, Call{ObjectType: typ, Paths: paths})
	}
	n := len(s.calls)
	s.mu.Unlock()
	if fail != 0 {
		writeJSON(w, fail, map[string]string{"Code": "ServiceUnavailable", "Message": "injected failure", "RequestId": "fake"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"RequestId": "fake", "RefreshTaskId": fmt.Sprint(n)})
}

// checkSignature verifies an RPC (signature version 1.0) request and returns why it fails, or "".
func (s *Server) checkSignature(method string, params url.Values) string {
	for _, p := range []string{"Signature", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp", "AccessKeyId"} {
		if params.Get(p) == "" {
			return "missing " + p
		}
	}
	if params.Get("SignatureMethod") != "HMAC-SHA1" || params.Get("SignatureVersion") != "1.0" {
		return "unsupported signature method"
	}
	if params.Get("AccessKeyId") != s.accessKeyID {
		return "unknown AccessKeyId"
	}
	signed := url.Values{}
	for k, v := range params {
		if k != "Signature" {
			signed[k] = v
		}
	}
	canonical := strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~").Replace(signed.Encode())
	toSign := method + "&%2F&" + url.QueryEscape(canonical)
	mac := hmac.New(sha1.New, []byte(s.secret+"&"))
	mac.Write([]byte(toSign))
	if !hmac.Equal([]byte(base64.StdEncoding.EncodeToString(mac.Sum(nil))), []byte(params.Get("Signature"))) {
		return "signature does not match"
	}
	return ""
}

func (s *Server) reject(w http.ResponseWriter, status int, code, msg string) {
	s.mu.Lock()
	s.rejected++
	s.mu.Unlock()
	writeJSON(w, status, map[string]string{"Code": code, "Message": msg, "RequestId": "fake"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
