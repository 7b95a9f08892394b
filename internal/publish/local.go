package publish

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"

	"github.com/miaobu/miaobu/internal/config"
)

// Local is the default target: the agent serves kept deployments itself by Host, so making one
// live is the store's pointer switch alone.
type Local struct {
	cfg *config.Config
}

// Activate checks that the kept files are there.
func (*Local) Activate(_ context.Context, r Release, _ string) error {
	if _, err := os.Stat(r.Dir); err != nil {
		return &GoneError{DeploymentID: r.Deployment.ID}
	}
	return nil
}

// URL is <slug>.<sites.domain> or <slug>--<alias>.<sites.domain>: on the agent's port for
// localhost, else on the public URL's scheme and port.
func (l *Local) URL(slug, alias string) string {
	label := slug
	if alias != "" {
		label += "--" + alias
	}
	domain := l.cfg.Sites.Domain
	if domain == "localhost" {
		_, port, _ := net.SplitHostPort(l.cfg.Listen)
		return fmt.Sprintf("http://%s.localhost:%s/", label, port)
	}
	scheme, port := "https", ""
	if u, err := url.Parse(l.cfg.PublicURL); err == nil {
		scheme, port = u.Scheme, u.Port()
	}
	if port != "" {
		return fmt.Sprintf("%s://%s.%s:%s/", scheme, label, domain, port)
	}
	return fmt.Sprintf("%s://%s.%s/", scheme, label, domain)
}
