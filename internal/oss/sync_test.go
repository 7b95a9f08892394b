package oss

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/cdn"
	"github.com/miaobu/miaobu/internal/cdn/cdnfake"
	"github.com/miaobu/miaobu/internal/oss/ossfake"
	"github.com/miaobu/miaobu/internal/serving"
)

const (
	testBucket = "site"
	testPrefix = "projects/blog/"
	testKeyID  = "AKIDtest0001"
	testSecret = "secretValue0001"
)

// env is a fake bucket, a site directory and a config pointing at both.
type env struct {
	t    *testing.T
	fake *ossfake.Server
	dir  string
	cfg  Config
	log  bytes.Buffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	fake := ossfake.New(t, testBucket)
	fake.RequireAccessKeyID(testKeyID)
	return &env{t: t, fake: fake, dir: t.TempDir(), cfg: Config{
		Endpoint: fake.URL, Bucket: testBucket, Prefix: testPrefix,
		AccessKeyID: testKeyID, AccessKeySecret: testSecret,
		HashCachePath: filepath.Join(t.TempDir(), "hashes"), RetryBase: time.Millisecond,
	}}
}

// write replaces the site directory's content with files (site-relative path → body).
func (e *env) write(files map[string]string) {
	e.t.Helper()
	if err := os.RemoveAll(e.dir); err != nil {
		e.t.Fatal(err)
	}
	for rel, body := range files {
		p := filepath.Join(e.dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) sync(ctx context.Context) (Result, error) {
	e.log.Reset()
	e.fake.ResetCounts()
	return Sync(ctx, e.cfg, e.dir, &e.log)
}

func (e *env) mustSync() Result {
	e.t.Helper()
	res, err := e.sync(context.Background())
	if err != nil {
		e.t.Fatalf("Sync: %v\nlog:\n%s", err, e.log.String())
	}
	return res
}

// assertBucket checks the prefix holds exactly files, with the headers the local target serves.
func (e *env) assertBucket(files map[string]string, extra ...string) {
	e.t.Helper()
	var got []string
	for _, k := range e.fake.Keys() {
		rel, ok := strings.CutPrefix(k, testPrefix)
		if !ok {
			e.t.Errorf("object %q outside the prefix", k)
			continue
		}
		if rel != manifestRel {
			got = append(got, rel)
		}
	}
	want := slices.Collect(func(yield func(string) bool) {
		for rel := range files {
			if !yield(rel) {
				return
			}
		}
	})
	want = append(want, extra...)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		e.t.Fatalf("bucket holds %q, want %q", got, want)
	}
	for rel, body := range files {
		o, _ := e.fake.Object(testPrefix + rel)
		if string(o.Body) != body {
			e.t.Errorf("%s: body %q, want %q", rel, o.Body, body)
		}
		if got, want := o.Header.Get("Content-Type"), serving.ContentType(rel); got != want {
			e.t.Errorf("%s: Content-Type %q, want %q", rel, got, want)
		}
		if got, want := o.Header.Get("Cache-Control"), serving.CacheControl(rel); got != want {
			e.t.Errorf("%s: Cache-Control %q, want %q", rel, got, want)
		}
		if o.Header.Get("X-Oss-Meta-Md5") == "" || o.Header.Get("X-Oss-Meta-Headers") == "" {
			e.t.Errorf("%s: metadata missing: %v", rel, o.Header)
		}
	}
}

func site() map[string]string {
	return map[string]string{
		"index.html":                "<h1>home</h1>",
		"404.html":                  "<h1>not found</h1>",
		"about/index.html":          "<h1>about</h1>",
		"assets/index-BdKz3x9a.js":  "console.log(1)",
		"assets/index-Cq2w8Lm1.css": "body{}",
		"assets/logo.svg":           "<svg/>",
		"sw.js":                     "self.addEventListener('fetch',()=>{})",
		"docs/a b+c%41.html":        "<p>odd name</p>",
		"robots.txt":                "User-agent: *",
		".well-known/empty.txt":     "",
	}
}

func TestFirstDeployOrdersAssetsBeforePages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(site())
	var mu sync.Mutex
	var order []string
	e.fake.SetFault(func(op ossfake.Op, key string) int {
		if op == ossfake.OpPut {
			mu.Lock()
			order = append(order, strings.TrimPrefix(key, testPrefix))
			mu.Unlock()
		}
		return 0
	})
	res := e.mustSync()
	e.assertBucket(site())
	if res.Uploaded != len(site()) || res.Unchanged != 0 || res.Deleted != 0 {
		t.Errorf("result %+v, want %d uploads", res, len(site()))
	}
	if len(res.Changed) != len(site()) {
		t.Errorf("changed %q", res.Changed)
	}
	if got := e.fake.Count(ossfake.OpPut); got != len(site())+1 {
		t.Errorf("%d PUTs, want %d files and the manifest", got, len(site())+1)
	}
	if res.Requests != e.fake.Requests() {
		t.Errorf("result counts %d requests, the fake received %d", res.Requests, e.fake.Requests())
	}
	if o, _ := e.fake.Object(testPrefix + "index.html"); !strings.HasPrefix(o.ETag(), `"`) || o.ETag() != strings.ToUpper(o.ETag()) {
		t.Errorf("ETag %s is not quoted uppercase hex", o.ETag())
	}
	rank := func(rel string) int { return phase(rel) }
	for i := 1; i < len(order); i++ {
		if order[i] == manifestRel {
			if i != len(order)-1 {
				t.Errorf("manifest written before the last upload: %q", order)
			}
			continue
		}
		if rank(order[i]) < rank(order[i-1]) {
			t.Errorf("upload order %q puts %s after %s", order, order[i], order[i-1])
		}
	}
	firstPage := slices.IndexFunc(order, serving.IsHTML)
	for _, rel := range order[firstPage:] {
		if rel != manifestRel && !serving.IsHTML(rel) && rel != "sw.js" {
			t.Errorf("asset %s uploaded after a page: %q", rel, order)
		}
	}
	if !strings.Contains(e.log.String(), fmt.Sprintf("plan: upload %d files", len(site()))) || !strings.Contains(e.log.String(), "done in") {
		t.Errorf("log lacks the plan or the totals:\n%s", e.log.String())
	}
}

func TestNoopRedeployUploadsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(site())
	e.mustSync()
	res := e.mustSync()
	if res.Uploaded != 0 || res.Deleted != 0 || res.Unchanged != len(site()) || len(res.Changed) != 0 {
		t.Errorf("no-op redeploy: %+v", res)
	}
	if e.fake.Count(ossfake.OpPut) != 0 || e.fake.Count(ossfake.OpHead) != 0 {
		t.Errorf("no-op redeploy sent %d PUTs and %d HEADs", e.fake.Count(ossfake.OpPut), e.fake.Count(ossfake.OpHead))
	}
	if got := e.fake.Requests(); got != 2 {
		t.Errorf("no-op redeploy sent %d requests, want a LIST and a manifest GET", got)
	}
	e.assertBucket(site())
}

func TestOnePageChangeUploadsThePageAndTheManifest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	files := site()
	e.write(files)
	e.mustSync()
	files["about/index.html"] = "<h1>about us</h1>"
	e.write(files)
	res := e.mustSync()
	if res.Uploaded != 1 || !slices.Equal(res.Changed, []string{"about/index.html"}) {
		t.Errorf("one-page change: %+v", res)
	}
	if got := e.fake.Count(ossfake.OpPut); got != 2 {
		t.Errorf("%d PUTs, want the page and the manifest", got)
	}
	e.assertBucket(files)

	api := cdnfake.New(t, testKeyID, testSecret)
	plan := cdn.PlanPurge("www.example.com", res.Changed, 0)
	if err := cdn.Purge(context.Background(), cdn.Config{Endpoint: api.URL, AccessKeyID: testKeyID, AccessKeySecret: testSecret}, plan, nil); err != nil {
		t.Fatal(err)
	}
	if n := api.URLCount(); n == 0 || n > 3 {
		t.Errorf("purged %d URLs for a one-page change, want 1 to 3: %+v", n, api.Calls())
	}
}

