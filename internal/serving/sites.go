package serving

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/miaobu/miaobu/internal/store"
	"github.com/miaobu/miaobu/internal/trigger"
)

// Lookup is what Sites reads of the store.
type Lookup interface {
	ProjectBySlug(slug string) (*store.Project, error)
	ProjectByDomain(name string) (*store.Project, error)
	Deployment(id int64) (*store.Deployment, error)
	Preview(projectID int64, alias string) (*store.Preview, error)
	Previews(projectID int64) ([]*store.Preview, error)
}

// Sites serves the local target's kept deployments by Host.
type Sites struct {
	Store Lookup
	// Dir is where a deployment's files are kept.
	Dir func(slug string, deploymentID int64) string
	// Domain is sites.domain; PublicURL's host is never a site, whatever the domain.
	Domain, PublicURL string
	Log               *slog.Logger
}

// HostName returns the host name of a Host header or a TLS server name: lower case, without its
// port or a final dot.
func HostName(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// PublicHost returns the host name of the public URL, "" when it has none.
func PublicHost(publicURL string) string {
	u, err := url.Parse(publicURL)
	if err != nil {
		return ""
	}
	return HostName(u.Hostname())
}

// SiteLabel returns the label of a site host, a HostName one level under domain: "slug" (the live
// deployment) or "slug--id" (that deployment); ok is false for any other host.
func SiteLabel(host, domain string) (label string, ok bool) {
	label, ok = strings.CutSuffix(host, "."+strings.ToLower(strings.Trim(domain, ".")))
	if !ok || label == "" || strings.Contains(label, ".") {
		return "", false
	}
	return label, true
}

// Handler serves the sites to requests whose Host is <slug>.<Domain> (the live deployment),
// <slug>--<id>.<Domain> (that deployment), a preview's host label such as <slug>--pr-12.<Domain>
// (the preview's live deployment) or a project's custom domain (its live deployment), on any port; every other request, and one for the public URL's own host, goes to next.
func (s *Sites) Handler(next http.Handler) http.Handler {
	publicHost := PublicHost(s.PublicURL)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := HostName(r.Host)
		if host == publicHost {
			next.ServeHTTP(w, r)
			return
		}
		if label, ok := SiteLabel(host, s.Domain); ok {
			s.serveSite(w, r, label)
			return
		}
		p, err := s.Store.ProjectByDomain(host)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				s.Log.Error("looking up a custom domain", "host", host, "err", err)
			}
			next.ServeHTTP(w, r)
			return
		}
		if methodAllowed(w, r) {
			s.serveDeployment(w, r, p, p.ActiveDeploymentID, p.Slug, false)
		}
	})
}

// serveSite serves one request for the site named by a host label: "slug", "slug--id" or a
// preview's label.
func (s *Sites) serveSite(w http.ResponseWriter, r *http.Request, label string) {
	if !methodAllowed(w, r) {
		return
	}
	slug, rest, qualified := strings.Cut(label, "--")
	p, err := s.Store.ProjectBySlug(slug)
	if err != nil {
		s.siteError(w, r, err, fmt.Sprintf("No site %s here.", slug))
		return
	}
	id, what := p.ActiveDeploymentID, slug
	if qualified {
		if id, err = strconv.ParseInt(rest, 10, 64); err != nil {
			pv, err := s.preview(p, label, rest)
			if err != nil {
				s.siteError(w, r, err, fmt.Sprintf("No deployment %s of %s here.", rest, slug))
				return
			}
			if pv.Removed() {
				http.Error(w, "404 preview removed", http.StatusNotFound)
				return
			}
			id, what = pv.ActiveDeploymentID, pv.Alias+" of "+slug
		}
	}
	s.serveDeployment(w, r, p, id, what, qualified && strconv.FormatInt(id, 10) == rest)
}

// methodAllowed answers 405 to a request that is neither GET nor HEAD and reports whether it is.
func methodAllowed(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return false
	}
	return true
}

