package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/miaobu/miaobu/internal/clock"
	"github.com/miaobu/miaobu/internal/outbox"
	"github.com/miaobu/miaobu/internal/store"
)

// reply is a receiver's answer and how long it asked to be left alone.
type reply struct {
	Answer
	RetryAfter time.Duration
}

// maxExcerpt is the most characters of a receiver's answer kept for errors and `notify test`.
const maxExcerpt = 200

// maxRetryAfter caps the wait a receiver may ask for, so that one cannot hold a message for ever;
// it is the longest wait of the outbox's schedule.
const maxRetryAfter = 10 * time.Hour

// maxTurnWait is the longest a message from the outbox waits for its target's turn within its
// send: a later turn puts the message off to that turn instead, so that a backlog for one target
// never spends the send timeout waiting.
const maxTurnWait = 2 * time.Second

// deliver sends p to target t once, in the target's format, and returns the receiver's answer; it
// waits at most longest for the target's turn.
func (n *Notifier) deliver(ctx context.Context, t *store.Notification, p payload, longest time.Duration) (*reply, error) {
	if err := n.pacer.wait(ctx, t.ID, longest); err != nil {
		return nil, err
	}
	var (
		body []byte
		err  error
	)
	switch t.Type {
	case TypeEmail:
		return n.sendEmail(ctx, t.Target, p)
	case TypeSlack:
		body, err = slackBody(p)
	case TypeDiscord:
		body, err = discordBody(p)
	case TypeWebhook:
		body, err = webhookBody(p)
	default:
		return nil, outbox.Permanent(fmt.Errorf("notification target %d has an unknown type %q", t.ID, t.Type))
	}
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.Target, bytes.NewReader(body))
	if err != nil {
		// The error would quote the URL, a secret.
		return nil, outbox.Permanent(fmt.Errorf("%s target %d has a URL that cannot be posted to", t.Type, t.ID))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "miaobu")
	if t.Type == TypeWebhook {
		now := n.pacer.clock.Now().Unix()
		signature, err := sign(t.Secret, p.WebhookID, now, body)
		if err != nil {
			return nil, outbox.Permanent(fmt.Errorf("webhook target %d: %w", t.ID, err))
		}
		req.Header.Set("webhook-id", p.WebhookID)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(now, 10))
		req.Header.Set("webhook-signature", signature)
	}
	resp, err := n.http.Do(req)
	if err != nil {
		return nil, transportError(t, err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	return &reply{Answer: Answer{Code: resp.StatusCode, Text: excerpt(string(text))},
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), text, n.pacer.clock.Now())}, nil
}

// transportError describes a request that got no answer without the URL, which the http
// package's errors quote; a refused private address is permanent.
func transportError(t *store.Notification, err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	err = fmt.Errorf("posting to %s target %d: %w", t.Type, t.ID, err)
	if private := new(PrivateError); errors.As(err, &private) {
		return outbox.Permanent(err)
	}
	return err
}

// excerpt returns the start of a receiver's answer on one line.
func excerpt(s string) string {
	s = strings.Join(strings.FieldsFunc(strings.ToValidUTF8(s, "�"), unicode.IsSpace), " ")
	return cut(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s), maxExcerpt)
}

// retryAfter reads the wait a 429 or 503 asks for: the Retry-After header in seconds or as a
// date, else Discord's retry_after in the body (seconds); zero when none, at most maxRetryAfter.
func retryAfter(header string, body []byte, now time.Time) time.Duration {
	var d time.Duration
	if secs, err := strconv.Atoi(strings.TrimSpace(header)); err == nil {
		d = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(header); err == nil {
		d = at.Sub(now)
	} else {
		var discord struct {
			RetryAfter float64 `json:"retry_after"`
		}
		if json.Unmarshal(body, &discord) == nil {
			d = time.Duration(discord.RetryAfter * float64(time.Second))
		}
	}
	return min(max(d, 0), maxRetryAfter)
}

// archived reports whether a receiver's answer is Slack's for a channel that was archived.
func archived(text string) bool { return strings.Contains(text, "channel_is_archived") }

// discordGoneCodes are Discord's error codes for a webhook that was deleted (Unknown Webhook) or
// whose token was revoked (Invalid Webhook Token): no retry reaches it again.
var discordGoneCodes = []int{10015, 50027}

// discordGone reports whether a receiver's answer is Discord's for a webhook that is gone.
func discordGone(text string) bool {
	var answer struct {
		Code int `json:"code"`
	}
	return json.Unmarshal([]byte(text), &answer) == nil && slices.Contains(discordGoneCodes, answer.Code)
}

// slackPermanentErrors are Slack's answers that no retry changes: a payload it cannot read, and a
// webhook or workspace that is gone or may not post.
var slackPermanentErrors = []string{"invalid_payload", "invalid_token", "no_service", "no_active_hooks",
	"channel_not_found", "team_disabled", "action_prohibited", "posting_to_general_channel_denied"}

// slackPermanent reports whether a receiver's answer is one of slackPermanentErrors.
func slackPermanent(text string) bool {
	return slices.ContainsFunc(slackPermanentErrors, func(e string) bool { return strings.Contains(text, e) })
}

// pacer spaces the messages to each target by at least an interval.
type pacer struct {
	clock    clock.Clock
	interval time.Duration

	mu   sync.Mutex
	next map[int64]time.Time // when each target may get its next message
}

// newPacer returns a pacer on clock (the system clock when nil).
func newPacer(c clock.Clock, interval time.Duration) *pacer {
	if c == nil {
		c = clock.System{}
	}
	return &pacer{clock: c, interval: interval, next: map[int64]time.Time{}}
}

// wait returns once target id may get a message, having taken that turn, or when ctx ends; when
// the turn is more than longest away it takes none and returns an outbox.Later error for it.
func (p *pacer) wait(ctx context.Context, id int64, longest time.Duration) error {
	p.mu.Lock()
	now := p.clock.Now()
	turn := p.next[id]
	if turn.Before(now) {
		turn = now
	}
	if turn.Sub(now) > longest {
		p.mu.Unlock()
		return outbox.Later(fmt.Errorf("notification target %d is paced: its next turn is in %s", id, turn.Sub(now).Round(time.Second)), turn)
	}
	p.next[id] = turn.Add(p.interval)
	p.mu.Unlock()
	if !turn.After(now) {
		return nil
	}
	select {
	case <-p.clock.At(turn):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
