// Package ossfake owns an in-process fake of Alibaba Cloud OSS for tests: an httptest server that
// answers the calls the uploader makes the way OSS does where it matters (quoted uppercase MD5
// ETags, x-oss-meta-* kept, ListObjectsV2 paging with url encoding, multi-delete limits, Content-MD5
// checks), with injected faults and latency and a count of the requests it received.
package ossfake

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash/crc64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Op names a kind of request the fake answers, for counting and fault injection.
type Op string

// The operations the fake understands.
const (
	OpPut         Op = "PutObject"
	OpGet         Op = "GetObject"
	OpHead        Op = "HeadObject"
	OpDelete      Op = "DeleteObject"
	OpList        Op = "ListObjectsV2"
	OpMultiDelete Op = "DeleteMultipleObjects"
)

// maxDeleteKeys is the most keys OSS accepts in one DeleteMultipleObjects request.
const maxDeleteKeys = 1000

// keptHeaders are the request headers a PUT stores and later GET and HEAD return, besides x-oss-meta-*.
var keptHeaders = []string{"Content-Type", "Cache-Control", "Content-Encoding", "Content-Disposition", "Expires"}

// Object is one stored object as the fake holds it.
type Object struct {
	Key          string
	Size         int64
	MD5          [md5.Size]byte
	Body         []byte // nil when the server discards bodies
	Header       http.Header
	Type         string
	LastModified time.Time
}

// ETag returns the object's ETag as OSS formats it for a PutObject: the quoted uppercase hex MD5.
func (o Object) ETag() string {
	return `"` + strings.ToUpper(hex.EncodeToString(o.MD5[:])) + `"`
}

// Fault decides whether a request fails: it returns an HTTP status to answer with, or 0 to serve it.
type Fault func(op Op, key string) int

// Server is a fake OSS endpoint serving one bucket in path style (the style the SDK uses for an IP endpoint).
type Server struct {
	// URL is the endpoint to configure the SDK with, such as http://127.0.0.1:41234.
	URL string

	bucket string
	ts     *httptest.Server

	mu          sync.Mutex
	objects     map[string]*Object
	counts      map[Op]int
	total       int
	latency     time.Duration
	fault       Fault
	discard     func(key string) bool
	accessKeyID string
}

// New starts a fake OSS serving bucket on loopback and stops it when tb's test ends.
func New(tb testing.TB, bucket string) *Server {
	tb.Helper()
	s := &Server{bucket: bucket, objects: map[string]*Object{}, counts: map[Op]int{}}
	s.start()
	tb.Cleanup(func() { s.ts.Close() })
	return s
}

// start serves the fake on a new loopback port.
func (s *Server) start() {
	s.ts = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.ts.URL
}

// Restart stops serving and serves the same bucket again at a new URL. Stopping waits until every
// connection has ended, so once Restart returns no request sent before it, not even one whose
// client gave up on it while the fake was still reading it, can change the bucket any more.
func (s *Server) Restart() {
	s.ts.Close()
	s.start()
}

// SetLatency delays every response by d, as a distant endpoint would.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetFault installs f to decide which requests fail; nil serves everything.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// SetDiscardBodies makes the fake keep only the size and hash of objects whose key matches discard,
// so benchmarks measure the client rather than the fake's memory; nil keeps every body.
func (s *Server) SetDiscardBodies(discard func(key string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.discard = discard
}

// RequireAccessKeyID makes the fake answer 403 to any request not signed with id.
func (s *Server) RequireAccessKeyID(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accessKeyID = id
}

// Requests returns how many requests the fake received, failed ones included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Count returns how many requests of kind op the fake received, failed ones included.
func (s *Server) Count(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[op]
}

// ResetCounts sets all request counters to zero.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total = 0
	s.counts = map[Op]int{}
}

// Object returns a copy of the object stored under key.
func (s *Server) Object(key string) (Object, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[key]
	if !ok {
		return Object{}, false
	}
	c := *o
	c.Header = o.Header.Clone()
	return c, true
}