func TestDeletedFilesAndKeptHashedAssets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	files := site()
	e.write(files)
	e.mustSync()

	delete(files, "assets/logo.svg")
	delete(files, "docs/a b+c%41.html")
	delete(files, "assets/index-BdKz3x9a.js")
	files["assets/index-Zz9y8X7w.js"] = "console.log(2)"
	e.write(files)
	res := e.mustSync()
	if res.Deleted != 2 || res.Kept != 1 || res.Uploaded != 1 {
		t.Errorf("result %+v, want 2 deleted, 1 kept, 1 uploaded", res)
	}
	if want := []string{"assets/index-Zz9y8X7w.js", "assets/logo.svg", "docs/a b+c%41.html"}; !slices.Equal(res.Changed, want) {
		t.Errorf("changed %q, want %q", res.Changed, want)
	}
	// Pages still open in a browser may fetch the old bundle for one more deploy.
	e.assertBucket(files, "assets/index-BdKz3x9a.js")

	res = e.mustSync()
	if res.Deleted != 1 || res.Uploaded != 0 || !slices.Equal(res.Changed, []string{"assets/index-BdKz3x9a.js"}) {
		t.Errorf("second deploy %+v, want the kept bundle deleted", res)
	}
	if got := e.fake.Count(ossfake.OpPut); got != 0 {
		t.Errorf("second deploy sent %d PUTs, want none", got)
	}
	e.assertBucket(files)
}

func TestAssetFailureLeavesPagesUntouched(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	files := site()
	e.write(files)
	e.mustSync()

	next := site()
	next["assets/index-BdKz3x9a.js"] = "console.log('new')"
	next["index.html"] = "<h1>new home</h1>"
	next["about/index.html"] = "<h1>new about</h1>"
	e.write(next)
	e.fake.SetFault(func(op ossfake.Op, key string) int {
		if op == ossfake.OpPut && strings.HasSuffix(key, ".js") {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	res, err := e.sync(context.Background())
	if err == nil {
		t.Fatal("Sync succeeded with an asset failing")
	}
	if res.Uploaded != 0 {
		t.Errorf("uploaded %d files", res.Uploaded)
	}
	if got := e.fake.Count(ossfake.OpPut); got != maxAttempts {
		t.Errorf("%d PUTs, want %d tries of the asset and nothing else", got, maxAttempts)
	}
	e.assertBucket(files)

	e.fake.SetFault(nil)
	res = e.mustSync()
	if res.Uploaded != 3 {
		t.Errorf("retry deploy uploaded %d, want 3", res.Uploaded)
	}
	e.assertBucket(next)
}

func TestTransientErrorsAreRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(site())
	var mu sync.Mutex
	failures := map[string]int{}
	e.fake.SetFault(func(op ossfake.Op, key string) int {
		mu.Lock()
		defer mu.Unlock()
		if failures[string(op)+key] < 2 {
			failures[string(op)+key]++
			return http.StatusInternalServerError
		}
		return 0
	})
	res := e.mustSync()
	e.assertBucket(site())
	// Every request failed twice: a LIST, the files and the manifest, each tried three times.
	if want := 3 * (1 + len(site()) + 1); res.Requests != want || e.fake.Requests() != want {
		t.Errorf("%d requests counted, %d received, want %d", res.Requests, e.fake.Requests(), want)
	}
}

func TestInterruptedDeployConverges(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		stop func(cancel context.CancelFunc) int
	}{
		// The request that cancels is still served, and only after the client has given up on it,
		// as a real endpoint may finish a PUT whose client went away.
		{"context cancelled", func(cancel context.CancelFunc) int { cancel(); time.Sleep(50 * time.Millisecond); return 0 }},
		{"endpoint fails", func(context.CancelFunc) int { return http.StatusBadGateway }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.cfg.Concurrency = 2
			old := site()
			e.write(old)
			e.mustSync()

			next := map[string]string{"index.html": "<h1>v2</h1>", "about/index.html": "<h1>about v2</h1>"}
			for i := range 20 {
				next[fmt.Sprintf("assets/chunk-%02dabc123.js", i)] = fmt.Sprintf("chunk %d", i)
			}
			e.write(next)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var mu sync.Mutex
			puts := 0
			e.fake.SetFault(func(op ossfake.Op, key string) int {
				if op != ossfake.OpPut {
					return 0
				}
				mu.Lock()
				defer mu.Unlock()
				if puts++; puts > 5 {
					return tc.stop(cancel)
				}
				return 0
			})
			res, err := e.sync(ctx)
			if err == nil {
				t.Fatal("interrupted Sync reported success")
			}
			// A PUT the client gave up on may still land after Sync returned; what the resumed
			// deploy must skip is what the bucket holds once no such request is under way.
			e.fake.Restart()
			e.cfg.Endpoint = e.fake.URL
			if res.Deleted != 0 {
				t.Errorf("interrupted Sync deleted %d objects", res.Deleted)
			}
			for _, rel := range []string{"index.html", "about/index.html"} {
				if o, _ := e.fake.Object(testPrefix + rel); string(o.Body) != old[rel] {
					t.Errorf("%s changed by an interrupted deploy: %q", rel, o.Body)
				}
			}

			landed := 0
			for rel, body := range next {
				if o, ok := e.fake.Object(testPrefix + rel); ok && string(o.Body) == body {
					landed++
				}
			}
			if landed < 5 {
				t.Fatalf("only %d uploads landed before the interruption", landed)
			}

			e.fake.SetFault(nil)
			res = e.mustSync()
			e.assertBucket(next, "assets/index-BdKz3x9a.js", "assets/index-Cq2w8Lm1.css")
			if res.Uploaded != len(next)-landed {
				t.Errorf("resumed deploy uploaded %d of %d files, want the %d the interrupted run did not", res.Uploaded, len(next), len(next)-landed)
			}
			res = e.mustSync()
			if res.Uploaded != 0 || res.Deleted != 2 || e.fake.Count(ossfake.OpPut) != 0 {
				t.Errorf("third deploy %+v with %d PUTs, want the kept assets deleted and nothing uploaded", res, e.fake.Count(ossfake.OpPut))
			}
			e.assertBucket(next)
		})
	}
}

