package agent

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/miaobu/miaobu/internal/cdn"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/domain"
	"github.com/miaobu/miaobu/internal/oss"
	"github.com/miaobu/miaobu/internal/store"
)

// ossTarget publishes to an Alibaba Cloud OSS prefix (only what changed moves) and purges the CDN.
type ossTarget struct {
	cfg      *config.Config
	cacheDir string
}

// Publish uploads the kept output dir to the project's prefix, then purges what changed from the CDN;
// a failed purge is a warning in the log, not a failed deployment.
func (t ossTarget) Publish(ctx context.Context, p *store.Project, d *store.Deployment, dir string, log io.Writer, step func(store.Status) error) error {
	if err := t.cfg.OSSMissing(); err != nil {
		return err
	}
	fmt.Fprintf(log, "==> Uploading to oss://%s/%s\n", t.cfg.OSS.Bucket, domain.ExpandSlug(t.cfg.OSS.Prefix, p.Slug))
	res, err := oss.Sync(ctx, oss.Config{
		Endpoint: t.cfg.OSS.Endpoint, Bucket: t.cfg.OSS.Bucket, Prefix: domain.ExpandSlug(t.cfg.OSS.Prefix, p.Slug),
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
	plan := cdn.PlanPurge(domain.ExpandSlug(t.cfg.CDN.Domain, p.Slug), res.Changed, t.cfg.CDN.MaxURLs)
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
