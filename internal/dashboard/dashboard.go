// Package dashboard is the agent's web dashboard: server-rendered pages of projects, deployments
// with their live build logs, and the agent's status; sign-in by one-time code or admin token into
// sessions kept in the store; and forms whose actions go through the domain, as the API's do.
package dashboard

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/domain"
	"github.com/miaobu/miaobu/internal/store"
	"golang.org/x/time/rate"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Views turns the domain's records into what the API shows, so that the pages show what the CLI
// shows; the agent implements it with its API's views.
type Views interface {
	Project(p *store.Project) api.Project
	Deployment(d *store.Deployment, p *store.Project) api.Deployment
	Preview(p *store.Project, pv *store.Preview) api.Preview
	Status() (api.Status, error)
}

// Sessions keeps the dashboard's login codes and sessions by a hash of their secrets;
// *store.Store implements it.
type Sessions interface {
	CreateLoginCode(hash []byte, expires time.Time) error
	UseLoginCode(hash []byte, now time.Time) (bool, error)
	CreateSession(hash []byte, expires time.Time) error
	SessionValid(hash []byte, now time.Time) (bool, error)
	DeleteSession(hash []byte) error
	EndSessions() error
}

// Options are what a Dashboard works with.
type Options struct {
	// Domain carries out every action, as for the API.
	Domain   *domain.Service
	Views    Views
	Sessions Sessions
	// PublicURL is the agent's public_url: the only origin that forms may post from when set, and
	// https there makes the session cookie Secure and __Host-.
	PublicURL string
	// AdminToken also signs in, on the login page, and keys the hashes of sessions and login codes.
	AdminToken string
	// ClientAddr is the address of the client a request came from, through trusted proxies.
	ClientAddr func(r *http.Request) string
	// Stopping is closed when the agent shuts down, to end live logs.
	Stopping <-chan struct{}
	Log      *slog.Logger
}

// Dashboard serves the dashboard's pages.
type Dashboard struct {
	opts  Options
	pages map[string]*template.Template
	// publicOrigin is the public URL's origin, "" without a public URL.
	publicOrigin string
	secureCookie bool
	// cookieName is the session cookie's name: over https the __Host- prefix keeps browsers from
	// taking a cookie of that name from any other host (a site under sites.domain); plain http does
	// not allow the prefix.
	cookieName string
	signIns    signInThrottle
	streams    streamCounts
}

// New parses the dashboard's templates and returns it.
func New(opts Options) (*Dashboard, error) {
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	d := &Dashboard{opts: opts, pages: pages, cookieName: "miaobu_session", signIns: signInThrottle{byAddr: map[string]*rate.Limiter{}},
		streams: streamCounts{bySession: map[string]int{}}}
	// The configuration has checked that public_url is an http(s) URL.
	if u, err := url.Parse(opts.PublicURL); err == nil && u.Host != "" {
		d.publicOrigin = origin(u.Scheme, u.Host)
		if u.Scheme == "https" {
			d.secureCookie, d.cookieName = true, "__Host-miaobu_session"
		}
	}
	return d, nil
}

// origin is the Origin a browser sends for pages at scheme and host, without the scheme's default port.
func origin(scheme, host string) string {
	scheme = strings.ToLower(scheme)
	host = strings.ToLower(host)
	if h, port, err := net.SplitHostPort(host); err == nil && (scheme == "http" && port == "80" || scheme == "https" && port == "443") {
		host = h
		if strings.Contains(h, ":") {
			host = "[" + h + "]"
		}
	}
	return scheme + "://" + host
}

// parsePages parses each page template together with the layout.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, name := range names {
		page := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if page == "layout" {
			continue
		}
		t, err := template.New(page).Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", name)
		if err != nil {
			return nil, fmt.Errorf("dashboard template %s: %w", name, err)
		}
		pages[page] = t
	}
	return pages, nil
}

