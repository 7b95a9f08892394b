package dashboard

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
	"unicode"
)

const (
	// LoginCodeLifetime is how long a code from `miaobu dashboard` signs in, once.
	LoginCodeLifetime = 5 * time.Minute
	// SessionLifetime is how long a sign-in lasts.
	SessionLifetime = 12 * time.Hour
)

// IssueLoginCode records a new one-time login code and returns it with the sign-in URL it goes in
// and when it expires.
func (d *Dashboard) IssueLoginCode() (code, loginURL string, expires time.Time, err error) {
	code = randomSecret()
	expires = time.Now().Add(LoginCodeLifetime)
	if err := d.opts.Sessions.CreateLoginCode(digest(code), expires); err != nil {
		return "", "", time.Time{}, err
	}
	return code, strings.TrimSuffix(d.opts.PublicURL, "/") + "/login?code=" + url.QueryEscape(code), expires.UTC(), nil
}

// randomSecret is 32 random bytes, base64url without padding.
func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails, per crypto/rand
	return base64.RawURLEncoding.EncodeToString(b)
}

// digest is the SHA-256 of a secret, the only form in which the store keeps it.
func digest(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// loginData is what the login page shows.
type loginData struct {
	base
	Code, Next, Message string
}

// loginPage shows the sign-in form: a code from a link is only filled in, so that a link scanner
// that fetches the link does not use the code up.
func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d.renderOrFail(w, r, http.StatusOK, "login", loginData{base: base{Title: "Sign in"}, Code: q.Get("code"), Next: localPath(q.Get("next"))})
}

// login signs in with a login code or the admin token and starts a session.
func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	code, token := r.PostFormValue("code"), r.PostFormValue("token")
	next := localPath(r.PostFormValue("next"))
	ok := false
	switch {
	case code != "":
		valid, err := d.opts.Sessions.UseLoginCode(digest(code), time.Now())
		if err != nil {
			d.fail(w, r, err)
			return
		}
		ok = valid
	case token != "":
		ok = subtle.ConstantTimeCompare([]byte(token), []byte(d.opts.AdminToken)) == 1
	}
	if !ok {
		d.opts.Log.Warn("dashboard sign-in refused", "code_given", code != "", "token_given", token != "")
		d.renderOrFail(w, r, http.StatusForbidden, "login", loginData{base: base{Title: "Sign in"}, Next: next,
			Message: "That code or token does not sign in: a code works once, for 5 minutes. Run `miaobu dashboard` for a new one."})
		return
	}
	session := randomSecret()
	expires := time.Now().Add(SessionLifetime)
	if err := d.opts.Sessions.CreateSession(digest(session), expires); err != nil {
		d.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: d.cookieName, Value: session, Path: "/", Expires: expires,
		MaxAge: int(SessionLifetime / time.Second), HttpOnly: true, Secure: d.secureCookie, SameSite: http.SameSiteStrictMode})
	d.opts.Log.Info("dashboard sign-in")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout ends the session and clears its cookie.
func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	for _, c := range r.CookiesNamed(d.cookieName) {
		if err := d.opts.Sessions.DeleteSession(digest(c.Value)); err != nil {
			d.fail(w, r, err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: d.cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: d.secureCookie, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// requireSession lets a request through with a valid session cookie. Without one, a page asks to
// sign in and comes back after; anything else is refused.
func (d *Dashboard) requireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		valid := false
		// Every cookie of the name counts: a site under sites.domain may have set one of the same name
		// for the parent domain, which the browser sends as well, and perhaps first.
		for _, c := range r.CookiesNamed(d.cookieName) {
			var err error
			if valid, err = d.opts.Sessions.SessionValid(digest(c.Value), time.Now()); err != nil {
				d.fail(w, r, err)
				return
			}
			if valid {
				break
			}
		}
		switch {
		case valid:
			next.ServeHTTP(w, r)
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			d.errorPage(w, http.StatusUnauthorized, "Not signed in, or the session has ended: sign in again.")
		case r.Header.Get("Sec-Fetch-Site") == "cross-site" && r.Header.Get("Sec-Fetch-Mode") == "navigate":
			// A link from another site (a GitHub status) comes without the SameSite=Strict cookie:
			// loading the page again from here sends it.
			d.renderOrFail(w, r, http.StatusOK, "reload", base{Title: "Loading"})
		default:
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		}
	})
}

// localPath is p, cleaned, when it is a plain path on this host (with its query), else "/": a
// sign-in never sends the browser to another site, whichever way a browser reads backslashes,
// control characters or dot segments.
func localPath(p string) string {
	u, err := url.Parse(p)
	if err != nil || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") ||
		strings.ContainsFunc(p, func(r rune) bool { return r == '\\' || unicode.IsControl(r) }) {
		return "/"
	}
	clean := &url.URL{Path: path.Clean(u.Path), RawQuery: u.RawQuery}
	if strings.HasPrefix(clean.Path, "//") || strings.Contains(clean.Path, "\\") {
		return "/"
	}
	return clean.String()
}

// fail answers an unexpected failure with a 500 page, logging it.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, err error) {
	d.opts.Log.Error("dashboard request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	d.errorPage(w, http.StatusInternalServerError, "Internal error: see the agent's log")
}

// renderOrFail renders a page, answering a failure to render with fail.
func (d *Dashboard) renderOrFail(w http.ResponseWriter, r *http.Request, code int, page string, data any) {
	if err := d.render(w, code, page, data); err != nil {
		d.fail(w, r, err)
	}
}
