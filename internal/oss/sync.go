// Package oss owns publishing a build output to an Alibaba Cloud OSS bucket prefix: planning from
// one paged listing, uploading only what changed in an order that keeps the live site whole, and
// deleting what the site no longer has.
package oss

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miaobu/miaobu/internal/serving"
)

// DefaultConcurrency is the number of parallel uploads when Config.Concurrency is not set.
const DefaultConcurrency = 16

// DefaultMaxDelete is the most stale objects one Sync deletes when Config.MaxDelete is not set.
const DefaultMaxDelete = 1000

// DefaultRetryBase is the first backoff before a failed request is tried again when
// Config.RetryBase is not set.
const DefaultRetryBase = 200 * time.Millisecond

// Config says where and how Sync publishes.
type Config struct {
	// Endpoint is the OSS endpoint URL, such as https://oss-cn-hangzhou.aliyuncs.com; a bare host means https.
	Endpoint string
	// Bucket is the bucket name.
	Bucket string
	// Prefix is the folder of the site in the bucket, already expanded, such as projects/blog/; empty means the bucket root.
	Prefix string
	// AccessKeyID and AccessKeySecret sign the requests; they never appear in logs or errors.
	AccessKeyID, AccessKeySecret string
	// Concurrency is the number of parallel requests; zero means DefaultConcurrency.
	Concurrency int
	// MaxDelete caps the stale objects deleted by one Sync, a guard against a wrong prefix; the rest
	// are left for later deploys. Zero means DefaultMaxDelete.
	MaxDelete int
	// HashCachePath is a file (written with mode 0600) where MD5s of local files are cached by
	// path, size and modification time (on Linux and macOS also inode and change time), so a
	// redeploy does not hash unchanged files again; empty disables the cache.
	HashCachePath string
	// RetryBase is the first backoff before a request that failed with a 5xx, a 429 or a network
	// error is tried again; it doubles with each try, with jitter. Zero means DefaultRetryBase.
	RetryBase time.Duration
}

// Result counts what a Sync did.
type Result struct {
	// Uploaded is the number of site files uploaded, and BytesUploaded their total size.
	Uploaded      int
	BytesUploaded int64
	// Deleted is the number of stale objects deleted.
	Deleted int
	// Unchanged is the number of site files already up to date in the bucket.
	Unchanged int
	// Kept is the number of stale hashed assets left for one more deploy.
	Kept int
	// Stale is the number of stale objects not deleted because of Config.MaxDelete.
	Stale int
	// Requests is the number of requests sent to OSS, retries included.
	Requests int
	// Changed lists the site-relative slash paths uploaded or deleted, sorted, for the CDN purge.
	Changed []string
}

// upload is a planned PUT of one site file.
type upload struct {
	file         *localFile
	contentType  string
	cacheControl string
	headers      string
	reason       string
	// contentKnown is set when the listed ETag already proved the object's bytes equal the file's.
	contentKnown bool
}

// phase orders uploads so that a page is never live before the files it references: assets, then
// pages, then the entry points a visitor or a browser reaches first.
func phase(rel string) int {
	base := path.Base(rel)
	switch {
	case rel == "index.html" || rel == "404.html" || base == "sw.js" || base == "service-worker.js":
		return 2
	case serving.IsHTML(rel):
		return 1
	}
	return 0
}

// Sync makes the bucket prefix in cfg hold the regular files under dir (symbolic links inside it
// are not followed), the hashed assets the previous deploy used (for one more deploy) and one
// bookkeeping object, .miaobu/manifest.json.gz, writing the plan to log before it runs and the
// totals after; on an error the bucket still serves a whole site and the next Sync converges.
func Sync(ctx context.Context, cfg Config, dir string, log io.Writer) (res Result, err error) {
	cfg, err = cfg.normalize()
	if err != nil {
		return Result{}, err
	}
	defer func() { err = redact(err, cfg.AccessKeyID, cfg.AccessKeySecret) }()
	if log == nil {
		log = io.Discard
	}
	s, err := newSyncer(cfg, &lockedWriter{w: log})
	if err != nil {
		return Result{}, err
	}
	defer func() { res.Requests = int(s.requests.Load()) }()
	return s.run(ctx, dir)
}

