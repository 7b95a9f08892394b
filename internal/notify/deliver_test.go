package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/event"
	"github.com/miaobu/miaobu/internal/outbox"
	"github.com/miaobu/miaobu/internal/store"
)

// offsetClock is the real clock moved ahead by a fixed amount, to resume a schedule hours later.
type offsetClock struct{ ahead time.Duration }

func (c offsetClock) Now() time.Time                  { return time.Now().Add(c.ahead) }
func (c offsetClock) At(t time.Time) <-chan time.Time { return time.After(t.Sub(c.Now())) }

// runWorker runs an outbox worker on st that sends notifications through n, until the returned
// stop is called (or the test ends).
func runWorker(t *testing.T, st *store.Store, n *Notifier, opts outbox.Options) (stop func()) {
	t.Helper()
	opts.Logger = slog.New(slog.DiscardHandler)
	w := outbox.New(st, opts)
	w.Register(Kind, n.Send)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		w.Run(ctx)
		close(done)
	}()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

// pending returns the outbox's waiting messages, however far off they are due.
func pending(t *testing.T, st *store.Store) []outbox.Message {
	t.Helper()
	due, _, err := st.DueMessages(time.Now().Add(1000*time.Hour), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	return due
}

// enqueue puts the message of event for target into the outbox, as the store does for an event.
func enqueue(t *testing.T, st *store.Store, n *Notifier, target *store.Notification, event string) {
	t.Helper()
	if _, err := st.EnqueueMessage(n.Message(*target, sampleEvent(event))); err != nil {
		t.Fatal(err)
	}
}

// ids returns the webhook-id of each request.
func ids(reqs []request) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.header.Get("webhook-id"))
	}
	return out
}

func TestRetriesAfterA500KeepTheWebhookID(t *testing.T) {
	st := openStore(t, storeDir(t))
	r := newReceiver(t, func(n int) (int, http.Header, string) {
		if n < 2 {
			return http.StatusInternalServerError, nil, "database is down"
		}
		return http.StatusOK, nil, "ok"
	})
	n := newTestNotifier(st, Options{})
	target := addTarget(t, st, TypeWebhook, r.URL+"/hooks/miaobu")
	runWorker(t, st, n, outbox.Options{Schedule: []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}})
	enqueue(t, st, n, target, event.DeploySucceeded)
	eventually(t, "three attempts and an empty outbox", func() bool { return len(r.requests()) == 3 && len(pending(t, st)) == 0 })
	reqs := r.requests()
	got := ids(reqs)
	if got[0] == "" || got[1] != got[0] || got[2] != got[0] {
		t.Fatalf("webhook-ids %v, want one id on every attempt", got)
	}
	for i, req := range reqs {
		if err := verifyStandardWebhook(target.Secret, req.header, req.body, time.Now()); err != nil || req.body != reqs[0].body {
			t.Fatalf("attempt %d: %v (or its body differs from the first)", i, err)
		}
	}
}

// answerOnce sends a message to a target of typ through a worker that retries after an hour,
// with a receiver that answers code and answer, and returns once the attempt's outcome is
// recorded, with the messages then pending.
func answerOnce(t *testing.T, typ string, code int, answer string) (*store.Store, *receiver, *Notifier, *store.Notification, []outbox.Message) {
	t.Helper()
	st := openStore(t, storeDir(t))
	r := newReceiver(t, func(int) (int, http.Header, string) { return code, nil, answer })
	n := newTestNotifier(st, Options{})
	target := addTarget(t, st, typ, r.URL+"/services/T/B/X")
	runWorker(t, st, n, outbox.Options{Schedule: []time.Duration{time.Hour}})
	enqueue(t, st, n, target, event.DeployFailed)
	var p []outbox.Message
	eventually(t, "the first attempt's outcome", func() bool {
		p = pending(t, st)
		return len(r.requests()) == 1 && (len(p) == 0 || p[0].Attempts == 1)
	})
	return st, r, n, target, p
}

