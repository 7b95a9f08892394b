package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/pipeline"
	"github.com/miaobu/miaobu/internal/publish"
	"github.com/miaobu/miaobu/internal/store"
)

// benchAgent is an agent without workers, for publishing and serving by hand.
func benchAgent(b *testing.B) (*agenttest.Agent, *store.Project) {
	b.Helper()
	a := agenttest.StartWith(b, agenttest.Config(b), agenttest.Options{APIOnly: true})
	p := &store.Project{Name: "bench", Slug: "bench", RepoURL: "/nowhere", DefaultBranch: "main", Target: "local"}
	if err := a.Store.CreateProject(p); err != nil {
		b.Fatal(err)
	}
	return a, p
}

// publishOnce publishes src as a new deployment of p and makes it live: the local target's share
// of a deploy after the user's build.
func publishOnce(b *testing.B, a *agenttest.Agent, p *store.Project, src string) {
	d := &store.Deployment{ProjectID: p.ID, CommitSHA: strings.Repeat("a", 40), Branch: "main", Trigger: "manual"}
	if err := a.Store.CreateDeployment(d); err != nil {
		b.Fatal(err)
	}
	if _, err := a.Store.ClaimNext(func(int64) bool { return false }); err != nil {
		b.Fatal(err)
	}
	if _, err := publish.Copy(src, a.Domain().SiteDir(p.Slug, d.ID)); err != nil {
		b.Fatal(err)
	}
	if err := a.Publish(context.Background(), p, d, &pipeline.Result{}, discardLog(b)); err != nil {
		b.Fatal(err)
	}
}

// discardLog is a build log nobody reads.
func discardLog(b *testing.B) *pipeline.Log {
	l, err := pipeline.OpenLog(filepath.Join(b.TempDir(), "log"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

// BenchmarkPublishLocal publishes a 1,000-file, 20 MB output (copy with hard links, then the live
// pointer switch).
func BenchmarkPublishLocal(b *testing.B) {
	a, p := benchAgent(b)
	src := filepath.Join(a.Config.DataDir, "builds", "out")
	chunk := bytes.Repeat([]byte("x"), 20*1024)
	for i := range 1000 {
		name := filepath.Join(src, fmt.Sprintf("dir%02d", i%50), fmt.Sprintf("file%04d.js", i))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(name, chunk, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		publishOnce(b, a, p, src)
	}
}

// benchmarkServe measures requests per second for one path of the live site at 64 concurrent clients.
func benchmarkServe(b *testing.B, path string) {
	a, p := benchAgent(b)
	src := filepath.Join(a.Config.DataDir, "builds", "out")
	files := map[string][]byte{
		"index.html":             []byte("<!doctype html><title>bench</title><h1>hello</h1>"),
		"assets/app-3f9a1c2e.js": bytes.Repeat([]byte("a"), 100*1024),
	}
	for name, data := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, name)), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	publishOnce(b, a, p, src)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", a.URL+path, nil)
			req.Host = "bench.localhost"
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkServeHTML serves a small HTML page.
func BenchmarkServeHTML(b *testing.B) { benchmarkServe(b, "/") }

// BenchmarkServeAsset serves a 100 KB hashed asset.
func BenchmarkServeAsset(b *testing.B) { benchmarkServe(b, "/assets/app-3f9a1c2e.js") }
