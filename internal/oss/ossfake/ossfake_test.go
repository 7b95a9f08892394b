package ossfake

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
)

func newBucket(t *testing.T) (*Server, *oss.Bucket) {
	t.Helper()
	s := New(t, "bkt")
	s.RequireAccessKeyID("id")
	client, err := oss.New(s.URL, "id", "secret")
	if err != nil {
		t.Fatal(err)
	}
	bucket, err := client.Bucket("bkt")
	if err != nil {
		t.Fatal(err)
	}
	return s, bucket
}

func TestPutKeepsHeadersAndFormatsETags(t *testing.T) {
	t.Parallel()
	s, b := newBucket(t)
	body := []byte("hello")
	err := b.PutObject("dir/a b+c%41.html", bytes.NewReader(body), oss.ContentType("text/html; charset=utf-8"),
		oss.CacheControl("no-cache"), oss.Meta("md5", "x"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := b.GetObjectDetailedMeta("dir/a b+c%41.html")
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(body)
	if want := fmt.Sprintf(`"%X"`, sum); h.Get("ETag") != want {
		t.Errorf("ETag %s, want %s", h.Get("ETag"), want)
	}
	if h.Get("Cache-Control") != "no-cache" || h.Get("X-Oss-Meta-Md5") != "x" || h.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("headers not kept: %v", h)
	}
	if s.Count(OpPut) != 1 || s.Count(OpHead) != 1 || s.Requests() != 2 {
		t.Errorf("counts: put %d head %d total %d", s.Count(OpPut), s.Count(OpHead), s.Requests())
	}
}

func TestPutChecksContentMD5(t *testing.T) {
	t.Parallel()
	_, b := newBucket(t)
	wrong := md5.Sum([]byte("other"))
	err := b.PutObject("k", strings.NewReader("body"), oss.ContentMD5(base64.StdEncoding.EncodeToString(wrong[:])))
	var se oss.ServiceError
	if !errors.As(err, &se) || se.Code != "InvalidDigest" {
		t.Errorf("mismatched Content-MD5: %v", err)
	}
}

func TestListPagesWithURLEncoding(t *testing.T) {
	t.Parallel()
	s, b := newBucket(t)
	keys := []string{"p/a b", "p/c+d", "p/e%41", "p/f&<g>", "q/outside"}
	for _, k := range keys {
		s.PutObject(k, []byte(k), http.Header{}, "Normal")
	}
	var got []string
	token := ""
	pages := 0
	for {
		opts := []oss.Option{oss.Prefix("p/"), oss.MaxKeys(2)}
		if token != "" {
			opts = append(opts, oss.ContinuationToken(token))
		}
		res, err := b.ListObjectsV2(opts...)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, o := range res.Objects {
			got = append(got, o.Key)
			if o.ETag != strings.ToUpper(o.ETag) || o.Type != "Normal" {
				t.Errorf("listed %+v", o)
			}
		}
		if !res.IsTruncated {
			break
		}
		token = res.NextContinuationToken
	}
	if want := keys[:4]; fmt.Sprint(got) != fmt.Sprint(want) || pages != 2 {
		t.Errorf("listed %q in %d pages, want %q in 2", got, pages, want)
	}
	if _, err := b.ListObjectsV2(oss.MaxKeys(1001)); err == nil {
		t.Error("max-keys over 1000 accepted")
	}
}

func TestMultiDeleteLimit(t *testing.T) {
	t.Parallel()
	s, b := newBucket(t)
	var keys []string
	for i := range 1001 {
		k := fmt.Sprintf("k%04d", i)
		keys = append(keys, k)
		s.PutObject(k, nil, http.Header{}, "Normal")
	}
	if _, err := b.DeleteObjects(keys); err == nil {
		t.Fatal("a delete of 1001 keys was accepted")
	}
	res, err := b.DeleteObjects(keys[:1000])
	if err != nil {
		t.Fatal(err)
	}
	if len(res.DeletedObjects) != 1000 || len(s.Keys()) != 1 {
		t.Errorf("deleted %d, %d left", len(res.DeletedObjects), len(s.Keys()))
	}
}

func TestFaultsLatencyAndAccessKey(t *testing.T) {
	t.Parallel()
	s, b := newBucket(t)
	s.SetFault(func(op Op, key string) int {
		if op == OpPut && key == "bad" {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	var se oss.ServiceError
	if err := b.PutObject("bad", strings.NewReader("x")); !errors.As(err, &se) || se.StatusCode != 503 {
		t.Errorf("injected fault: %v", err)
	}
	s.SetLatency(30 * time.Millisecond)
	start := time.Now()
	if err := b.PutObject("good", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("request took %s despite 30ms latency", d)
	}
	s.RequireAccessKeyID("other")
	if _, err := b.GetObjectDetailedMeta("good"); err == nil {
		t.Error("a request signed with another key was served")
	}
}
