package oss

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	alioss "github.com/aliyun/aliyun-oss-go-sdk/oss"
)

// maxDeleteBatch is the most keys OSS accepts in one DeleteMultipleObjects request.
const maxDeleteBatch = 1000

// listPageSize is the largest page ListObjectsV2 returns.
const listPageSize = 1000

// maxAttempts bounds the tries of one request that fails with a 5xx or a network error.
const maxAttempts = 4

var errUnknownManifest = errors.New("unknown manifest version")

// remoteObject is one listed object.
type remoteObject struct {
	size int64
	md5  string // lowercase hex, empty when the ETag is not an MD5
}

// syncer holds one Sync's client and counters.
type syncer struct {
	cfg      Config
	bucket   *alioss.Bucket
	log      io.Writer
	requests atomic.Int64
}

func (cfg Config) normalize() (Config, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return cfg, errors.New("oss: endpoint and bucket are required")
	}
	if !strings.Contains(cfg.Endpoint, "://") {
		cfg.Endpoint = "https://" + cfg.Endpoint
	}
	if u, err := url.Parse(cfg.Endpoint); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return cfg, fmt.Errorf("oss: endpoint %q is not an http or https URL", cfg.Endpoint)
	}
	cfg.Prefix = strings.TrimLeft(cfg.Prefix, "/")
	if cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.MaxDelete <= 0 {
		cfg.MaxDelete = DefaultMaxDelete
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = DefaultRetryBase
	}
	return cfg, nil
}

func newSyncer(cfg Config, log io.Writer) (*syncer, error) {
	client, err := alioss.New(cfg.Endpoint, cfg.AccessKeyID, cfg.AccessKeySecret,
		alioss.UserAgent("miaobu"),
		alioss.MaxConns(cfg.Concurrency*2, cfg.Concurrency*2, 0))
	if err != nil {
		return nil, fmt.Errorf("oss: %w", err)
	}
	bucket, err := client.Bucket(cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("oss: %w", err)
	}
	return &syncer{cfg: cfg, bucket: bucket, log: log}, nil
}

// logf writes one line to the deployment log, with credentials hidden should an error quote them.
func (s *syncer) logf(format string, args ...any) {
	_, _ = io.WriteString(s.log, hide(fmt.Sprintf(format, args...), s.cfg.AccessKeyID, s.cfg.AccessKeySecret)+"\n")
}

// list reads the prefix with paged ListObjectsV2, keyed by site-relative path.
func (s *syncer) list(ctx context.Context) (map[string]remoteObject, error) {
	objects := map[string]remoteObject{}
	token := ""
	for {
		opts := []alioss.Option{alioss.WithContext(ctx), alioss.Prefix(s.cfg.Prefix), alioss.MaxKeys(listPageSize)}
		if token != "" {
			opts = append(opts, alioss.ContinuationToken(token))
		}
		var page alioss.ListObjectsResultV2
		err := s.retry(ctx, func() error {
			var err error
			page, err = s.bucket.ListObjectsV2(opts...)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", s.cfg.Prefix, err)
		}
		for _, o := range page.Objects {
			rel := strings.TrimPrefix(o.Key, s.cfg.Prefix)
			if rel == "" || strings.HasSuffix(rel, "/") {
				continue
			}
			r := remoteObject{size: o.Size}
			if o.Type == "Normal" {
				r.md5 = strings.ToLower(strings.Trim(o.ETag, `"`))
			}
			objects[rel] = r
		}
		if !page.IsTruncated {
			return objects, nil
		}
		if page.NextContinuationToken == "" {
			return nil, errors.New("listing: truncated page without a continuation token")
		}
		token = page.NextContinuationToken
	}
}

func (s *syncer) readManifest(ctx context.Context) (manifest, error) {
	var data []byte
	err := s.retry(ctx, func() error {
		body, err := s.bucket.GetObject(s.cfg.Prefix+manifestRel, alioss.WithContext(ctx))
		if err != nil {
			return err
		}
		defer body.Close()
		data, err = io.ReadAll(body)
		return err
	})
	var se alioss.ServiceError
	if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
		return manifest{Files: map[string]manifestEntry{}}, nil
	}
	if err != nil {
		return manifest{}, fmt.Errorf("reading the manifest: %w", err)
	}
	m, err := decodeManifest(bytes.NewReader(data))
	if err != nil {
		s.logf("warning: ignoring an unreadable manifest (%v); objects will be checked one by one", err)
		return manifest{Files: map[string]manifestEntry{}}, nil
	}
	return m, nil
}

