package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/time/rate"
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
	if err := d.opts.Sessions.CreateLoginCode(d.digest(code), expires); err != nil {
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

// digest is the HMAC-SHA256 of a secret keyed with the admin token, the only form in which the store
// keeps it: replacing the admin token (the remedy when it leaks) ends every session and login code
// made under the old one.
func (d *Dashboard) digest(secret string) []byte {
	mac := hmac.New(sha256.New, []byte(d.opts.AdminToken))
	mac.Write([]byte(secret))
	return mac.Sum(nil)
}

// sessionKey is the context key of the signed-in request's session, as digest made it.
type sessionKey struct{}

// session is the digest of the session a signed-in request came with.
func session(r *http.Request) []byte {
	hash, _ := r.Context().Value(sessionKey{}).([]byte)
	return hash
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

// login signs in with a login code or the admin token and starts a session; an address that failed
// too often is refused for a while.
func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	code, token := r.PostFormValue("code"), r.PostFormValue("token")
	next := localPath(r.PostFormValue("next"))
	addr := d.opts.ClientAddr(r)
	if wait := d.signIns.wait(addr); wait > 0 {
		d.opts.Log.Warn("dashboard sign-in throttled", "remote_addr", addr)
		w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		d.renderOrFail(w, r, http.StatusTooManyRequests, "login", loginData{base: base{Title: "Sign in"}, Next: next,
			Message: fmt.Sprintf("Too many failed sign-ins from this address: try again in %s.", wait.Round(time.Second))})
		return
	}
	ok := false
	switch {
	case code != "":
		valid, err := d.opts.Sessions.UseLoginCode(d.digest(code), time.Now())
		if err != nil {
			d.fail(w, r, err)
			return
		}
		ok = valid
	case token != "":
		ok = subtle.ConstantTimeCompare([]byte(token), []byte(d.opts.AdminToken)) == 1
	}
	if !ok {
		d.signIns.failed(addr)
		d.opts.Log.Warn("dashboard sign-in refused", "remote_addr", addr, "code_given", code != "", "token_given", token != "")
		d.renderOrFail(w, r, http.StatusForbidden, "login", loginData{base: base{Title: "Sign in"}, Next: next,
			Message: "That code or token does not sign in: a code works once, for 5 minutes. Run `miaobu dashboard` for a new one."})
		return
	}
	session := randomSecret()
	expires := time.Now().Add(SessionLifetime)
	if err := d.opts.Sessions.CreateSession(d.digest(session), expires); err != nil {
		d.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: d.cookieName, Value: session, Path: "/", Expires: expires,
		MaxAge: int(SessionLifetime / time.Second), HttpOnly: true, Secure: d.secureCookie, SameSite: http.SameSiteStrictMode})
	d.opts.Log.Info("dashboard sign-in", "remote_addr", addr)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout ends the session, or with "everywhere" every session, and clears its cookie.
func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	if r.PostFormValue("everywhere") != "" {
		if err := d.opts.Sessions.EndSessions(); err != nil {
			d.fail(w, r, err)
			return
		}
		d.opts.Log.Info("dashboard signed out everywhere", "remote_addr", d.opts.ClientAddr(r))
	} else if err := d.opts.Sessions.DeleteSession(session(r)); err != nil {
		d.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: d.cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: d.secureCookie, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// requireSession lets a request through with a valid session cookie. Without one, a page asks to
// sign in and comes back after; anything else is refused.
func (d *Dashboard) requireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var valid []byte
		// Every cookie of the name counts: a site under sites.domain may have set one of the same name
		// for the parent domain, which the browser sends as well, and perhaps first.
		for _, c := range r.CookiesNamed(d.cookieName) {
			hash := d.digest(c.Value)
			ok, err := d.opts.Sessions.SessionValid(hash, time.Now())
			if err != nil {
				d.fail(w, r, err)
				return
			}
			if ok {
				valid = hash
				break
			}
		}
		switch {
		case valid != nil:
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, valid)))
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
	// Cleaning also turns the "//" an escaped slash may leave into "/".
	return (&url.URL{Path: path.Clean(u.Path), RawQuery: u.RawQuery}).String()
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

const (
	// signInBurst is how many sign-ins an address may fail in a row, and signInEvery how often it
	// earns one more try after that.
	signInBurst = 10
	signInEvery = 6 * time.Second
	// maxThrottled bounds the addresses whose failures are remembered.
	maxThrottled = 10000
)

// signInThrottle remembers the failed sign-ins of each client address, as a token bucket.
type signInThrottle struct {
	mu     sync.Mutex
	byAddr map[string]*rate.Limiter
}

// wait is how long addr must wait before it may try to sign in again; 0 when it may now.
func (t *signInThrottle) wait(addr string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.byAddr[addr]
	if l == nil {
		return 0
	}
	return time.Duration(max(0, 1-l.Tokens()) * float64(signInEvery))
}

// failed records a failed sign-in from addr.
func (t *signInThrottle) failed(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.byAddr[addr]
	if l == nil {
		if len(t.byAddr) >= maxThrottled {
			t.forget()
		}
		l = rate.NewLimiter(rate.Every(signInEvery), signInBurst)
		t.byAddr[addr] = l
	}
	l.Allow()
}

// forget drops the addresses whose buckets have filled up again, or, when none has, one of them.
func (t *signInThrottle) forget() {
	for addr, l := range t.byAddr {
		if l.Tokens() >= signInBurst {
			delete(t.byAddr, addr)
		}
	}
	for addr := range t.byAddr {
		if len(t.byAddr) < maxThrottled {
			break
		}
		delete(t.byAddr, addr)
	}
}