// Keys returns the stored keys in order.
func (s *Server) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.objects))
	for k := range s.objects {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// PutObject stores an object directly, bypassing HTTP, to seed a bucket; typ is the OSS object type, such as Normal or Multipart.
func (s *Server) PutObject(key string, body []byte, header http.Header, typ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[key] = &Object{Key: key, Size: int64(len(body)), MD5: md5.Sum(body), Body: bytes.Clone(body),
		Header: header.Clone(), Type: typ, LastModified: time.Now().UTC()}
}

// DeleteObject removes an object directly, bypassing HTTP.
func (s *Server) DeleteObject(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objects, key)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	op, key, ok := s.route(r)
	s.mu.Lock()
	s.total++
	if ok {
		s.counts[op]++
	}
	latency, fault, ak := s.latency, s.fault, s.accessKeyID
	s.mu.Unlock()

	if latency > 0 {
		time.Sleep(latency)
	}
	if !ok {
		writeError(w, http.StatusBadRequest, "InvalidRequest", "unsupported request")
		return
	}
	if ak != "" && !strings.HasPrefix(r.Header.Get("Authorization"), "OSS "+ak+":") {
		writeError(w, http.StatusForbidden, "InvalidAccessKeyId", "the access key id does not match")
		return
	}
	if fault != nil {
		if code := fault(op, key); code != 0 {
			// Drain the body so the client sees the status rather than a reset connection.
			_, _ = io.Copy(io.Discard, r.Body)
			writeError(w, code, "InjectedFault", "injected failure")
			return
		}
	}
	switch op {
	case OpPut:
		s.put(w, r, key)
	case OpGet, OpHead:
		s.get(w, r, key, op == OpHead)
	case OpDelete:
		s.mu.Lock()
		delete(s.objects, key)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case OpList:
		s.list(w, r)
	case OpMultiDelete:
		s.multiDelete(w, r)
	}
}

// route classifies a path-style request as an operation on a key of the fake's bucket.
func (s *Server) route(r *http.Request) (Op, string, bool) {
	p := r.URL.EscapedPath()
	bucketPath := "/" + s.bucket
	if p != bucketPath && !strings.HasPrefix(p, bucketPath+"/") {
		return "", "", false
	}
	key, err := url.PathUnescape(strings.TrimPrefix(strings.TrimPrefix(p, bucketPath), "/"))
	if err != nil {
		return "", "", false
	}
	q := r.URL.Query()
	if key == "" {
		switch {
		case r.Method == http.MethodGet && q.Get("list-type") == "2":
			return OpList, "", true
		case r.Method == http.MethodPost && q.Has("delete"):
			return OpMultiDelete, "", true
		}
		return "", "", false
	}
	switch r.Method {
	case http.MethodPut:
		return OpPut, key, true
	case http.MethodGet:
		return OpGet, key, true
	case http.MethodHead:
		return OpHead, key, true
	case http.MethodDelete:
		return OpDelete, key, true
	}
	return "", "", false
}

