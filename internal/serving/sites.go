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
	"sync"
	"time"

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
	// Unavailable is the error the store's failures wrap when it cannot answer for now (a cluster
	// without quorum): a host served before is then served from what it last was, and any other
	// answers 503 with Retry-After instead of 500; nil on a store that is always available.
	Unavailable error
	Log         *slog.Logger
	// lastFound maps each host served to what it named then, for when the store is unavailable.
	lastFound sync.Map
}

// unavailableRetry is the Retry-After of a site request that the store could not answer.
const unavailableRetry = 5 * time.Second

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

// IsHostName reports whether name is a plain host name in the form TLS and DNS use: lower-case
// ASCII letters, digits and hyphens in dot-separated labels of 1 to 63 characters, 253 at most,
// with no port, no final dot, and no last label that clients read as a number (as in 127.1 or
// 0x7f.1, which they take for IPv4 addresses).
func IsHostName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	labels := strings.Split(name, ".")
	for _, label := range labels {
		if label == "" || len(label) > trigger.MaxLabel || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return !EndsInNumber(name)
}

// EndsInNumber reports whether the last label of a host name is a number, decimal or 0x hex, which
// makes browsers and URL parsers read the whole name as an IPv4 address.
func EndsInNumber(name string) bool {
	name = strings.TrimSuffix(name, ".")
	last := name[strings.LastIndex(name, ".")+1:]
	digits := "0123456789"
	if hex, ok := strings.CutPrefix(strings.ToLower(last), "0x"); ok {
		last, digits = hex, "0123456789abcdef"
	} else if last == "" {
		return false
	}
	return strings.Trim(last, digits) == ""
}

// errNotASite is the answer of find for a host that is no site's: the public URL's host, or one
// neither under the domain nor a custom domain; its requests go to the API.
var errNotASite = errors.New("not a site host")

// unserved is the answer of find for a site host that names nothing served; it says why, in the
// words of the 404 page.
type unserved string

func (u unserved) Error() string { return string(u) }

// site is what a site host names: a project and the deployment it serves, nil when the project has
// no live deployment yet (what then names the site in the 404 page).
type site struct {
	project    *store.Project
	deployment *store.Deployment
	what       string
}

// Serves reports whether the agent answers for name, a TLS server name or the domain of a TLS ask:
// the public URL's host, or a site host that names a project (its own host or a custom domain), a
// kept deployment by its id, or a preview that is up. It is the one rule of which names get a
// certificate, and it agrees with Handler because both ask find.
func (s *Sites) Serves(name string) (bool, error) {
	if !IsHostName(name) {
		return false, nil
	}
	if name == PublicHost(s.PublicURL) {
		return true, nil
	}
	_, err := s.find(name)
	var u unserved
	if errors.Is(err, errNotASite) || errors.As(err, &u) {
		return false, nil
	}
	return err == nil, err
}

// Handler serves the sites to requests whose Host is <slug>.<Domain> (the live deployment),
// <slug>--<id>.<Domain> (that deployment), a preview's host label such as <slug>--pr-12.<Domain>
// (the preview's live deployment) or a project's custom domain (its live deployment), on any port;
// every other request, and one for the public URL's own host, goes to next.
func (s *Sites) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := HostName(r.Host)
		found, err := s.find(host)
		if errors.Is(err, errNotASite) {
			next.ServeHTTP(w, r)
			return
		}
		if !methodAllowed(w, r) {
			return
		}
		switch {
		case err == nil:
			s.lastFound.Store(host, found)
		case s.Unavailable != nil && errors.Is(err, s.Unavailable):
			last, ok := s.lastFound.Load(host)
			if !ok {
				w.Header().Set("Retry-After", strconv.Itoa(int(unavailableRetry/time.Second)))
				http.Error(w, "503 the site's record cannot be read now: retry in a few seconds", http.StatusServiceUnavailable)
				return
			}
			found = last.(*site)
		default:
			s.siteError(w, r, err, "")
			return
		}
		s.serveDeployment(w, r, found)
	})
}

// find returns what host, a HostName, names: errNotASite for no site host, an unserved error for
// a site host that names nothing served.
func (s *Sites) find(host string) (*site, error) {
	if host == PublicHost(s.PublicURL) {
		return nil, errNotASite
	}
	label, ok := SiteLabel(host, s.Domain)
	if !ok {
		p, err := s.Store.ProjectByDomain(host)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errNotASite
		}
		if err != nil {
			return nil, fmt.Errorf("looking up a custom domain: %w", err)
		}
		return s.live(p, p.ActiveDeploymentID, p.Slug)
	}
	slug, rest, qualified := strings.Cut(label, "--")
	p, err := s.Store.ProjectBySlug(slug)
	if errors.Is(err, store.ErrNotFound) {
		return nil, unserved(fmt.Sprintf("No site %s here.", slug))
	}
	if err != nil {
		return nil, err
	}
	if !qualified {
		return s.live(p, p.ActiveDeploymentID, slug)
	}
	// A deployment is named by its id as written by FormatInt alone, so that one deployment has
	// one host, not one per leading zero or sign.
	if id, err := strconv.ParseInt(rest, 10, 64); err == nil && id > 0 && strconv.FormatInt(id, 10) == rest {
		found, err := s.live(p, id, slug)
		if err != nil || found.deployment.Alias == "" {
			return found, err
		}
		// A removed preview's deployments are not served by their own hosts either.
		if pv, err := s.Store.Preview(p.ID, found.deployment.Alias); err != nil || pv.Removed() {
			return nil, unserved("404 preview removed")
		}
		return found, nil
	}
	pv, err := s.preview(p, label, rest)
	if errors.Is(err, store.ErrNotFound) {
		return nil, unserved(fmt.Sprintf("No deployment %s of %s here.", rest, slug))
	}
	if err != nil {
		return nil, err
	}
	if pv.Removed() {
		return nil, unserved("404 preview removed")
	}
	what := pv.Alias + " of " + slug
	if pv.ActiveDeploymentID == 0 {
		return nil, unserved(what + " has no live deployment yet.")
	}
	return s.live(p, pv.ActiveDeploymentID, what)
}

// live returns the site of deployment id of project p, 0 being none yet; the deployment must be
// one of p's that went live.
func (s *Sites) live(p *store.Project, id int64, what string) (*site, error) {
	if id == 0 {
		return &site{project: p, what: what}, nil
	}
	d, err := s.Store.Deployment(id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (d.ProjectID != p.ID || d.Status != store.StatusDeployed)) {
		return nil, unserved(fmt.Sprintf("No deployment %d of %s here.", id, p.Slug))
	}
	if err != nil {
		return nil, err
	}
	return &site{project: p, deployment: d, what: what}, nil
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

// serveDeployment serves one request for a site's deployment.
func (s *Sites) serveDeployment(w http.ResponseWriter, r *http.Request, found *site) {
	d := found.deployment
	if d == nil {
		http.Error(w, found.what+" has no live deployment yet.", http.StatusNotFound)
		return
	}
	root, err := os.OpenRoot(s.Dir(found.project.Slug, d.ID))
	if err != nil {
		s.siteError(w, r, err, fmt.Sprintf("The files of deployment %d of %s are gone.", d.ID, found.project.Slug))
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

// siteError answers a site request that found nothing (404, with the unserved error's words, else
// notFound) or failed (500).
func (s *Sites) siteError(w http.ResponseWriter, r *http.Request, err error, notFound string) {
	var u unserved
	if errors.As(err, &u) {
		http.Error(w, string(u), http.StatusNotFound)
		return
	}
	if errors.Is(err, fs.ErrNotExist) {
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
