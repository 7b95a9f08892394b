// Package cdn owns purging the CDN in front of a published site: which URLs a deploy made stale,
// folded into directory refreshes when there are too many, and the Alibaba Cloud
// RefreshObjectCaches calls that expire them.
package cdn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	alicdn "github.com/aliyun/alibaba-cloud-sdk-go/services/cdn"

	"github.com/miaobu/miaobu/internal/serving"
)

// DefaultMaxURLs is the number of changed URLs above which a purge is folded into directory refreshes.
const DefaultMaxURLs = 500

// DefaultEndpoint is the Alibaba Cloud CDN API endpoint used when Config.Endpoint is empty.
const DefaultEndpoint = "https://cdn.aliyuncs.com"

// Limits of one RefreshObjectCaches call, and the directories one purge may use of the daily
// quota of 100.
const (
	maxURLsPerCall = 1000
	maxDirsPerCall = 100
	maxDirs        = 10
)

// maxPlanLines bounds the per-URL lines of a purge plan in the deployment log.
const maxPlanLines = 100

// Config says how to reach the CDN API.
type Config struct {
	// Endpoint is the CDN API URL; empty means DefaultEndpoint.
	Endpoint string
	// AccessKeyID and AccessKeySecret sign the requests; they never appear in logs or errors.
	AccessKeyID, AccessKeySecret string
}

// Plan is what a purge refreshes: single URLs and whole directories (each ending in a slash).
type Plan struct {
	URLs []string
	Dirs []string
}

// Empty reports whether the plan refreshes nothing.
func (p Plan) Empty() bool { return len(p.URLs) == 0 && len(p.Dirs) == 0 }

// item is a site-relative purge target: a URL path, or a directory when dir is set ("" is the root).
type item struct {
	path string
	dir  bool
}

// depth orders items for folding: a file counts one level below its directory.
func (it item) depth() int {
	if it.dir {
		return strings.Count(it.path, "/")
	}
	return strings.Count(it.folded().path, "/") + 1
}

// folded returns the directory that covers it one level up.
func (it item) folded() item {
	p := it.path
	if it.dir {
		p = strings.TrimSuffix(p, "/")
	} else if strings.HasSuffix(p, "/") {
		return item{p, true}
	}
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return item{p[:i+1], true}
	}
	return item{"", true}
}

// PlanPurge returns the refreshes under https://<domain>/ for the site-relative paths a deploy
// uploaded or deleted: never a hashed asset (its name changes with its content), a page's
// directory URLs with the page, and directories instead of URLs when more than maxURLs would be
// refreshed (zero means DefaultMaxURLs).
func PlanPurge(domain string, changed []string, maxURLs int) Plan {
	if maxURLs <= 0 {
		maxURLs = DefaultMaxURLs
	}
	set := map[item]bool{}
	for _, p := range changed {
		p = strings.TrimPrefix(p, "/")
		if p == "" || serving.IsHashedAsset(p) {
			continue
		}
		set[item{path: p}] = true
		if path.Base(p) == "index.html" {
			dir := strings.TrimSuffix(p, "index.html")
			set[item{path: dir}] = true
			if dir != "" {
				set[item{path: strings.TrimSuffix(dir, "/")}] = true
			}
		}
	}
	for {
		files, dirs := 0, 0
		deepest := -1
		for it := range set {
			if it.dir {
				dirs++
			} else {
				files++
			}
			if (!it.dir || it.path != "") && it.depth() > deepest {
				deepest = it.depth()
			}
		}
		if (files <= maxURLs && dirs <= maxDirs) || deepest < 0 {
			break
		}
		next := map[item]bool{}
		for it := range set {
			if it.depth() == deepest && (!it.dir || it.path != "") {
				it = it.folded()
			}
			next[it] = true
		}
		set = dropCovered(next)
	}
	domain = strings.TrimPrefix(strings.TrimPrefix(domain, "https://"), "http://")
	base := "https://" + strings.TrimSuffix(domain, "/") + "/"
	var plan Plan
	for it := range set {
		u := base + (&url.URL{Path: it.path}).EscapedPath()
		if it.dir {
			plan.Dirs = append(plan.Dirs, u)
		} else {
			plan.URLs = append(plan.URLs, u)
		}
	}
	slices.Sort(plan.URLs)
	slices.Sort(plan.Dirs)
	return plan
}

// dropCovered removes the items a directory in set already refreshes.
func dropCovered(set map[item]bool) map[item]bool {
	var dirs []string
	for it := range set {
		if it.dir {
			dirs = append(dirs, it.path)
		}
	}
	out := map[item]bool{}
	for it := range set {
		covered := slices.ContainsFunc(dirs, func(d string) bool {
			return strings.HasPrefix(it.path, d) && (it.path != d || !it.dir)
		})
		if !covered {
			out[it] = true
		}
	}
	return out
}

// Purge writes plan to log and refreshes it with RefreshObjectCaches, at most 1,000 URLs or 100
// directories a call; the caller reports a failure as a warning, since the site is already live.
func Purge(ctx context.Context, cfg Config, plan Plan, log io.Writer) error {
	if plan.Empty() {
		return nil
	}
	if log == nil {
		log = io.Discard
	}
	fmt.Fprintf(log, "purge plan: %d URLs, %d directories\n", len(plan.URLs), len(plan.Dirs))
	for i, p := range slices.Concat(plan.URLs, plan.Dirs) {
		if i == maxPlanLines {
			fmt.Fprintf(log, "  … and %d more\n", len(plan.URLs)+len(plan.Dirs)-i)
			break
		}
		fmt.Fprintf(log, "  refresh %s\n", p)
	}
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("cdn: endpoint %q is not an http or https URL", endpoint)
	}
	client, err := alicdn.NewClientWithAccessKey("cn-hangzhou", cfg.AccessKeyID, cfg.AccessKeySecret)
	if err != nil {
		return fmt.Errorf("cdn: %s", hide(err.Error(), cfg))
	}
	defer client.Shutdown()
	client.SetConnectTimeout(5 * time.Second)
	client.SetReadTimeout(20 * time.Second)

	call := func(objectType string, paths []string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		req := alicdn.CreateRefreshObjectCachesRequest()
		req.Scheme = u.Scheme
		req.Domain = u.Host
		req.ObjectType = objectType
		req.ObjectPath = strings.Join(paths, "\n")
		resp, err := client.RefreshObjectCaches(req)
		if err != nil {
			return fmt.Errorf("cdn: refreshing %d %s paths: %s", len(paths), strings.ToLower(objectType), hide(describe(err), cfg))
		}
		fmt.Fprintf(log, "purge: refreshing %d %s paths (task %s)\n", len(paths), strings.ToLower(objectType), resp.RefreshTaskId)
		return nil
	}
	var errs []error
	for batch := range slices.Chunk(plan.URLs, maxURLsPerCall) {
		errs = append(errs, call("File", batch))
	}
	for batch := range slices.Chunk(plan.Dirs, maxDirsPerCall) {
		errs = append(errs, call("Directory", batch))
	}
	return errors.Join(errs...)
}

// describe shortens the SDK's multi-line server errors to one line for the deployment log.
func describe(err error) string {
	var se *sdkerrors.ServerError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s: %s (HTTP %d, request %s)", se.ErrorCode(), se.Message(), se.HttpStatus(), se.RequestId())
	}
	return err.Error()
}

// hide replaces the credentials in msg, should the SDK quote them.
func hide(msg string, cfg Config) string {
	for _, s := range []string{cfg.AccessKeyID, cfg.AccessKeySecret} {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}