func TestReceiverGoneDisablesTheTarget(t *testing.T) {
	for _, tc := range []struct {
		name, typ, answer string
		code              int
	}{
		{"410", TypeWebhook, "gone", http.StatusGone},
		{"slack archived", TypeSlack, "channel_is_archived", http.StatusForbidden},
		{"discord webhook deleted", TypeDiscord, `{"message": "Unknown Webhook", "code": 10015}`, http.StatusNotFound},
		{"discord token revoked", TypeDiscord, `{"message": "Invalid Webhook Token", "code": 50027}`, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, r, n, target, p := answerOnce(t, tc.typ, tc.code, tc.answer)
			if len(p) != 0 {
				t.Fatalf("pending %+v, want the message dropped", p)
			}
			got, err := st.Notification(target.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(got.DisabledReason, tc.answer) {
				t.Fatalf("disabled_reason %q, want the receiver's answer %q", got.DisabledReason, tc.answer)
			}
			// A message already waiting for the disabled target is dropped without a request.
			err = n.Send(context.Background(), n.Message(*got, sampleEvent(event.DeployFailed)))
			if err == nil || len(r.requests()) != 1 {
				t.Fatalf("sending to a disabled target: %v after %d requests, want an error and still 1", err, len(r.requests()))
			}
		})
	}
}

func TestTooManyRequestsWaitsAsAsked(t *testing.T) {
	st := openStore(t, storeDir(t))
	r := newReceiver(t, func(int) (int, http.Header, string) {
		return http.StatusTooManyRequests, http.Header{"Retry-After": {"120"}}, "rate_limited"
	})
	n := newTestNotifier(st, Options{})
	target := addTarget(t, st, TypeSlack, r.URL+"/services/T/B/X")
	start := time.Now()
	runWorker(t, st, n, outbox.Options{Schedule: []time.Duration{time.Millisecond, time.Millisecond}})
	enqueue(t, st, n, target, event.DeployFailed)
	var m outbox.Message
	eventually(t, "one failed attempt", func() bool {
		p := pending(t, st)
		if len(p) == 1 {
			m = p[0]
		}
		return m.Attempts == 1
	})
	if m.NextAttemptAt.Before(start.Add(120 * time.Second)) {
		t.Fatalf("next attempt at %s, want no sooner than Retry-After's 120 s after %s", m.NextAttemptAt, start)
	}
}

