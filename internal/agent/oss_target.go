package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/miaobu/miaobu/internal/cdn"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/oss"
	"github.com/miaobu/miaobu/internal/store"
)

// ossTarget publishes to an Alibaba Cloud OSS prefix (only what changed moves) and purges the CDN.
type ossTarget struct {
	cfg      *config.Config
	cacheDir string
}

// expandSlug replaces {slug} in a configured pattern.
func expandSlug(pattern, slug string) string { return strings.ReplaceAll(pattern, "{slug}", slug) }

// Publish uploads the kept output dir to the project's prefix, then purges what changed from the CDN;
// a failed purge is a warning in the log, not a failed deployment.
func (t ossTarget) Publish(ctx context.Context, p *store.Project, d *store.Deployment, dir string, log io.Writer, step func(store.Status) error) error {
	if err := t.cfg.OSSMissing(); err != nil {
		return err
	}
	fmt.Fprintf(log, "==> Uploading to oss://%s/%s\n", t.cfg.OSS.Bucket, expandSlug(t.cfg.OSS.Prefix, p.Slug))
	res, err := oss.Sync(ctx, oss.Config{
		Endpoint: t.cfg.OSS.Endpoint, Bucket: t.cfg.OSS.Bucket, Prefix: expandSlug(t.cfg.OSS.Prefix, p.Slug),
		AccessKeyID: t.cfg.OSS.AccessKeyID, AccessKeySecret: t.cfg.OSS.AccessKeySecret,
		Concurrency: t.cfg.OSS.Concurrency, MaxDelete: t.cfg.OSS.MaxDelete,
		HashCachePath: filepath.Join(t.cacheDir, "oss-"+p.Slug+".json"),
	}, dir, log)
	if err != nil {
		return fmt.Errorf("uploading deployment %d to OSS: %w", d.ID, err)
	}
	if t.cfg.CDN.Provider != "aliyun" {
		return nil
	}
	plan := cdn.PlanPurge(expandSlug(t.cfg.CDN.Domain, p.Slug), res.Changed, t.cfg.CDN.MaxURLs)
	if plan.Empty() {
		fmt.Fprintln(log, "Nothing to purge from the CDN")
		return nil
	}
	if err := step(store.StatusPurging); err != nil {
		return err
	}
	err = cdn.Purge(ctx, cdn.Config{Endpoint: t.cfg.CDN.Endpoint, AccessKeyID: t.cfg.OSS.AccessKeyID,
		AccessKeySecret: t.cfg.OSS.AccessKeySecret}, plan, log)
	if err != nil {
		fmt.Fprintf(log, "WARNING: the CDN purge failed, visitors may see the old files until they expire: %v\n", err)
	}
	return nil
}

// liveURL is where a project's live site is seen: served by the agent on the local target, by the
// CDN or else the bucket on the oss target.
func (a *Agent) liveURL(p *store.Project) string {
	if p.Target != "oss" {
		return a.siteURL(p.Slug)
	}
	if a.cfg.CDN.Domain != "" {
		return "https://" + expandSlug(a.cfg.CDN.Domain, p.Slug) + "/"
	}
	endpoint := a.cfg.OSS.Endpoint
	if !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil || a.cfg.OSS.Bucket == "" {
		return ""
	}
	prefix := expandSlug(a.cfg.OSS.Prefix, p.Slug)
	if net.ParseIP(u.Hostname()) != nil || u.Hostname() == "localhost" {
		return fmt.Sprintf("%s://%s/%s/%s", u.Scheme, u.Host, a.cfg.OSS.Bucket, prefix)
	}
	return fmt.Sprintf("%s://%s.%s/%s", u.Scheme, a.cfg.OSS.Bucket, u.Host, prefix)
}
