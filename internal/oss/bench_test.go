package oss

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	alioss "github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/miaobu/miaobu/internal/oss/ossfake"
	"github.com/miaobu/miaobu/internal/serving"
)

// benchSite writes a generated site of n files (pages, hashed bundles, images; 1–54 KiB, about
// 27 KiB on average) and returns its directory, its total size and one page to edit.
func benchSite(b *testing.B, n int) (string, int64, string) {
	b.Helper()
	dir := b.TempDir()
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	var total int64
	buf := make([]byte, 54<<10)
	for i := range n {
		var rel string
		switch i % 5 {
		case 0, 1:
			rel = fmt.Sprintf("section%d/page%d/index.html", i%50, i)
		case 2, 3:
			rel = fmt.Sprintf("assets/chunk%d-%08x.js", i, rng.Uint32()|1<<31)
		default:
			rel = fmt.Sprintf("images/photo%d.png", i)
		}
		size := 1<<10 + rng.IntN(len(buf)-1<<10)
		for j := range size {
			buf[j] = byte(rng.Uint32())
		}
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, buf[:size], 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(size)
	}
	return dir, total, "section0/page0/index.html"
}

func benchConfig(fake *ossfake.Server, cache string) Config {
	return Config{Endpoint: fake.URL, Bucket: testBucket, Prefix: testPrefix, AccessKeyID: testKeyID, AccessKeySecret: testSecret, HashCachePath: cache, RetryBase: time.Millisecond}
}

func benchFake(b *testing.B, latency time.Duration) *ossfake.Server {
	fake := ossfake.New(b, testBucket)
	fake.SetDiscardBodies(func(key string) bool { return !strings.HasSuffix(key, manifestRel) })
	fake.SetLatency(latency)
	return fake
}

// BenchmarkSync measures Sync against the fake OSS, with a plain sequential PutObject loop as the
// baseline; run it with -benchtime=1x, as each first upload builds a fresh bucket.
func BenchmarkSync(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, latency := range []time.Duration{0, 20 * time.Millisecond} {
			b.Run(fmt.Sprintf("files=%d/latency=%s", n, latency), func(b *testing.B) {
				if testing.Short() && (n > 1000 || latency > 0) {
					b.Skip("large or slow; run without -short")
				}
				dir, total, page := benchSite(b, n)
				b.Run("first", func(b *testing.B) { benchFirst(b, dir, total, latency) })
				b.Run("noop", func(b *testing.B) { benchRedeploy(b, dir, latency, "") })
				b.Run("onepage", func(b *testing.B) { benchRedeploy(b, dir, latency, page) })
				b.Run("plainloop", func(b *testing.B) {
					if time.Duration(n)*latency > time.Minute {
						b.Skip("the sequential loop would take minutes")
					}
					benchPlainLoop(b, dir, total, latency)
				})
			})
		}
	}
}

func benchFirst(b *testing.B, dir string, total int64, latency time.Duration) {
	b.SetBytes(total)
	requests := 0
	for b.Loop() {
		b.StopTimer()
		fake := benchFake(b, latency)
		cache := filepath.Join(b.TempDir(), "hashes")
		b.StartTimer()
		res, err := Sync(context.Background(), benchConfig(fake, cache), dir, nil)
		if err != nil {
			b.Fatal(err)
		}
		requests += res.Requests
	}
	b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
}

// edits numbers page edits across runs: -count repeats a benchmark on the same site directory.
var edits atomic.Int64

// benchRedeploy measures a redeploy after a first upload; with page set, each one edits that page.
func benchRedeploy(b *testing.B, dir string, latency time.Duration, page string) {
	fake := benchFake(b, 0)
	cfg := benchConfig(fake, filepath.Join(b.TempDir(), "hashes"))
	if _, err := Sync(context.Background(), cfg, dir, nil); err != nil {
		b.Fatal(err)
	}
	fake.SetLatency(latency)
	requests, uploads := 0, 0
	for b.Loop() {
		if page != "" {
			b.StopTimer()
			edit := fmt.Appendf(nil, "<h1>edit %d</h1>", edits.Add(1))
			if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(page)), edit, 0o644); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		res, err := Sync(context.Background(), cfg, dir, nil)
		if err != nil {
			b.Fatal(err)
		}
		requests += res.Requests
		uploads += res.Uploaded
	}
	b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
	b.ReportMetric(float64(uploads)/float64(b.N), "uploads/op")
}

// benchPlainLoop is the baseline: one PutObject after another, streaming each file.
func benchPlainLoop(b *testing.B, dir string, total int64, latency time.Duration) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	for b.Loop() {
		b.StopTimer()
		fake := benchFake(b, latency)
		client, err := alioss.New(fake.URL, testKeyID, testSecret)
		if err != nil {
			b.Fatal(err)
		}
		bucket, err := client.Bucket(testBucket)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for _, p := range files {
			rel, _ := filepath.Rel(dir, p)
			rel = filepath.ToSlash(rel)
			f, err := os.Open(p)
			if err != nil {
				b.Fatal(err)
			}
			err = bucket.PutObject(testPrefix+rel, f, alioss.ContentType(serving.ContentType(rel)), alioss.CacheControl(serving.CacheControl(rel)))
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(files)), "requests/op")
}
