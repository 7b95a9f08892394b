// Package notify owns miaobu's outgoing notifications: the targets users add (Slack, Discord,
// Standard Webhooks and email), the outbox message each event makes for each target, and sending
// it in the target's format, signed, rate-limited and never to a private address unless allowed.
// Nothing here fails or delays a deployment.
package notify

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/clock"
	"github.com/miaobu/miaobu/internal/outbox"
	"github.com/miaobu/miaobu/internal/store"
)

// Kind is the kind of the outbox messages that carry notifications.
const Kind = "notify"

// Types of notification target, as the API names them.
const (
	TypeSlack   = api.NotifySlack
	TypeDiscord = api.NotifyDiscord
	TypeWebhook = api.NotifyWebhook
	TypeEmail   = api.NotifyEmail
)

// EventTest is the event of the message `miaobu notify test` sends.
const EventTest = "notification.test"

// Concurrency is how many notifications the outbox sends at once: more than its default, as each
// receiver that hangs holds a slot for the whole send timeout.
const Concurrency = 16

// DefaultMinInterval is the least time between two messages to one target (Slack allows about one
// message a second).
const DefaultMinInterval = time.Second

// Store is what a Notifier reads and records while it sends: the target of a message, and its
// disabling when the receiver is gone.
type Store interface {
	Notification(id int64) (*store.Notification, error)
	DisableNotification(id int64, reason string) error
}

// SMTP is the mail server email targets are sent through (smtp.*).
type SMTP struct {
	Host     string
	Port     int
	Username string
	Password string
	From     string
	// ImplicitTLS starts TLS on connecting (port 465); otherwise STARTTLS is used when offered.
	ImplicitTLS bool
	// TLS, when not nil, is the base of the TLS configuration (tests trust their own CA with it).
	TLS *tls.Config
}

// Options configure a Notifier.
type Options struct {
	Store Store
	// Views turn a project and a deployment into their API objects, the data of every message.
	Views func(p *store.Project, d *store.Deployment) (api.Project, api.Deployment)
	// PublicURL is the dashboard's root: <PublicURL>/deployments/<id> is a deployment's page and log.
	PublicURL string
	SMTP      SMTP
	// AllowPrivateNetworks lets targets resolve to loopback, private and link-local addresses
	// (notifications.allow_private_networks).
	AllowPrivateNetworks bool
	// Resolver looks host names up; net.DefaultResolver when nil.
	Resolver Resolver
	// Clock paces the messages to a target; the system clock when nil.
	Clock clock.Clock
	// MinInterval is the least time between two messages to one target; DefaultMinInterval when zero.
	MinInterval time.Duration
	Log         *slog.Logger
}

// Notifier makes and sends notifications; it is safe for concurrent use.
type Notifier struct {
	opts  Options
	http  *http.Client
	pacer *pacer
}

