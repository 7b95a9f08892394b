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
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/domain"
	"github.com/miaobu/miaobu/internal/store"
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

// Sessions keeps the dashboard's login codes and sessions by the SHA-256 of their secrets;
// *store.Store implements it.
type Sessions interface {
	CreateLoginCode(hash []byte, expires time.Time) error
	UseLoginCode(hash []byte, now time.Time) (bool, error)
	CreateSession(hash []byte, expires time.Time) error
	SessionValid(hash []byte, now time.Time) (bool, error)
	DeleteSession(hash []byte) error
}

// Options are what a Dashboard works with.
type Options struct {
	// Domain carries out every action, as for the API.
	Domain   *domain.Service
	Views    Views
	Sessions Sessions
	// PublicURL is the agent's public_url: the origin that forms may post from, and https there
	// makes the session cookie Secure.
	PublicURL string
	// AdminToken also signs in, on the login page.
	AdminToken string
	// Stopping is closed when the agent shuts down, to end live logs.
	Stopping <-chan struct{}
	Log      *slog.Logger
}

// Dashboard serves the dashboard's pages.
type Dashboard struct {
	opts         Options
	pages        map[string]*template.Template
	origins      *http.CrossOriginProtection
	secureCookie bool
}

// New parses the dashboard's templates and returns it.
func New(opts Options) (*Dashboard, error) {
	origins := http.NewCrossOriginProtection()
	// Forms post from the public URL's origin even behind a proxy that rewrites Host; the
	// configuration has checked that it is an http(s) URL.
	u, err := url.Parse(opts.PublicURL)
	if err == nil && u.Host != "" {
		if err := origins.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
			return nil, fmt.Errorf("public_url: %w", err)
		}
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	return &Dashboard{opts: opts, pages: pages, origins: origins, secureCookie: strings.HasPrefix(opts.PublicURL, "https://")}, nil
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
	static, _ := fs.Sub(staticFiles, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
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
	signedIn.HandleFunc("POST /deployments/{id}/cancel", d.handle(d.cancel))
	signedIn.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		d.errorPage(w, http.StatusNotFound, "There is no such page.")
	})
	mux.Handle("/", d.requireSession(signedIn))
	return securityHeaders(d.sameOrigin(mux))
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

// sameOrigin refuses a state-changing request that a browser sent from another site (by Origin or
// Sec-Fetch-Site), and one that shows neither header: every browser sends at least one with a
// form's POST, and the dashboard has no other clients.
func (d *Dashboard) sameOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := d.origins.Check(r)
		if err == nil && r.Method != http.MethodGet && r.Method != http.MethodHead &&
			r.Header.Get("Origin") == "" && r.Header.Get("Sec-Fetch-Site") == "" {
			err = errors.New("request names no origin")
		}
		if err != nil {
			d.opts.Log.Warn("dashboard refused a cross-origin request", "method", r.Method, "path", r.URL.Path,
				"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
			d.errorPage(w, http.StatusForbidden, "This request came from another site, so it was refused. Use the dashboard's own buttons.")
			return
		}
		next.ServeHTTP(w, r)
	})
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