func TestRestartResumesTheSchedule(t *testing.T) {
	dir := storeDir(t)
	st, err := store.Open(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r := newReceiver(t, func(n int) (int, http.Header, string) {
		if n == 0 {
			return http.StatusBadGateway, nil, "upstream down"
		}
		return http.StatusOK, nil, "ok"
	})
	schedule := outbox.Options{Schedule: []time.Duration{time.Hour, time.Hour}}
	n := newTestNotifier(st, Options{})
	target := addTarget(t, st, TypeWebhook, r.URL+"/hook")
	stop := runWorker(t, st, n, schedule)
	enqueue(t, st, n, target, event.DeployFailed)
	eventually(t, "a failed attempt waiting an hour", func() bool {
		p := pending(t, st)
		return len(p) == 1 && p[0].Attempts == 1
	})
	stop()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// The agent starts again two hours later: the retry is due, and goes out under the same id.
	st = openStore(t, dir)
	later := offsetClock{2 * time.Hour}
	schedule.Clock = later
	n = newTestNotifier(st, Options{Clock: later})
	runWorker(t, st, n, schedule)
	eventually(t, "the retry sent and the outbox empty", func() bool { return len(r.requests()) == 2 && len(pending(t, st)) == 0 })
	reqs := r.requests()
	if got := ids(reqs); got[0] != got[1] {
		t.Fatalf("webhook-ids %v across the restart, want the same", got)
	}
	if err := verifyStandardWebhook(target.Secret, reqs[1].header, reqs[1].body, later.Now()); err != nil {
		t.Fatalf("the retry after the restart: %v", err)
	}
}

// guardedNotifier returns a Notifier that may not reach internal addresses, resolving names with r.
func guardedNotifier(st Store, r fakeResolver) *Notifier {
	return New(Options{Store: st, Views: testViews, PublicURL: "http://127.0.0.1:8000", Resolver: r, MinInterval: time.Nanosecond})
}

func TestNewTargetRefusesInternalAddresses(t *testing.T) {
	r := fakeResolver{
		"evil.test":   {netip.MustParseAddr("127.0.0.1")},
		"mixed.test":  {netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("10.0.0.7")},
		"public.test": {netip.MustParseAddr("203.0.113.7")},
	}
	n := guardedNotifier(nil, r)
	for _, url := range []string{
		"http://127.0.0.1:8080/hook",
		"http://10.1.2.3/hook",
		"http://169.254.169.254/latest/meta-data",
		"http://evil.test/hook",
		"http://mixed.test/hook",
		"http://[::1]/hook",
		"http://[::ffff:192.168.1.1]/hook",
		"http://[64:ff9b::a00:1]/hook",
		"http://100.64.0.1/hook",
		"http://0.0.0.0/hook",
	} {
		_, err := n.NewTarget(context.Background(), TypeWebhook, url, 0, nil)
		if private := new(PrivateError); !errors.As(err, &private) {
			t.Errorf("NewTarget(%s): %v, want a refusal of an internal address", url, err)
		}
	}
	ok, err := n.NewTarget(context.Background(), TypeSlack, "https://public.test/services/T/B/X", 0, nil)
	if err != nil {
		t.Fatalf("a public target: %v", err)
	}
	if strings.Join(ok.Events, ",") != "deploy.failed,deploy.recovered,preview.ready" || ok.Secret != "" {
		t.Fatalf("a new Slack target %+v: want the default events and no secret", ok)
	}
	allowed := New(Options{Resolver: r, AllowPrivateNetworks: true})
	if _, err := allowed.NewTarget(context.Background(), TypeWebhook, "http://evil.test/hook", 0, nil); err != nil {
		t.Fatalf("with allow_private_networks: %v", err)
	}
}

func TestNewTargetChecksItsInput(t *testing.T) {
	n := guardedNotifier(nil, fakeResolver{"public.test": {netip.MustParseAddr("203.0.113.7")}})
	for _, tc := range []struct{ typ, target, events, want string }{
		{"pager", "https://public.test/x", "", "unknown notification type"},
		{TypeSlack, "ftp://public.test/x", "", "http(s) URL"},
		{TypeSlack, "https://user:token@public.test/x", "", "no user name"},
		{TypeWebhook, "https://public.test/x", "deploy.exploded", "unknown event"},
		{TypeWebhook, "https://nowhere.test/x", "", "no such host"},
		{TypeWebhook, "https://public.test:99999/x", "", "port must be from 1 to 65535"},
		{TypeWebhook, "https://public.test:0/x", "", "port must be from 1 to 65535"},
		{TypeSlack, "https://public.test/" + strings.Repeat("x", 2030), "", "at most 2048 characters"},
		{TypeEmail, "Ops <ops@example.com>", "", "not an email address"},
		{TypeEmail, "ops@example.com", "", "no mail server"},
	} {
		var events []string
		if tc.events != "" {
			events = strings.Split(tc.events, ",")
		}
		_, err := n.NewTarget(context.Background(), tc.typ, tc.target, 0, events)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewTarget(%s, %s, %v): %v, want an error saying %q", tc.typ, tc.target, events, err, tc.want)
		}
	}
	w, err := n.NewTarget(context.Background(), TypeWebhook, "https://public.test:8443/x", 3, []string{"deploy.started", "deploy.started"})
	if err != nil || !strings.HasPrefix(w.Secret, "whsec_") || len(w.Events) != 1 || w.ProjectID != 3 {
		t.Fatalf("a webhook target: %+v, %v; want a secret, one event and project 3", w, err)
	}
}

func TestDeliveryRefusesAnInternalAddressAfterRebinding(t *testing.T) {
	st := openStore(t, storeDir(t))
	r := newReceiver(t, nil)
	port := r.URL[strings.LastIndex(r.URL, ":"):]
	// The name was public when the target was added; now it answers with the loopback receiver.
	n := guardedNotifier(st, fakeResolver{"rebind.test": {netip.MustParseAddr("127.0.0.1")}})
	target := addTarget(t, st, TypeSlack, "http://rebind.test"+port+"/services/T/B/SECRET")
	err := n.Send(context.Background(), n.Message(*target, sampleEvent(event.DeployFailed)))
	if private := new(PrivateError); !errors.As(err, &private) || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("delivery to a name resolving to loopback: %v, want a refusal that names no secret", err)
	}
	// The dialer checks each address it connects to as well.
	if err := n.control("tcp4", "10.0.0.1:443", nil); err == nil {
		t.Fatal("the dial-time check lets 10.0.0.1 through")
	}
	if err := n.control("tcp4", "203.0.113.7:443", nil); err != nil {
		t.Fatalf("the dial-time check refuses a public address: %v", err)
	}
	// Through the worker the refusal is final: the message is not retried.
	runWorker(t, st, n, outbox.Options{Schedule: []time.Duration{time.Hour}})
	enqueue(t, st, n, target, event.DeployFailed)
	eventually(t, "the refused message dropped", func() bool { return len(pending(t, st)) == 0 })
	if len(r.requests()) != 0 {
		t.Fatalf("the loopback receiver got %d requests", len(r.requests()))
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	st := openStore(t, storeDir(t))
	inside := newReceiver(t, nil)
	outside := newReceiver(t, func(int) (int, http.Header, string) {
		return http.StatusFound, http.Header{"Location": {inside.URL + "/admin"}}, ""
	})
	n := newTestNotifier(st, Options{})
	target := addTarget(t, st, TypeDiscord, outside.URL+"/api/webhooks/1/token")
	if err := n.Send(context.Background(), n.Message(*target, sampleEvent(event.DeployFailed))); err == nil {
		t.Fatal("a redirect counted as delivered")
	}
	if len(inside.requests()) != 0 {
		t.Fatal("the redirect was followed")
	}
}