// New returns a Notifier with opts.
func New(opts Options) *Notifier {
	if opts.MinInterval <= 0 {
		opts.MinInterval = DefaultMinInterval
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	n := &Notifier{opts: opts, pacer: newPacer(opts.Clock, opts.MinInterval)}
	n.http = n.httpClient()
	return n
}

// payload is the JSON of a notification message: everything its request needs, fixed when the
// event is committed, so that every retry sends the same body under the same webhook id.
type payload struct {
	Target    int64     `json:"target"`
	WebhookID string    `json:"webhook_id"`
	Event     string    `json:"event"`
	Timestamp time.Time `json:"timestamp"`
	// Project and Deployment are the API's objects; a test message may have neither.
	Project    *api.Project    `json:"project,omitempty"`
	Deployment *api.Deployment `json:"deployment,omitempty"`
	// LogURL is the deployment's page in the dashboard.
	LogURL string `json:"log_url,omitempty"`
}

// newWebhookID returns a fresh message id in the form Standard Webhooks receivers expect.
func newWebhookID() string {
	return "msg_" + rand.Text()
}

// eventPayload returns the payload that tells target n of e.
func (n *Notifier) eventPayload(target int64, e store.Event) payload {
	p, d := n.opts.Views(&e.Project, &e.Deployment)
	return payload{Target: target, WebhookID: newWebhookID(), Event: e.Name, Timestamp: e.At.UTC(), Project: &p, Deployment: &d,
		LogURL: n.logURL(e.Deployment.ID)}
}

// logURL is the dashboard page of deployment id.
func (n *Notifier) logURL(id int64) string {
	return n.opts.PublicURL + "/deployments/" + strconv.FormatInt(id, 10)
}

// Message returns the outbox message that tells target t of e; it is the store's Notifier. Each
// message has a key of its own, so it follows its own retry schedule and one that keeps failing
// delays no later one (the pacer, not the key, spaces a target's messages).
func (n *Notifier) Message(t store.Notification, e store.Event) outbox.Message {
	p := n.eventPayload(t.ID, e)
	raw, _ := json.Marshal(p) // API objects always encode
	return outbox.Message{Kind: Kind, Key: "notify:" + strconv.FormatInt(t.ID, 10) + ":" + p.WebhookID, Payload: raw}
}

// Answer is what a receiver answered: an HTTP status or SMTP reply code and the start of its text.
type Answer struct {
	Code int
	Text string
}

// Send delivers one notification message; it is the outbox Sender of Kind. A target that is gone,
// disabled or refused drops the message; one whose receiver answers 410 (or Slack's
// channel_is_archived, or Discord's Unknown Webhook) is disabled.
func (n *Notifier) Send(ctx context.Context, m outbox.Message) error {
	var p payload
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		return outbox.Permanent(fmt.Errorf("a notification message that does not decode: %w", err))
	}
	t, err := n.opts.Store.Notification(p.Target)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return outbox.Permanent(fmt.Errorf("notification target %d was removed", p.Target))
	case err != nil:
		return err
	case t.DisabledReason != "":
		return outbox.Permanent(fmt.Errorf("notification target %d is disabled: %s", t.ID, t.DisabledReason))
	}
	longest := maxTurnWait
	if deadline, ok := ctx.Deadline(); ok {
		longest = min(longest, time.Until(deadline)/3) // the rest of the send timeout is the request's
	}
	answer, err := n.deliver(ctx, t, p, longest)
	if err != nil {
		return err
	}
	return n.judge(t, answer)
}

// judge turns a receiver's answer into the outcome of an attempt, disabling the target when the
// receiver says it is gone (410, Slack's archived channel, Discord's deleted webhook or revoked
// token). As Standard Webhooks asks, every other answer that is not 2xx is retried on the
// schedule, redirects (never followed) and 4xx included, since a receiver that is being set up or
// moved answers them for a while; only Slack's answers that name a payload it cannot read (our
// fault: the same body fails every time) or a webhook that no longer exists drop the message at
// once.
func (n *Notifier) judge(t *store.Notification, a *reply) error {
	code := a.Code
	err := fmt.Errorf("%s target %d answered %d: %s", t.Type, t.ID, code, a.Text)
	switch {
	case t.Type == TypeEmail || (code >= 200 && code < 300):
		return nil
	case code == http.StatusGone || archived(a.Text) || (t.Type == TypeDiscord && discordGone(a.Text)):
		reason := fmt.Sprintf("the receiver answered %d %s", code, a.Text)
		if derr := n.opts.Store.DisableNotification(t.ID, reason); derr != nil {
			return fmt.Errorf("disabling notification target %d: %w", t.ID, derr)
		}
		n.opts.Log.Warn("notification target disabled", "notification", t.ID, "reason", reason)
		return outbox.Permanent(err)
	case t.Type == TypeSlack && slackPermanent(a.Text):
		return outbox.Permanent(err)
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		return outbox.RetryAfter(err, a.RetryAfter)
	case code >= 300 && code < 400:
		return fmt.Errorf("%s target %d answered %d, a redirect, which is not followed", t.Type, t.ID, code)
	}
	return err
}

// Test sends target t a test message about sample (nil: about no deployment) at once, outside the
// outbox, and returns what the receiver answered whatever it was; an error means no answer.
func (n *Notifier) Test(ctx context.Context, t *store.Notification, sample *store.Event) (*Answer, error) {
	p := payload{Target: t.ID, WebhookID: newWebhookID(), Event: EventTest, Timestamp: time.Now().UTC()}
	if sample != nil {
		p = n.eventPayload(t.ID, *sample)
		p.Event = EventTest
	}
	ctx, cancel := context.WithTimeout(ctx, outbox.DefaultSendTimeout)
	defer cancel()
	a, err := n.deliver(ctx, t, p, outbox.DefaultSendTimeout)
	if err != nil {
		return nil, err
	}
	return &a.Answer, nil
}
