package notify

import (
	"context"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/event"
	"github.com/miaobu/miaobu/internal/store"
)

// maxURL is the longest target URL accepted; chat services' webhook URLs are far shorter.
const maxURL = 2048

// NewTarget returns the target that `miaobu notify add` asks for, checked and ready to store: its
// type is known, its URL is http(s) to a host that is no internal address (or its email address
// is one, with a mail server configured), its events are known (event.Defaults when none), and a
// webhook gets a fresh signing secret. Every error is the caller's to fix and names no secret.
func (n *Notifier) NewTarget(ctx context.Context, typ, target string, projectID int64, events []string) (*store.Notification, error) {
	if !slices.Contains(api.NotificationTypes, typ) {
		return nil, fmt.Errorf("unknown notification type %q: use %s", typ, strings.Join(api.NotificationTypes, ", "))
	}
	events, err := checkEvents(events)
	if err != nil {
		return nil, err
	}
	t := &store.Notification{Type: typ, ProjectID: projectID, Events: events}
	if typ == TypeEmail {
		addr, err := mail.ParseAddress(target)
		if err != nil || addr.Name != "" || addr.Address != target {
			return nil, fmt.Errorf("%q is not an email address", target)
		}
		if !n.opts.SMTP.Configured() {
			return nil, ErrNoSMTP
		}
		t.Target = target
		return t, nil
	}
	if len(target) > maxURL {
		return nil, fmt.Errorf("a %s target's URL may have at most %d characters, not %d", typ, maxURL, len(target))
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("a %s target needs an http(s) URL with a host and no user name (got %s)", typ, Mask(target))
	}
	if port, err := strconv.Atoi(u.Port()); u.Port() != "" && (err != nil || port < 1 || port > 65535) {
		return nil, fmt.Errorf("a %s target's port must be from 1 to 65535 (got %s)", typ, Mask(target))
	}
	if _, err := n.resolve(ctx, u.Hostname()); err != nil {
		return nil, fmt.Errorf("cannot send to %s: %w", Mask(target), err)
	}
	t.Target = u.String()
	if typ == TypeWebhook {
		t.Secret = NewSecret()
	}
	return t, nil
}

// checkEvents returns events without repeats, or event.Defaults when empty; an unknown one is refused.
func checkEvents(events []string) ([]string, error) {
	if len(events) == 0 {
		return slices.Clone(event.Defaults), nil
	}
	var out []string
	for _, e := range events {
		if !slices.Contains(event.All, e) {
			return nil, fmt.Errorf("unknown event %q: use %s", e, strings.Join(event.All, ", "))
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Mask returns a target as it may be shown: an email address whole, a URL without user
// information, and with its path and query after the first segment (where chat services keep
// their tokens) shown only as "…".
func Mask(target string) string {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		if _, err := mail.ParseAddress(target); err == nil && !strings.Contains(target, "/") {
			return target
		}
		return "…"
	}
	shown := u.Scheme + "://" + u.Host + "/"
	first, rest, more := strings.Cut(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
	shown += first
	switch {
	case more && rest != "":
		shown += "/…"
	case u.RawQuery != "" || u.Fragment != "":
		shown += "?…"
	case more:
		shown += "/"
	}
	return shown
}