func TestHeaderChangeReuploads(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(site())
	e.mustSync()

	// A manifest written under an older cache policy for one file.
	key := testPrefix + manifestRel
	o, _ := e.fake.Object(key)
	m, err := decodeManifest(bytes.NewReader(o.Body))
	if err != nil {
		t.Fatal(err)
	}
	entry := m.Files["assets/logo.svg"]
	entry.Headers = headersHash(serving.ContentType("assets/logo.svg"), "public, max-age=31536000")
	m.Files["assets/logo.svg"] = entry
	e.fake.PutObject(key, m.encode(), o.Header, "Normal")
	res := e.mustSync()
	if !slices.Equal(res.Changed, []string{"assets/logo.svg"}) {
		t.Errorf("changed %q, want the file whose headers changed", res.Changed)
	}

	// Without a manifest the object's own metadata tells its headers.
	e.fake.DeleteObject(key)
	o, _ = e.fake.Object(testPrefix + "robots.txt")
	o.Header.Set("X-Oss-Meta-Headers", "0000000000000000")
	e.fake.PutObject(testPrefix+"robots.txt", o.Body, o.Header, "Normal")
	res = e.mustSync()
	if !slices.Equal(res.Changed, []string{"robots.txt"}) {
		t.Errorf("changed %q, want the file whose metadata shows old headers", res.Changed)
	}
	if got := e.fake.Count(ossfake.OpHead); got != len(site()) {
		t.Errorf("%d HEADs, want one per file the missing manifest does not describe", got)
	}
	e.assertBucket(site())
	if e.mustSync(); e.fake.Count(ossfake.OpPut) != 0 {
		t.Error("the rebuilt manifest does not describe the bucket")
	}
}

