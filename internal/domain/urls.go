package domain

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/store"
)

// WebhookURL is the URL GitHub posts a project's pushes to.
func (s *Service) WebhookURL(projectID int64) string {
	return s.cfg.PublicURL + api.PathWebhookPrefix + strconv.FormatInt(projectID, 10)
}

// siteURL is where a host label's site is served by the local target: <label>.<sites.domain> on
// the agent's port, or on the public URL's scheme and port when sites have a domain of their own.
func (s *Service) siteURL(label string) string {
	domain := s.cfg.Sites.Domain
	if domain == "localhost" {
		_, port, _ := net.SplitHostPort(s.cfg.Listen)
		return fmt.Sprintf("http://%s.localhost:%s/", label, port)
	}
	scheme, port := "https", ""
	if u, err := url.Parse(s.cfg.PublicURL); err == nil {
		scheme, port = u.Scheme, u.Port()
	}
	if port != "" {
		return fmt.Sprintf("%s://%s.%s:%s/", scheme, label, domain, port)
	}
	return fmt.Sprintf("%s://%s.%s/", scheme, label, domain)
}

// DeploymentURL is where a successful deployment can be seen: its permanent preview on the local
// target, the live site on the others.
func (s *Service) DeploymentURL(p *store.Project, d *store.Deployment) string {
	if p.Target == "local" {
		return s.siteURL(p.Slug + "--" + strconv.FormatInt(d.ID, 10))
	}
	return s.LiveURL(p)
}

// LiveURL is where a project's live site is seen: served by the agent on the local target, by the
// CDN or else the bucket on the oss target.
func (s *Service) LiveURL(p *store.Project) string {
	if p.Target != "oss" {
		return s.siteURL(p.Slug)
	}
	if s.cfg.CDN.Domain != "" {
		return "https://" + ExpandSlug(s.cfg.CDN.Domain, p.Slug) + "/"
	}
	endpoint := s.cfg.OSS.Endpoint
	if !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil || s.cfg.OSS.Bucket == "" {
		return ""
	}
	prefix := ExpandSlug(s.cfg.OSS.Prefix, p.Slug)
	if net.ParseIP(u.Hostname()) != nil || u.Hostname() == "localhost" {
		return fmt.Sprintf("%s://%s/%s/%s", u.Scheme, u.Host, s.cfg.OSS.Bucket, prefix)
	}
	return fmt.Sprintf("%s://%s.%s/%s", u.Scheme, s.cfg.OSS.Bucket, u.Host, prefix)
}

// ExpandSlug replaces {slug} in a configured pattern.
func ExpandSlug(pattern, slug string) string { return strings.ReplaceAll(pattern, "{slug}", slug) }