func TestErrorsNameNoSecret(t *testing.T) {
	st := openStore(t, storeDir(t))
	r := newReceiver(t, nil)
	url := r.URL + "/services/T000/B000/SECRETTOKEN"
	r.Close() // nothing answers there any more
	n := newTestNotifier(st, Options{})
	target := addTarget(t, st, TypeSlack, url)
	err := n.Send(context.Background(), n.Message(*target, sampleEvent(event.DeployFailed)))
	if err == nil || strings.Contains(err.Error(), "SECRETTOKEN") {
		t.Fatalf("a failed post: %v, want an error without the URL's token", err)
	}
	if _, err := n.Test(context.Background(), target, nil); err == nil || strings.Contains(err.Error(), "SECRETTOKEN") {
		t.Fatalf("a failed test: %v, want an error without the URL's token", err)
	}
}

func TestTestReportsWhatTheReceiverAnswered(t *testing.T) {
	st := openStore(t, storeDir(t))
	r := newReceiver(t, func(int) (int, http.Header, string) { return http.StatusNotFound, nil, "no_service\n" })
	n := newTestNotifier(st, Options{})
	for _, typ := range []string{TypeSlack, TypeDiscord, TypeWebhook} {
		target := addTarget(t, st, typ, r.URL+"/x/y")
		sample := sampleEvent(event.DeploySucceeded)
		answer, err := n.Test(context.Background(), target, &sample)
		if err != nil || answer.Code != http.StatusNotFound || answer.Text != "no_service" {
			t.Fatalf("%s test: %+v, %v; want 404 no_service", typ, answer, err)
		}
	}
	reqs := r.requests()
	if !strings.Contains(reqs[0].body, "Test notification from miaobu for Blog") {
		t.Fatalf("the Slack test message: %s", reqs[0].body)
	}
	if !strings.HasPrefix(reqs[2].body, `{"type":"notification.test",`) {
		t.Fatalf("the webhook test message: %s", reqs[2].body)
	}
	if got, err := st.Notification(1); err != nil || got.DisabledReason != "" {
		t.Fatalf("a test disabled the target: %+v, %v", got, err)
	}
}

func TestAFailingMessageDelaysNoLaterOne(t *testing.T) {
	st := openStore(t, storeDir(t))
	r := newReceiver(t, func(n int) (int, http.Header, string) {
		if n == 0 {
			return http.StatusInternalServerError, nil, "database is down"
		}
		return http.StatusOK, nil, "ok"
	})
	n := newTestNotifier(st, Options{})
	target := addTarget(t, st, TypeWebhook, r.URL+"/hook")
	enqueue(t, st, n, target, event.DeployStarted)
	enqueue(t, st, n, target, event.DeploySucceeded)
	// The first message waits an hour after failing; the second goes out meanwhile.
	runWorker(t, st, n, outbox.Options{Schedule: []time.Duration{time.Hour}, Concurrency: 1})
	eventually(t, "the later message sent", func() bool {
		reqs := r.requests()
		return len(reqs) == 2 && strings.Contains(reqs[1].body, `"type":"deploy.succeeded"`)
	})
	// The receiver has answered; the Worker deletes the sent message just after.
	eventually(t, "only the failed deploy.started pending, waiting for its retry", func() bool {
		p := pending(t, st)
		return len(p) == 1 && p[0].Attempts == 1 && strings.Contains(string(p[0].Payload), `"deploy.started"`)
	})
	if reqs := r.requests(); len(reqs) != 2 {
		t.Fatalf("%d requests, want the failed one and the later one only", len(reqs))
	}
}