func TestForeignMultipartObjectIsCheckedByMetadata(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	files := map[string]string{"index.html": "<p>hi</p>", "video.mp4": "pretend video"}
	e.write(files)
	e.mustSync()
	o, _ := e.fake.Object(testPrefix + "video.mp4")
	e.fake.PutObject(testPrefix+"video.mp4", o.Body, o.Header, "Multipart")
	e.fake.DeleteObject(testPrefix + manifestRel)
	res := e.mustSync()
	if res.Uploaded != 0 || e.fake.Count(ossfake.OpHead) != 2 {
		t.Errorf("result %+v with %d HEADs, want both verified by HEAD", res, e.fake.Count(ossfake.OpHead))
	}
}

func TestMaxDeleteCapsDeletes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.cfg.MaxDelete = 2
	files := map[string]string{"index.html": "x"}
	for i := range 5 {
		files[fmt.Sprintf("page%d.txt", i)] = "p"
	}
	e.write(files)
	e.mustSync()
	e.write(map[string]string{"index.html": "x"})
	res := e.mustSync()
	if res.Deleted != 2 || res.Stale != 3 {
		t.Errorf("result %+v, want 2 deleted and 3 left", res)
	}
	e.mustSync()
	res = e.mustSync()
	if res.Deleted != 1 || res.Stale != 0 {
		t.Errorf("third deploy %+v, want the last stale object deleted", res)
	}
	e.assertBucket(map[string]string{"index.html": "x"})
}

func TestManyFilesPageTheListingAndBatchTheDeletes(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("uploads 2,500 files")
	}
	e := newEnv(t)
	e.cfg.MaxDelete = 5000
	files := map[string]string{"index.html": "home"}
	for i := range 2500 {
		files[fmt.Sprintf("p/%04d.txt", i)] = fmt.Sprint(i)
	}
	e.write(files)
	e.mustSync()
	res := e.mustSync()
	if res.Uploaded != 0 || e.fake.Count(ossfake.OpList) != 3 {
		t.Errorf("no-op redeploy %+v with %d LISTs, want 0 uploads and 3 pages", res, e.fake.Count(ossfake.OpList))
	}
	e.write(map[string]string{"index.html": "home"})
	res = e.mustSync()
	if res.Deleted != 2500 || e.fake.Count(ossfake.OpMultiDelete) != 3 {
		t.Errorf("result %+v with %d multi-deletes, want 2500 deleted in 3 batches", res, e.fake.Count(ossfake.OpMultiDelete))
	}
	e.assertBucket(map[string]string{"index.html": "home"})
}

func TestCredentialsNeverInLogsOrErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(site())
	e.fake.RequireAccessKeyID("someoneElse")
	_, err := e.sync(context.Background())
	if err == nil {
		t.Fatal("Sync succeeded with a rejected key")
	}
	for _, s := range []string{testKeyID, testSecret} {
		if strings.Contains(err.Error(), s) || strings.Contains(e.log.String(), s) {
			t.Errorf("credential %q leaked:\nerror: %v\nlog: %s", s, err, e.log.String())
		}
	}
	if got := redact(errors.New("bad key "+testSecret), testKeyID, testSecret).Error(); strings.Contains(got, testSecret) {
		t.Errorf("redact kept the secret: %s", got)
	}
}

func TestHashCacheIsUsedAndPrivate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(site())
	e.mustSync()
	info, err := os.Stat(e.cfg.HashCachePath)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("hash cache mode %v, want 0600", info.Mode().Perm())
	}

	// A cache that lies about one file shows the cache is what the plan trusts.
	c := loadHashCache(e.cfg.HashCachePath)
	for k := range c {
		if k.path == "robots.txt" {
			c[k] = [16]byte{1}
		}
	}
	if err := saveHashCache(e.cfg.HashCachePath, c); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sync(context.Background()); err == nil || !strings.Contains(err.Error(), "InvalidDigest") {
		t.Errorf("a wrong cached hash: err %v, want the upload refused for its Content-MD5", err)
	}
	if res := e.mustSync(); res.Uploaded != 0 {
		t.Errorf("after a refused upload uploaded %d, want the file hashed afresh and found unchanged", res.Uploaded)
	}
	e.assertBucket(site())
}