func (s *Server) put(w http.ResponseWriter, r *http.Request, key string) {
	h := md5.New()
	crc := crc64.New(crc64.MakeTable(crc64.ECMA))
	var buf bytes.Buffer
	s.mu.Lock()
	discard := s.discard != nil && s.discard(key)
	s.mu.Unlock()
	sinks := []io.Writer{h, crc}
	if !discard {
		sinks = append(sinks, &buf)
	}
	n, err := io.Copy(io.MultiWriter(sinks...), r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "IncompleteBody", "reading the body: "+err.Error())
		return
	}
	if r.ContentLength >= 0 && n != r.ContentLength {
		writeError(w, http.StatusBadRequest, "IncompleteBody", "body shorter than Content-Length")
		return
	}
	var sum [md5.Size]byte
	copy(sum[:], h.Sum(nil))
	if want := r.Header.Get("Content-MD5"); want != "" && want != base64.StdEncoding.EncodeToString(sum[:]) {
		writeError(w, http.StatusBadRequest, "InvalidDigest", "the Content-MD5 you specified did not match what we received")
		return
	}
	header := http.Header{}
	for _, k := range keptHeaders {
		if v := r.Header.Get(k); v != "" {
			header.Set(k, v)
		}
	}
	for k, v := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-oss-meta-") {
			header[http.CanonicalHeaderKey(strings.ToLower(k))] = slices.Clone(v)
		}
	}
	o := &Object{Key: key, Size: n, MD5: sum, Header: header, Type: "Normal", LastModified: time.Now().UTC()}
	if !discard {
		o.Body = buf.Bytes()
	}
	s.mu.Lock()
	s.objects[key] = o
	s.mu.Unlock()
	w.Header().Set("ETag", o.ETag())
	w.Header().Set("x-oss-hash-crc64ecma", strconv.FormatUint(crc.Sum64(), 10))
	w.Header().Set("x-oss-request-id", "fake")
	w.WriteHeader(http.StatusOK)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, key string, head bool) {
	s.mu.Lock()
	o, ok := s.objects[key]
	var c Object
	if ok {
		c = *o
	}
	s.mu.Unlock()
	if !ok {
		if head {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		writeError(w, http.StatusNotFound, "NoSuchKey", "the specified key does not exist")
		return
	}
	for k, v := range c.Header {
		w.Header()[k] = slices.Clone(v)
	}
	w.Header().Set("ETag", c.ETag())
	w.Header().Set("x-oss-object-type", c.Type)
	w.Header().Set("Last-Modified", c.LastModified.Format(http.TimeFormat))
	w.Header().Set("Content-Length", strconv.FormatInt(c.Size, 10))
	w.WriteHeader(http.StatusOK)
	if !head && c.Body != nil {
		_, _ = w.Write(c.Body)
	}
}

type listResult struct {
	XMLName               xml.Name      `xml:"ListBucketResult"`
	Name                  string        `xml:"Name"`
	Prefix                string        `xml:"Prefix"`
	MaxKeys               int           `xml:"MaxKeys"`
	EncodingType          string        `xml:"EncodingType,omitempty"`
	IsTruncated           bool          `xml:"IsTruncated"`
	KeyCount              int           `xml:"KeyCount"`
	ContinuationToken     string        `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string        `xml:"NextContinuationToken,omitempty"`
	Contents              []listContent `xml:"Contents"`
}

type listContent struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Type         string `xml:"Type"`
	Size         int64  `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	maxKeys := 100
	if v := q.Get("max-keys"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "InvalidArgument", "max-keys must be between 1 and 1000")
			return
		}
		maxKeys = n
	}
	prefix := q.Get("prefix")
	after := ""
	if tok := q.Get("continuation-token"); tok != "" {
		b, err := hex.DecodeString(tok)
		if err != nil {
			writeError(w, http.StatusBadRequest, "InvalidArgument", "bad continuation token")
			return
		}
		after = string(b)
	}
	encode := func(s string) string { return s }
	res := listResult{Name: s.bucket, MaxKeys: maxKeys, ContinuationToken: q.Get("continuation-token")}
	if et := q.Get("encoding-type"); et == "url" {
		res.EncodingType = "url"
		encode = url.QueryEscape
	} else if et != "" {
		writeError(w, http.StatusBadRequest, "InvalidArgument", "unknown encoding-type")
		return
	}
	res.Prefix = encode(prefix)

	s.mu.Lock()
	var keys []string
	for k := range s.objects {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if len(keys) > maxKeys {
		keys = keys[:maxKeys]
		res.IsTruncated = true
		res.NextContinuationToken = hex.EncodeToString([]byte(keys[len(keys)-1]))
	}
	for _, k := range keys {
		o := s.objects[k]
		res.Contents = append(res.Contents, listContent{Key: encode(k), LastModified: o.LastModified.Format("2006-01-02T15:04:05.000Z"),
			ETag: o.ETag(), Type: o.Type, Size: o.Size, StorageClass: "Standard"})
	}
	s.mu.Unlock()
	res.KeyCount = len(res.Contents)
	writeXML(w, res)
}

type deleteRequest struct {
	Quiet   bool `xml:"Quiet"`
	Objects []struct {
		Key string `xml:"Key"`
	} `xml:"Object"`
}

type deleteResult struct {
	XMLName      xml.Name `xml:"DeleteResult"`
	EncodingType string   `xml:"EncodingType,omitempty"`
	Deleted      []struct {
		Key string `xml:"Key"`
	} `xml:"Deleted"`
}

func (s *Server) multiDelete(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "IncompleteBody", err.Error())
		return
	}
	sum := md5.Sum(body)
	if r.Header.Get("Content-MD5") != base64.StdEncoding.EncodeToString(sum[:]) {
		writeError(w, http.StatusBadRequest, "InvalidDigest", "Content-MD5 missing or wrong on DeleteMultipleObjects")
		return
	}
	var req deleteRequest
	if err := xml.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "MalformedXML", err.Error())
		return
	}
	if len(req.Objects) == 0 || len(req.Objects) > maxDeleteKeys {
		writeError(w, http.StatusBadRequest, "MalformedXML", fmt.Sprintf("a delete request names %d keys; OSS accepts 1 to %d", len(req.Objects), maxDeleteKeys))
		return
	}
	encode := func(s string) string { return s }
	var res deleteResult
	if r.URL.Query().Get("encoding-type") == "url" {
		res.EncodingType = "url"
		encode = url.QueryEscape
	}
	s.mu.Lock()
	for _, o := range req.Objects {
		delete(s.objects, o.Key)
		if !req.Quiet {
			res.Deleted = append(res.Deleted, struct {
				Key string `xml:"Key"`
			}{encode(o.Key)})
		}
	}
	s.mu.Unlock()
	writeXML(w, res)
}

type errorBody struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	RequestID string   `xml:"RequestId"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-oss-request-id", "fake")
	w.WriteHeader(status)
	_ = xml.NewEncoder(w).Encode(errorBody{Code: code, Message: msg, RequestID: "fake"})
}

func writeXML(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-oss-request-id", "fake")
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(v)
}