// serveDeployment serves one request for deployment id of project p, 0 being none; what names the
// site in the answer when there is none, and byID is set when the host named the deployment's id.
func (s *Sites) serveDeployment(w http.ResponseWriter, r *http.Request, p *store.Project, id int64, what string, byID bool) {
	slug := p.Slug
	if id == 0 {
		http.Error(w, fmt.Sprintf("%s has no live deployment yet.", what), http.StatusNotFound)
		return
	}
	d, err := s.Store.Deployment(id)
	if err == nil && (d.ProjectID != p.ID || d.Status != store.StatusDeployed) {
		err = store.ErrNotFound
	}
	if err != nil {
		s.siteError(w, r, err, fmt.Sprintf("No deployment %d of %s here.", id, slug))
		return
	}
	if d.Alias != "" && byID {
		// A removed preview's deployments are not served by their own hosts either.
		if pv, err := s.Store.Preview(p.ID, d.Alias); err != nil || pv.Removed() {
			http.Error(w, "404 preview removed", http.StatusNotFound)
			return
		}
	}
	root, err := os.OpenRoot(s.Dir(p.Slug, d.ID))
	if err != nil {
		s.siteError(w, r, err, fmt.Sprintf("The files of deployment %d of %s are gone.", id, slug))
		return
	}
	defer root.Close()
	serveSiteFile(w, r, root, d)
}

// preview finds the preview of p whose host label is label: the alias rest itself, or, for a label
// cut to 63 characters, the preview whose label it is, one that is up before one taken down (whose
// label another branch may have taken since).
func (s *Sites) preview(p *store.Project, label, rest string) (*store.Preview, error) {
	pv, err := s.Store.Preview(p.ID, rest)
	if err == nil && trigger.HostLabel(p.Slug, pv.Alias, pv.PullRequest, pv.Branch) == label {
		return pv, nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	previews, err := s.Store.Previews(p.ID)
	if err != nil {
		return nil, err
	}
	var removed *store.Preview
	for _, pv := range previews {
		switch {
		case trigger.HostLabel(p.Slug, pv.Alias, pv.PullRequest, pv.Branch) != label:
		case !pv.Removed():
			return pv, nil
		case removed == nil:
			removed = pv
		}
	}
	if removed == nil {
		return nil, store.ErrNotFound
	}
	return removed, nil
}

// siteError answers a site request that found nothing (404) or failed (500).
func (s *Sites) siteError(w http.ResponseWriter, r *http.Request, err error, notFound string) {
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		http.Error(w, notFound, http.StatusNotFound)
		return
	}
	s.Log.Error("serving a site", "host", r.Host, "path", r.URL.Path, "err", err)
	http.Error(w, "500 internal error", http.StatusInternalServerError)
}

// serveSiteFile serves the file a path names inside a deployment's directory: index.html for a
// directory, the SPA fallback or the site's 404.html for a missing file; os.Root keeps every open
// inside the directory, symlinks included.
func serveSiteFile(w http.ResponseWriter, r *http.Request, root *os.Root, d *store.Deployment) {
	name := CleanPath(r.URL.Path)
	f, info, err := openSiteFile(root, name)
	if err == nil && info.IsDir() {
		f.Close()
		if !strings.HasSuffix(r.URL.Path, "/") {
			http.Redirect(w, r, DirectoryLocation(r.URL.Path, r.URL.RawQuery), http.StatusMovedPermanently)
			return
		}
		name = path.Join(name, "index.html")
		f, info, err = openSiteFile(root, name)
	}
	if err != nil || info.IsDir() {
		if f != nil {
			f.Close()
		}
		if d.SPA && path.Ext(name) == "" {
			name = "/index.html"
			f, info, err = openSiteFile(root, name)
		}
		if err != nil || info.IsDir() {
			if f != nil {
				f.Close()
			}
			serveNotFound(w, r, root)
			return
		}
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", ContentType(name))
	h.Set("Cache-Control", CacheControl(name))
	h.Set("ETag", fmt.Sprintf(`"%x-%x-%x"`, d.ID, info.Size(), info.ModTime().UnixNano()))
	http.ServeContent(w, r, name, info.ModTime(), f)
}

// openSiteFile opens a slash path of the site.
func openSiteFile(root *os.Root, name string) (*os.File, fs.FileInfo, error) {
	rel := strings.TrimPrefix(name, "/")
	if rel == "" {
		rel = "."
	}
	f, err := root.Open(rel)
	if err != nil {
		return nil, nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, info, nil
}

// serveNotFound answers 404 with the site's own 404.html when it has one.
func serveNotFound(w http.ResponseWriter, r *http.Request, root *os.Root) {
	f, info, err := openSiteFile(root, "/404.html")
	if err != nil || info.IsDir() {
		if f != nil {
			f.Close()
		}
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", ContentType("404.html"))
	h.Set("Cache-Control", CacheRevalidate)
	h.Set("Content-Length", strconv.FormatInt(info.Size(), 10))
	w.WriteHeader(http.StatusNotFound)
	if r.Method != http.MethodHead {
		_, _ = io.Copy(w, f)
	}
}