func TestABacklogForOneTargetIsPacedNotFailed(t *testing.T) {
	st := openStore(t, storeDir(t))
	r := newReceiver(t, func(int) (int, http.Header, string) { return http.StatusOK, nil, "ok" })
	// Forty messages a target may get one of every 20 ms take 800 ms, far past the 200 ms an
	// attempt may last: waiting for the turn inside the attempt would fail most of them.
	n := newTestNotifier(st, Options{MinInterval: 20 * time.Millisecond})
	target := addTarget(t, st, TypeWebhook, r.URL+"/hook")
	const backlog = 40
	for range backlog {
		enqueue(t, st, n, target, event.DeployFailed)
	}
	runWorker(t, st, n, outbox.Options{Schedule: []time.Duration{time.Hour}, SendTimeout: 200 * time.Millisecond,
		Concurrency: Concurrency})
	eventually(t, "every message of the backlog sent", func() bool {
		return len(r.requests()) == backlog && len(pending(t, st)) == 0
	})
	// Paced, the last request starts at least 39 intervals after the first.
	reqs := r.requests()
	if span := reqs[len(reqs)-1].at.Sub(reqs[0].at); span < 700*time.Millisecond {
		t.Fatalf("the backlog went out in %s, want it paced over about 780 ms", span)
	}
}

func TestInternalSeesIPv4InsideIPv6(t *testing.T) {
	for _, tc := range []struct {
		addr     string
		internal bool
	}{
		{"::127.0.0.1", true},                          // IPv4-compatible
		{"::1", true},                                  // loopback, also IPv4-compatible 0.0.0.1
		{"::ffff:0:7f00:1", true},                      // SIIT
		{"::ffff:0:cb00:7107", false},                  // SIIT of a public address
		{"::ffff:10.0.0.1", true},                      // IPv4-mapped
		{"64:ff9b::a00:1", true},                       // well-known NAT64
		{"64:ff9b::cb00:7107", false},                  // well-known NAT64 of a public address
		{"64:ff9b:1::7f00:1", true},                    // local-use NAT64
		{"64:ff9b:1::cb00:7107", true},                 // local-use NAT64 goes through the operator's own translator
		{"2002:7f00:1::", true},                        // 6to4 of loopback
		{"2002:c0a8:101::", true},                      // 6to4 of 192.168.1.1
		{"2002:cb00:7107::1", false},                   // 6to4 of a public address
		{"fec0::1", true},                              // site-local
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", true}, // Teredo of client 127.0.0.1
		{"2001:0:cb00:7107::1", true},                  // Teredo reaches an IPv4 address through a relay
		{"2001:4860::8888", false},                     // a public address just after Teredo's range
		{"fc00::1", true},                              // unique local
		{"2606:4700::1111", false},
	} {
		if got := internal(netip.MustParseAddr(tc.addr)); got != tc.internal {
			t.Errorf("internal(%s) = %v, want %v", tc.addr, got, tc.internal)
		}
	}
}

func TestEveryNon2xxIsRetriedButSlacksPermanentErrors(t *testing.T) {
	for _, tc := range []struct {
		typ, answer string
		code        int
		retried     bool
	}{
		{TypeWebhook, "moved", http.StatusFound, true},
		{TypeWebhook, "bad request", http.StatusBadRequest, true},
		{TypeDiscord, "not found", http.StatusNotFound, true},
		{TypeWebhook, "unauthorized", http.StatusUnauthorized, true},
		{TypeWebhook, "down", http.StatusInternalServerError, true},
		{TypeSlack, "invalid_payload", http.StatusBadRequest, false},
		{TypeSlack, "invalid_token", http.StatusForbidden, false},
		{TypeSlack, "no_service", http.StatusNotFound, false},
	} {
		t.Run(fmt.Sprintf("%s %d %s", tc.typ, tc.code, tc.answer), func(t *testing.T) {
			_, _, _, _, p := answerOnce(t, tc.typ, tc.code, tc.answer)
			if retried := len(p) == 1; retried != tc.retried {
				t.Fatalf("waiting for a retry: %v, want %v (pending %+v)", retried, tc.retried, p)
			}
		})
	}
}