func (s *syncer) run(ctx context.Context, dir string) (Result, error) {
	var res Result
	start := time.Now()
	cache := loadHashCache(s.cfg.HashCachePath)
	files, fresh, skipped, err := scan(ctx, dir, cache)
	if err != nil {
		return res, err
	}
	for _, rel := range skipped {
		s.logf("warning: not publishing %s: not a regular file (symbolic links are not followed)", rel)
	}
	if len(files) == 0 {
		return res, errors.New("the build output is empty: refusing to publish a site with no files")
	}

	remote, err := s.list(ctx)
	if err != nil {
		return res, err
	}
	old := manifest{Files: map[string]manifestEntry{}}
	if _, ok := remote[manifestRel]; ok {
		if old, err = s.readManifest(ctx); err != nil {
			return res, err
		}
	}

	uploads, unchanged, err := s.diff(ctx, files, remote, old)
	if err != nil {
		return res, err
	}
	res.Unchanged = unchanged

	deletes, kept := staleObjects(files, remote, old)
	if len(deletes) > s.cfg.MaxDelete {
		res.Stale = len(deletes) - s.cfg.MaxDelete
		deletes = deletes[:s.cfg.MaxDelete]
	}
	res.Kept = len(kept)
	next := nextManifest(files, kept)
	manifestChanged := !sameManifest(old.relevant(remote, deletes), next)

	s.logPlan(uploads, deletes, kept, res.Stale, unchanged)

	for _, group := range phases(uploads) {
		n, bytes, err := s.putAll(ctx, group)
		res.Uploaded += n
		res.BytesUploaded += bytes
		for _, u := range group[:n] {
			res.Changed = append(res.Changed, u.file.rel)
		}
		if err != nil {
			// A cached hash that no longer matches its file makes OSS refuse the Content-MD5, so
			// files that did not upload are hashed afresh next time.
			for _, u := range group[n:] {
				delete(fresh, u.file.key)
			}
			s.saveHashCache(cache, fresh)
			s.logf("stopped before the next phase: %v", err)
			slices.Sort(res.Changed)
			return res, err
		}
	}
	s.saveHashCache(cache, fresh)
	if manifestChanged {
		if err := s.writeManifest(ctx, next); err != nil {
			return res, err
		}
	}
	n, err := s.deleteAll(ctx, deletes)
	res.Deleted = n
	res.Changed = append(res.Changed, deletes[:n]...)
	slices.Sort(res.Changed)
	if err != nil {
		return res, err
	}
	s.logf("done in %s: %d uploaded (%s), %d deleted, %d unchanged, %d kept for one more deploy, %d requests",
		time.Since(start).Round(time.Millisecond), res.Uploaded, formatBytes(res.BytesUploaded), res.Deleted, res.Unchanged, res.Kept, s.requests.Load())
	return res, nil
}

// staleObjects splits the listed objects the site no longer has into those to delete now and the
// hashed assets to keep for one more deploy (those not already kept by the previous one), sorted.
func staleObjects(files []*localFile, remote map[string]remoteObject, old manifest) (deletes, kept []string) {
	local := make(map[string]bool, len(files))
	for _, f := range files {
		local[f.rel] = true
	}
	wasKept := make(map[string]bool, len(old.Kept))
	for _, rel := range old.Kept {
		wasKept[rel] = true
	}
	for rel := range remote {
		if local[rel] || isReserved(rel) {
			continue
		}
		if serving.IsHashedAsset(rel) && !wasKept[rel] {
			kept = append(kept, rel)
		} else {
			deletes = append(deletes, rel)
		}
	}
	slices.Sort(deletes)
	slices.Sort(kept)
	return deletes, kept
}

// saveHashCache writes fresh to the configured cache file if it differs from what was loaded;
// a cache that cannot be written only costs time, so it is a warning.
func (s *syncer) saveHashCache(loaded, fresh hashCache) {
	if maps.Equal(loaded, fresh) {
		return
	}
	if err := saveHashCache(s.cfg.HashCachePath, fresh); err != nil {
		s.logf("warning: could not save the hash cache: %v", err)
	}
}