func TestSameSizeEditWithRestoredTimeIsSeen(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(site())
	e.mustSync()
	// Reproducible builds pin modification times; an edit of the same length must still upload.
	p := filepath.Join(e.dir, "robots.txt")
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(p, []byte("User-agent: X"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if res := e.mustSync(); !slices.Equal(res.Changed, []string{"robots.txt"}) {
		t.Errorf("changed %q, want robots.txt", res.Changed)
	}
}

func TestLinksAreNotFollowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(map[string]string{"index.html": "home"})
	secret := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(secret, []byte("token"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(e.dir, "token.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(secret), filepath.Join(e.dir, "data")); err != nil {
		t.Fatal(err)
	}
	// The site directory itself may be reached through a link.
	link := filepath.Join(t.TempDir(), "current")
	if err := os.Symlink(e.dir, link); err != nil {
		t.Fatal(err)
	}
	e.dir = link
	e.mustSync()
	e.assertBucket(map[string]string{"index.html": "home"})
	if !strings.Contains(e.log.String(), "not publishing token.txt") || !strings.Contains(e.log.String(), "not publishing data") {
		t.Errorf("log does not mention the skipped links:\n%s", e.log.String())
	}
}

func TestEmptyBuildOutputIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(map[string]string{})
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sync(context.Background()); err == nil || e.fake.Requests() != 0 {
		t.Errorf("empty output: err %v after %d requests", err, e.fake.Requests())
	}
}

func TestConfigNormalize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in       Config
		endpoint string
		prefix   string
		wantErr  bool
	}{
		{Config{Endpoint: "oss-cn-hangzhou.aliyuncs.com", Bucket: "b", Prefix: "/projects/x"}, "https://oss-cn-hangzhou.aliyuncs.com", "projects/x/", false},
		{Config{Endpoint: "http://127.0.0.1:9000", Bucket: "b"}, "http://127.0.0.1:9000", "", false},
		{Config{Endpoint: "ftp://x", Bucket: "b"}, "", "", true},
		{Config{Endpoint: "https://x"}, "", "", true},
	} {
		got, err := tc.in.normalize()
		if (err != nil) != tc.wantErr {
			t.Errorf("%+v: err %v", tc.in, err)
			continue
		}
		if !tc.wantErr && (got.Endpoint != tc.endpoint || got.Prefix != tc.prefix || got.Concurrency != DefaultConcurrency || got.MaxDelete != DefaultMaxDelete || got.RetryBase != DefaultRetryBase) {
			t.Errorf("%+v normalized to %+v", tc.in, got)
		}
	}
}

func TestLargeFileIsStreamed(t *testing.T) {
	// Not parallel: it measures the whole process's allocations.
	if testing.Short() {
		t.Skip("uploads 128 MiB")
	}
	e := newEnv(t)
	e.fake.SetDiscardBodies(func(key string) bool { return strings.HasSuffix(key, ".bin") })
	e.write(map[string]string{"index.html": "<p>download</p>"})
	const size = 128 << 20
	f, err := os.Create(filepath.Join(e.dir, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res := e.mustSync()
	runtime.ReadMemStats(&after)
	if res.BytesUploaded < size {
		t.Fatalf("uploaded %d bytes", res.BytesUploaded)
	}
	// Client and fake together: a whole-file buffer anywhere would allocate the file's size.
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("a %d MiB upload allocated %.1f MiB", size>>20, float64(alloc)/(1<<20))
	if alloc > size/8 {
		t.Errorf("a %d MiB upload allocated %d MiB", size>>20, alloc>>20)
	}
	if o, _ := e.fake.Object(testPrefix + "big.bin"); o.Size != size {
		t.Errorf("stored size %d", o.Size)
	}
}