// Handler returns the dashboard's routes, each answered with the security headers; every POST must
// come from the dashboard's own origin, and every page but the login page needs a session.
func (d *Dashboard) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", d.staticFiles()))
	mux.HandleFunc("GET /login", d.loginPage)
	mux.HandleFunc("POST /login", d.login)
	signedIn := http.NewServeMux()
	signedIn.HandleFunc("POST /logout", d.logout)
	signedIn.HandleFunc("GET /{$}", d.handle(d.projectsPage))
	signedIn.HandleFunc("GET /status", d.handle(d.statusPage))
	signedIn.HandleFunc("GET /projects/{ref}", d.handle(d.projectPage))
	signedIn.HandleFunc("POST /projects/{ref}/deploy", d.handle(d.deploy))
	signedIn.HandleFunc("POST /projects/{ref}/rollback", d.handle(d.rollback))
	signedIn.HandleFunc("POST /projects/{ref}/webhook/{action}", d.handle(d.webhook))
	signedIn.HandleFunc("GET /deployments/{id}", d.handle(d.deploymentPage))
	signedIn.HandleFunc("GET /deployments/{id}/log", d.handle(d.logStream))
	signedIn.HandleFunc("GET /deployments/{id}/log.txt", d.handle(d.rawLog))
	signedIn.HandleFunc("POST /deployments/{id}/cancel", d.handle(d.cancel))
	signedIn.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		d.errorPage(w, http.StatusNotFound, "There is no such page.")
	})
	mux.Handle("/", d.requireSession(signedIn))
	return securityHeaders(d.sameOrigin(d.parseForms(mux)))
}

// staticFiles serves the embedded static files, and no listing of their directory.
func (d *Dashboard) staticFiles() http.Handler {
	static, _ := fs.Sub(staticFiles, "static")
	files := http.FileServerFS(static)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if info, err := fs.Stat(static, name); err != nil || info.IsDir() {
			d.errorPage(w, http.StatusNotFound, "There is no such file.")
			return
		}
		files.ServeHTTP(w, r)
	})
}

// maxFormBytes bounds the body of a dashboard form, whose largest holds a commit and a branch.
const maxFormBytes = 64 << 10

// parseForms parses the form of every POST before its handler reads it, refusing a body over
// maxFormBytes or one that does not parse: a handler never acts on a form it could not read whole,
// with its defaults in place of the fields lost.
func (d *Dashboard) parseForms(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil {
				if tooLarge := new(http.MaxBytesError); errors.As(err, &tooLarge) {
					d.errorPage(w, http.StatusRequestEntityTooLarge, "This form was too large: the dashboard's forms are a few fields.")
					return
				}
				d.errorPage(w, http.StatusBadRequest, "This form could not be read: "+err.Error())
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// contentSecurityPolicy lets pages load only the dashboard's own script, style and images: no
// inline script or style, no framing, and forms that post only to the dashboard.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// securityHeaders sets the headers every dashboard answer carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin refuses a state-changing request whose Origin is not the dashboard's own, or, without
// Origin, whose Sec-Fetch-Site is not same-origin: every browser sends at least one of the two with
// a form's POST, and the dashboard has no other clients.
func (d *Dashboard) sameOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		safe := r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions
		if o := r.Header.Get("Origin"); !safe && (o != "" && o != d.origin(r) || o == "" && r.Header.Get("Sec-Fetch-Site") != "same-origin") {
			d.opts.Log.Warn("dashboard refused a cross-origin request", "method", r.Method, "path", r.URL.Path,
				"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
			d.errorPage(w, http.StatusForbidden, "This request came from another site, so it was refused. Use the dashboard's own buttons.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// origin is the dashboard's own origin: the public URL's, else that of the host the request names.
func (d *Dashboard) origin(r *http.Request) string {
	if d.publicOrigin != "" {
		return d.publicOrigin
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return origin(scheme, r.Host)
}

// pageFunc is a dashboard handler that returns its failure instead of answering it.
type pageFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts h to net/http: a *domain.Error becomes an error page with its status and detail,
// anything else a 500 logged once.
func (d *Dashboard) handle(h pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		var e *domain.Error
		if !errors.As(err, &e) {
			d.fail(w, r, err)
			return
		}
		if e.Err != nil {
			d.opts.Log.Warn("dashboard request failed", "method", r.Method, "path", r.URL.Path, "err", e.Err)
		}
		d.errorPage(w, domain.HTTPStatus(e.Kind), e.Detail)
	}
}

// base is what the layout reads from every page's data.
type base struct {
	Title string
	// SignedIn shows the navigation and the sign-out button.
	SignedIn bool
}

// render answers with page executed on data under the layout.
func (d *Dashboard) render(w http.ResponseWriter, code int, page string, data any) error {
	var buf strings.Builder
	if err := d.pages[page].ExecuteTemplate(&buf, "layout", data); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = fmt.Fprint(w, buf.String())
	return nil
}

// errorPage answers with an error page that says what went wrong.
func (d *Dashboard) errorPage(w http.ResponseWriter, code int, message string) {
	data := struct {
		base
		Message string
	}{base{Title: http.StatusText(code)}, message}
	if err := d.render(w, code, "error", data); err != nil {
		d.opts.Log.Error("rendering the dashboard's error page", "err", err)
		http.Error(w, message, code)
	}
}