func (s *syncer) writeManifest(ctx context.Context, m manifest) error {
	data := m.encode()
	sum := md5.Sum(data)
	err := s.retry(ctx, func() error {
		return s.bucket.PutObject(s.cfg.Prefix+manifestRel, bytes.NewReader(data), alioss.WithContext(ctx),
			alioss.ContentType("application/gzip"), alioss.CacheControl("no-store"), alioss.ContentMD5(contentMD5(sum)))
	})
	if err != nil {
		return fmt.Errorf("writing the manifest: %w", err)
	}
	return nil
}

func (s *syncer) head(ctx context.Context, rel string) (http.Header, error) {
	var h http.Header
	err := s.retry(ctx, func() error {
		var err error
		h, err = s.bucket.GetObjectDetailedMeta(s.cfg.Prefix+rel, alioss.WithContext(ctx))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the headers of %s: %w", rel, err)
	}
	return h, nil
}

// put uploads one file from disk as a stream, with the headers the local target serves and the
// metadata that lets a later Sync verify the object with one HEAD.
func (s *syncer) put(ctx context.Context, u upload) error {
	return s.retry(ctx, func() error {
		f, err := os.Open(u.file.abs)
		if err != nil {
			return err
		}
		defer f.Close()
		return s.bucket.PutObject(s.cfg.Prefix+u.file.rel, f, alioss.WithContext(ctx),
			alioss.ContentType(u.contentType), alioss.CacheControl(u.cacheControl),
			alioss.ContentMD5(contentMD5(u.file.md5)),
			alioss.Meta(metaMD5, hex.EncodeToString(u.file.md5[:])), alioss.Meta(metaHeaders, u.headers))
	})
}

func (s *syncer) deleteBatch(ctx context.Context, rels []string) error {
	keys := make([]string, len(rels))
	for i, rel := range rels {
		keys[i] = s.cfg.Prefix + rel
	}
	err := s.retry(ctx, func() error {
		_, err := s.bucket.DeleteObjects(keys, alioss.WithContext(ctx), alioss.DeleteObjectsQuiet(true))
		return err
	})
	if err != nil {
		return fmt.Errorf("deleting %d stale objects: %w", len(keys), err)
	}
	return nil
}

// retry runs one request, trying again with exponential backoff and jitter when it fails with a
// 5xx, a 429 or a network error; every try counts as a request.
func (s *syncer) retry(ctx context.Context, do func() error) error {
	var err error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 {
			d := s.cfg.RetryBase << (attempt - 1)
			d += rand.N(d/2 + 1)
			select {
			case <-ctx.Done():
				return errors.Join(err, ctx.Err())
			case <-time.After(d):
			}
		}
		s.requests.Add(1)
		err = do()
		if err == nil || !retryable(ctx, err) {
			return err
		}
	}
	return err
}

// retryable reports whether err may pass on another try.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var se alioss.ServiceError
	if errors.As(err, &se) {
		return se.StatusCode >= 500 || se.StatusCode == http.StatusTooManyRequests
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return false
	}
	// Anything else is the network or a damaged response (CRC mismatch, truncated body).
	return true
}

// pool runs do for indexes 0..n-1 with at most cfg.Concurrency at a time; after the first error
// it starts no more and returns that error once the running ones finish.
func (s *syncer) pool(ctx context.Context, n int, do func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, s.cfg.Concurrency)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := do(ctx, i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// redactedError hides credentials in an error's text and keeps the chain for errors.Is and errors.As.
type redactedError struct {
	err     error
	secrets []string
}

func (e redactedError) Error() string { return hide(e.err.Error(), e.secrets...) }

// hide replaces every non-empty secret in msg.
func hide(msg string, secrets ...string) string {
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}

func (e redactedError) Unwrap() error { return e.err }

func redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	return redactedError{err: err, secrets: secrets}
}
