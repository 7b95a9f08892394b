package publish

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/miaobu/miaobu/internal/cdn"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/oss"
	"github.com/miaobu/miaobu/internal/store"
)

// OSS publishes a project's live site to an Alibaba Cloud OSS prefix (only what changed moves) and
// purges what changed from the CDN; other aliases are served by the agent, as on Local.
type OSS struct {
	cfg      *config.Config
	cacheDir string
	local    *Local
}

// expandSlug replaces {slug} in a configured pattern.
func expandSlug(pattern, slug string) string { return strings.ReplaceAll(pattern, "{slug}", slug) }

// Activate uploads the kept output to the project's prefix, then purges what changed from the CDN;
// a failed purge is a warning in the log, not a failed deployment.
func (t *OSS) Activate(ctx context.Context, r Release, alias string) error {
	if alias != "" {
		return t.local.Activate(ctx, r, alias)
	}
	if err := t.cfg.OSSMissing(); err != nil {
		return err
	}
	slug := r.Project.Slug
	fmt.Fprintf(r.Log, "==> Uploading to oss://%s/%s\n", t.cfg.OSS.Bucket, expandSlug(t.cfg.OSS.Prefix, slug))
	res, err := oss.Sync(ctx, oss.Config{
		Endpoint: t.cfg.OSS.Endpoint, Bucket: t.cfg.OSS.Bucket, Prefix: expandSlug(t.cfg.OSS.Prefix, slug),
		AccessKeyID: t.cfg.OSS.AccessKeyID, AccessKeySecret: t.cfg.OSS.AccessKeySecret,
		Concurrency: t.cfg.OSS.Concurrency, MaxDelete: t.cfg.OSS.MaxDelete,
		HashCachePath: filepath.Join(t.cacheDir, "oss-"+slug+".json"),
	}, r.Dir, r.Log)
	if err != nil {
		return fmt.Errorf("uploading deployment %d to OSS: %w", r.Deployment.ID, err)
	}
	if t.cfg.CDN.Provider != "aliyun" {
		return nil
	}
	plan := cdn.PlanPurge(expandSlug(t.cfg.CDN.Domain, slug), res.Changed, t.cfg.CDN.MaxURLs)
	if plan.Empty() {
		fmt.Fprintln(r.Log, "Nothing to purge from the CDN")
		return nil
	}
	if err := r.Step(store.StatusPurging); err != nil {
		return err
	}
	err = cdn.Purge(ctx, cdn.Config{Endpoint: t.cfg.CDN.Endpoint, AccessKeyID: t.cfg.OSS.AccessKeyID,
		AccessKeySecret: t.cfg.OSS.AccessKeySecret}, plan, r.Log)
	if err != nil {
		fmt.Fprintf(r.Log, "WARNING: the CDN purge failed, visitors may see the old files until they expire: %v\n", err)
	}
	return nil
}

// URL is where the live site is seen, by the CDN or else the bucket; other aliases are the agent's.
func (t *OSS) URL(slug, alias string) string {
	if alias != "" {
		return t.local.URL(slug, alias)
	}
	if t.cfg.CDN.Domain != "" {
		return "https://" + expandSlug(t.cfg.CDN.Domain, slug) + "/"
	}
	endpoint := t.cfg.OSS.Endpoint
	if !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil || t.cfg.OSS.Bucket == "" {
		return ""
	}
	prefix := expandSlug(t.cfg.OSS.Prefix, slug)
	if net.ParseIP(u.Hostname()) != nil || u.Hostname() == "localhost" {
		return fmt.Sprintf("%s://%s/%s/%s", u.Scheme, u.Host, t.cfg.OSS.Bucket, prefix)
	}
	return fmt.Sprintf("%s://%s.%s/%s", u.Scheme, t.cfg.OSS.Bucket, u.Host, prefix)
}