// diff decides which files to upload: a file is unchanged when its size and MD5 match the listed
// object and the manifest or the object's own metadata shows the same headers.
func (s *syncer) diff(ctx context.Context, files []*localFile, remote map[string]remoteObject, old manifest) ([]upload, int, error) {
	var uploads, uncertain []upload
	unchanged := 0
	for _, f := range files {
		u := upload{file: f, contentType: serving.ContentType(f.rel), cacheControl: serving.CacheControl(f.rel)}
		u.headers = headersHash(u.contentType, u.cacheControl)
		r, ok := remote[f.rel]
		sum := hex.EncodeToString(f.md5[:])
		entry, vouched := old.Files[f.rel]
		vouched = vouched && entry.MD5 == sum && r.md5 == sum
		switch {
		case !ok:
			u.reason = "new"
		case r.size != f.key.size:
			u.reason = "size changed"
		case r.md5 != "" && r.md5 != sum:
			u.reason = "content changed"
		case vouched && entry.Headers != u.headers:
			u.reason = "headers changed"
		case vouched:
			unchanged++
			continue
		default:
			u.contentKnown = r.md5 != ""
			uncertain = append(uncertain, u)
			continue
		}
		uploads = append(uploads, u)
	}
	if len(uncertain) == 0 {
		return uploads, unchanged, nil
	}
	// Objects the manifest does not vouch for (written by an interrupted deploy, or by another
	// tool) are checked with one HEAD each rather than uploaded again.
	s.logf("checking %d objects the manifest does not describe", len(uncertain))
	verdicts := make([]string, len(uncertain))
	err := s.pool(ctx, len(uncertain), func(ctx context.Context, i int) error {
		u := uncertain[i]
		h, err := s.head(ctx, u.file.rel)
		if err != nil {
			return err
		}
		switch {
		case !u.contentKnown && h.Get("X-Oss-Meta-"+metaMD5) != hex.EncodeToString(u.file.md5[:]):
			verdicts[i] = "content unknown"
		case h.Get("X-Oss-Meta-"+metaHeaders) != u.headers:
			verdicts[i] = "headers changed"
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	for i, u := range uncertain {
		if verdicts[i] == "" {
			unchanged++
			continue
		}
		u.reason = verdicts[i]
		uploads = append(uploads, u)
	}
	return uploads, unchanged, nil
}

// phases splits uploads by phase, in phase order, hashed assets first within the first phase.
func phases(uploads []upload) [][]upload {
	groups := make([][]upload, 3)
	for _, u := range uploads {
		p := phase(u.file.rel)
		groups[p] = append(groups[p], u)
	}
	for _, g := range groups {
		slices.SortStableFunc(g, func(a, b upload) int {
			ha, hb := serving.IsHashedAsset(a.file.rel), serving.IsHashedAsset(b.file.rel)
			switch {
			case ha && !hb:
				return -1
			case hb && !ha:
				return 1
			}
			return strings.Compare(a.file.rel, b.file.rel)
		})
	}
	return slices.DeleteFunc(groups, func(g []upload) bool { return len(g) == 0 })
}

// putAll uploads a phase with the bounded pool; it returns how many uploads of the group, from
// its start, are known to have succeeded (the group is reordered so that these come first).
func (s *syncer) putAll(ctx context.Context, group []upload) (int, int64, error) {
	done := make([]bool, len(group))
	err := s.pool(ctx, len(group), func(ctx context.Context, i int) error {
		if err := s.put(ctx, group[i]); err != nil {
			s.logf("upload %s failed: %v", group[i].file.rel, err)
			return fmt.Errorf("uploading %s: %w", group[i].file.rel, err)
		}
		done[i] = true
		return nil
	})
	var ok, failed []upload
	var bytes int64
	for i, u := range group {
		if done[i] {
			ok = append(ok, u)
			bytes += u.file.key.size
		} else {
			failed = append(failed, u)
		}
	}
	copy(group, append(ok, failed...))
	return len(ok), bytes, err
}

// deleteAll deletes keys in batches of at most maxDeleteBatch after every upload is in.
func (s *syncer) deleteAll(ctx context.Context, rels []string) (int, error) {
	n := 0
	for batch := range slices.Chunk(rels, maxDeleteBatch) {
		if err := s.deleteBatch(ctx, batch); err != nil {
			return n, err
		}
		n += len(batch)
	}
	return n, nil
}

func (s *syncer) logPlan(uploads []upload, deletes, kept []string, stale, unchanged int) {
	var bytes int64
	for _, u := range uploads {
		bytes += u.file.key.size
	}
	s.logf("plan: upload %d files (%s), delete %d, keep %d stale hashed assets for one more deploy, %d unchanged",
		len(uploads), formatBytes(bytes), len(deletes), len(kept), unchanged)
	if stale > 0 {
		s.logf("warning: %d more stale objects exceed the delete cap of %d and are left for later deploys", stale, s.cfg.MaxDelete)
	}
	lines := 0
	for _, g := range phases(uploads) {
		for _, u := range g {
			if lines++; lines <= maxPlanLines {
				s.logf("  upload %s (%s, %s)", u.file.rel, formatBytes(u.file.key.size), u.reason)
			}
		}
	}
	for _, rel := range deletes {
		if lines++; lines <= maxPlanLines {
			s.logf("  delete %s", rel)
		}
	}
	if lines > maxPlanLines {
		s.logf("  … and %d more", lines-maxPlanLines)
	}
}

// maxPlanLines bounds the per-file lines of a plan so a first deploy of a large site keeps a readable log.
const maxPlanLines = 500

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// lockedWriter serialises writes from the upload workers to the deployment log.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// contentMD5 returns the base64 MD5 OSS expects in the Content-MD5 header.
func contentMD5(sum [16]byte) string { return base64.StdEncoding.EncodeToString(sum[:]) }
