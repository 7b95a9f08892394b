package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/event"
	"github.com/miaobu/miaobu/internal/store"
)

// eventAt is when the test events happen.
var eventAt = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fakeResolver answers host names from its map, and nothing else: no test reaches a real DNS.
type fakeResolver map[string][]netip.Addr

func (r fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if addrs, ok := r[host]; ok {
		return addrs, nil
	}
	return nil, fmt.Errorf("lookup %s: no such host", host)
}

// testViews is the agent's views in small: the API objects a message carries.
func testViews(p *store.Project, d *store.Deployment) (api.Project, api.Deployment) {
	return api.Project{ID: p.ID, Name: p.Name, Slug: p.Slug, SiteURL: "http://" + p.Slug + ".localhost:8000/", CreatedAt: p.CreatedAt},
		api.Deployment{ID: d.ID, ProjectID: d.ProjectID, CommitSHA: d.CommitSHA, CommitMessage: d.CommitMessage,
			CommitAuthor: d.CommitAuthor, Branch: d.Branch, Trigger: string(d.Trigger), Status: string(d.Status), ErrorMessage: d.ErrorMessage,
			CreatedAt: d.CreatedAt, BuildTimeSeconds: d.BuildTimeSeconds,
			URL: fmt.Sprintf("http://%s--%d.localhost:8000/", p.Slug, d.ID)}
}

// sampleEvent is event name of deployment 42 of a project whose name and commit carry every
// character some format must escape.
func sampleEvent(name string) store.Event {
	secs := 65.4
	status, message := store.StatusDeployed, ""
	if name == event.DeployFailed {
		status, message = store.StatusFailed, "build: `npm run build` exited with status 1\nmore output"
	}
	return store.Event{Name: name, At: eventAt,
		Project: store.Project{ID: 7, Name: "Blog <&> *team*", Slug: "blog", CreatedAt: eventAt.Add(-time.Hour)},
		Deployment: store.Deployment{ID: 42, ProjectID: 7, CommitSHA: "0123456789abcdef0123456789abcdef01234567",
			CommitMessage: "Fix <b>bold</b> & _stars_ @everyone\n\nSecond paragraph", CommitAuthor: "Ada <ada@example.com>",
			Branch: "main", Trigger: api.TriggerWebhook, Status: status, ErrorMessage: message, CreatedAt: eventAt.Add(-time.Minute),
			BuildTimeSeconds: &secs}}
}

// request is what a receiver was sent.
type request struct {
	header http.Header
	body   string
	at     time.Time
}

// receiver is an HTTP receiver on loopback that records requests and answers as its test says.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []request
	// answer gives the status, headers and body of the n-th request (from 0); nil answers 200 "ok".
	answer func(n int) (int, http.Header, string)
}

func newReceiver(t *testing.T, answer func(n int) (int, http.Header, string)) *receiver {
	t.Helper()
	r := &receiver{answer: answer}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		n := len(r.reqs)
		r.reqs = append(r.reqs, request{req.Header.Clone(), string(body), time.Now()})
		r.mu.Unlock()
		code, header, text := http.StatusOK, http.Header{}, "ok"
		if r.answer != nil {
			code, header, text = r.answer(n)
		}
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, text)
	}))
	t.Cleanup(r.Close)
	return r
}

// requests returns what the receiver was sent so far.
func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

// openStore opens a real store in dir, closed when the test ends.
func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newTestNotifier returns a Notifier on st that may reach loopback receivers, as every test with
// an httptest receiver needs, and paces nothing.
func newTestNotifier(st Store, opts Options) *Notifier {
	opts.Store, opts.Views, opts.PublicURL = st, testViews, "http://127.0.0.1:8000"
	opts.AllowPrivateNetworks = true
	if opts.MinInterval == 0 {
		opts.MinInterval = time.Nanosecond
	}
	return New(opts)
}

// addTarget stores a target of typ at url subscribed to every event, bypassing NewTarget's checks.
func addTarget(t *testing.T, st *store.Store, typ, url string) *store.Notification {
	t.Helper()
	n := &store.Notification{Type: typ, Target: url, Events: event.All}
	if typ == TypeWebhook {
		n.Secret = NewSecret()
	}
	if err := st.CreateNotification(n); err != nil {
		t.Fatal(err)
	}
	return n
}

// eventually polls cond until it holds, failing the test after ten seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// verifyStandardWebhook checks a request the way a Standard Webhooks receiver does, written from
// the specification and not from sign: the secret's base64 after "whsec_" is the key, the signed
// content is "<id>.<timestamp>.<body>", any space-separated "v1,<base64>" may match, and the
// timestamp must be within five minutes of now.
func verifyStandardWebhook(secret string, header http.Header, body string, now time.Time) error {
	id, ts, sigs := header.Get("webhook-id"), header.Get("webhook-timestamp"), header.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q is not Unix seconds", ts)
	}
	if d := now.Sub(time.Unix(secs, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("webhook-timestamp is %s away from now", d)
	}
	key, err := base64.StdEncoding.DecodeString(secret[len("whsec_"):])
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(sigs) {
		version, encoded, _ := strings.Cut(sig, ",")
		got, err := base64.StdEncoding.DecodeString(encoded)
		if version == "v1" && err == nil && subtle.ConstantTimeCompare(got, want) == 1 {
			return nil
		}
	}
	return errors.New("no signature matches")
}

func TestSignMatchesThePublishedTestVector(t *testing.T) {
	// The Standard Webhooks specification's own example.
	const secret, id, ts, body = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, `{"test": 2432232314}`
	got, err := sign(secret, id, ts, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
	header := http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {strconv.Itoa(ts)}, "Webhook-Signature": {"v1,bm9wZQ== " + got}}
	if err := verifyStandardWebhook(secret, header, body, time.Unix(ts, 0)); err != nil {
		t.Fatalf("the test's verifier refuses the published vector: %v", err)
	}
	if err := verifyStandardWebhook(secret, header, body+" ", time.Unix(ts, 0)); err == nil {
		t.Fatal("the test's verifier accepts a changed body")
	}
}

func TestNewSecretIsWhsecAndThirtyTwoBytes(t *testing.T) {
	a, b := NewSecret(), NewSecret()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, "whsec_"))
	if !strings.HasPrefix(a, "whsec_") || err != nil || len(key) != 32 || a == b {
		t.Fatalf("secrets %q and %q: want whsec_ and the base64 of 32 random bytes, each new", a, b)
	}
}

// sendOnce sends the message of event to a fresh target of typ at r through Send, and returns
// the one request r got.
func sendOnce(t *testing.T, typ string, r *receiver, event string) (request, *store.Notification) {
	t.Helper()
	st := openStore(t, t.TempDir())
	n := newTestNotifier(st, Options{})
	target := addTarget(t, st, typ, r.URL+"/services/T000/B000/XXXX")
	if err := n.Send(context.Background(), n.Message(*target, sampleEvent(event))); err != nil {
		t.Fatal(err)
	}
	reqs := r.requests()
	if len(reqs) != 1 {
		t.Fatalf("the receiver got %d requests, want 1", len(reqs))
	}
	if ct := reqs[0].header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	return reqs[0], target
}

func TestSlackBodyIsExactAndEscaped(t *testing.T) {
	req, _ := sendOnce(t, TypeSlack, newReceiver(t, nil), event.DeployFailed)
	want := `{"text":"Deployment of Blog &lt;&amp;&gt; *team* failed (#42): Fix &lt;b&gt;bold&lt;/b&gt; &amp; _stars_ @everyone: build: ` + "`npm run build`" + ` exited with status 1",` +
		`"blocks":[{"type":"section","text":{"type":"mrkdwn","text":"*Deployment of Blog &lt;&amp;&gt; *team* failed (#42)*\nFix &lt;b&gt;bold&lt;/b&gt; &amp; _stars_ @everyone\nbuild: ` + "`npm run build`" + ` exited with status 1"}},` +
		`{"type":"section","fields":[{"type":"mrkdwn","text":"*Project*\nBlog &lt;&amp;&gt; *team*"},{"type":"mrkdwn","text":"*Commit*\n` + "`0123456 on main`" + `"},` +
		`{"type":"mrkdwn","text":"*Author*\nAda &lt;ada@example.com&gt;"},{"type":"mrkdwn","text":"*Duration*\n1m 5s"}]},` +
		`{"type":"actions","elements":[{"type":"button","text":{"type":"plain_text","text":"View log"},"url":"http://127.0.0.1:8000/deployments/42"}]}]}`
	if req.body != want {
		t.Fatalf("Slack body\n got %s\nwant %s", req.body, want)
	}
}

func TestDiscordBodyIsExactEscapedAndMentionsNobody(t *testing.T) {
	req, _ := sendOnce(t, TypeDiscord, newReceiver(t, func(int) (int, http.Header, string) { return http.StatusNoContent, nil, "" }),
		event.DeploySucceeded)
	want := `{"content":"Deployed Blog \\<&\\> \\*team\\* \\(\\#42\\)","embeds":[{"title":"Deployed Blog \\<&\\> \\*team\\* \\(\\#42\\)",` +
		`"description":"Fix \\<b\\>bold\\</b\\> & \\_stars\\_ \\@everyone","url":"http://127.0.0.1:8000/deployments/42","color":3056719,` +
		`"fields":[{"name":"Project","value":"Blog \\<&\\> \\*team\\*","inline":true},{"name":"Commit","value":"0123456 on main","inline":true},` +
		`{"name":"Author","value":"Ada \\<ada\\@example.com\\>","inline":true},{"name":"Duration","value":"1m 5s","inline":true},` +
		`{"name":"Site","value":"http://blog.localhost:8000/","inline":false}],"timestamp":"2025-06-01T12:00:00Z"}],"allowed_mentions":{"parse":[]}}`
	if req.body != want {
		t.Fatalf("Discord body\n got %s\nwant %s", req.body, want)
	}
}

func TestWebhookIsStandardWebhooksSigned(t *testing.T) {
	req, target := sendOnce(t, TypeWebhook, newReceiver(t, nil), event.DeployFailed)
	want := `{"type":"deploy.failed","timestamp":"2025-06-01T12:00:00Z","data":{` +
		`"project":{"id":7,"name":"Blog <&> *team*","slug":"blog","repo":null,"repo_url":"","default_branch":"","framework":"",` +
		`"install_command":"","build_command":"","output_directory":"","root_directory":"","target":"","webhook_id":null,` +
		`"webhook_configured":false,"webhook_url":"","active_deployment_id":null,"site_url":"http://blog.localhost:8000/",` +
		`"created_at":"2025-06-01T11:00:00Z","webhook_events_missing":null,"github_reports":{"statuses":false,"deployments":false},` +
		`"cache_bytes":0,"detected_framework":null,"detected_install_command":null,"detected_build_command":null,"detected_output_directory":null,` +
		`"preview_branches":null,"pr_previews":false,"fork_previews":"","watch_paths":null,"trigger":"",` +
		`"last_poll_at":null,"last_poll_error":null,"next_poll_at":null},` +
		`"deployment":{"id":42,"project_id":7,"commit_sha":"0123456789abcdef0123456789abcdef01234567",` +
		`"commit_message":"Fix <b>bold</b> & _stars_ @everyone\n\nSecond paragraph","commit_author":"Ada <ada@example.com>",` +
		`"branch":"main","trigger":"webhook","status":"failed","error_message":"build: ` + "`npm run build`" + ` exited with status 1\nmore output",` +
		`"created_at":"2025-06-01T11:59:00Z","started_at":null,"finished_at":null,"build_time_seconds":65.4,` +
		`"url":"http://blog--42.localhost:8000/","live":false,"detected_framework":null,"detected_install_command":null,` +
		`"detected_build_command":null,"detected_output_directory":null,"environment":"","alias":"","pull_request":null,"node":null}}}`
	if req.body != want {
		t.Fatalf("webhook body\n got %s\nwant %s", req.body, want)
	}
	if id := req.header.Get("webhook-id"); !strings.HasPrefix(id, "msg_") {
		t.Fatalf("webhook-id %q", id)
	}
	if err := verifyStandardWebhook(target.Secret, req.header, req.body, time.Now()); err != nil {
		t.Fatalf("an independent Standard Webhooks verifier refuses the request: %v", err)
	}
	if err := verifyStandardWebhook(NewSecret(), req.header, req.body, time.Now()); err == nil {
		t.Fatal("the signature verifies with another secret too")
	}
}

func TestMask(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://hooks.slack.com/services/T000/B000/XXXX", "https://hooks.slack.com/services/…"},
		{"https://discord.com/api/webhooks/123/token?wait=true", "https://discord.com/api/…"},
		{"https://example.com/hook?token=secret", "https://example.com/hook?…"},
		{"https://user:pass@example.com/hook", "https://example.com/hook"},
		{"https://example.com", "https://example.com/"},
		{"https://example.com/a/", "https://example.com/a/"},
		{"ops@example.com", "ops@example.com"},
		{"not a url/with/secret", "…"},
	} {
		if got := Mask(tc.in); got != tc.want {
			t.Errorf("Mask(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := eventAt
	for _, tc := range []struct {
		header, body string
		want         time.Duration
	}{
		{"120", "", 2 * time.Minute},
		{now.Add(90 * time.Second).Format(http.TimeFormat), "", 90 * time.Second},
		{"", `{"message":"You are being rate limited.","retry_after":1.5,"global":false}`, 1500 * time.Millisecond},
		{"999999", "", maxRetryAfter},
		{"-5", "", 0},
		{"", "slow down", 0},
	} {
		if got := retryAfter(tc.header, []byte(tc.body), now); got != tc.want {
			t.Errorf("retryAfter(%q, %q) = %s, want %s", tc.header, tc.body, got, tc.want)
		}
	}
}

// stepClock is a Clock whose At records the time asked for and fires at once, moving Now there.
type stepClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) At(t time.Time) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, t)
	c.now = t
	ch := make(chan time.Time, 1)
	ch <- t
	return ch
}

func TestPacerSpacesEachTargetsMessages(t *testing.T) {
	clock := &stepClock{now: eventAt}
	p := newPacer(clock, time.Second)
	for _, id := range []int64{1, 2, 1, 1} {
		if err := p.wait(context.Background(), id, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	// Target 1's second message waits a second after its first; its third a second after that;
	// target 2 never waits.
	want := []time.Time{eventAt.Add(time.Second), eventAt.Add(2 * time.Second)}
	if fmt.Sprint(clock.waits) != fmt.Sprint(want) {
		t.Fatalf("waits %v, want %v", clock.waits, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	blocked := newPacer(&blockingClock{now: eventAt}, time.Hour)
	_ = blocked.wait(ctx, 1, 2*time.Hour)
	if err := blocked.wait(ctx, 1, 2*time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("a wait whose context ends: %v, want context.Canceled", err)
	}
}

func TestPacerPutsOffATurnTooFarAway(t *testing.T) {
	clock := &stepClock{now: eventAt}
	p := newPacer(clock, time.Second)
	for range 3 { // turns now, in 1 s and in 2 s are within the 2 s it may wait
		if err := p.wait(context.Background(), 1, 2*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	now := clock.Now()
	err := p.wait(context.Background(), 1, time.Second) // the next turn is a second from now
	if err != nil {
		t.Fatalf("a turn a second away: %v, want it taken", err)
	}
	err = p.wait(context.Background(), 1, 500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "paced") {
		t.Fatalf("a turn too far away: %v, want it put off", err)
	}
	if clock.Now() != now.Add(time.Second) {
		t.Fatalf("the clock moved to %v: a turn put off must not be waited for", clock.Now())
	}
	// The turn put off was not taken: the next message may have it.
	if err := p.wait(context.Background(), 1, time.Second); err != nil {
		t.Fatalf("the turn after one put off: %v, want it free", err)
	}
}

// blockingClock is a Clock whose time never comes.
type blockingClock struct{ now time.Time }

func (c *blockingClock) Now() time.Time                { return c.now }
func (c *blockingClock) At(time.Time) <-chan time.Time { return nil }

// storeDir returns a fresh data directory for a store.
func storeDir(t *testing.T) string { return filepath.Join(t.TempDir(), "data") }

func TestChatMessagesKeepWithinTheReceiversLimits(t *testing.T) {
	e := sampleEvent(event.DeployFailed)
	e.Project.Name = strings.Repeat("<p>", 1000)
	e.Deployment.Branch = strings.Repeat("b", 1205)
	p := newTestNotifier(nil, Options{}).eventPayload(1, e)
	within := func(what, s string, limit int) {
		t.Helper()
		if n := utf8.RuneCountInString(s); n > limit || n == 0 {
			t.Errorf("%s has %d characters, want 1 to %d", what, n, limit)
		}
	}

	raw, err := slackBody(p)
	if err != nil {
		t.Fatal(err)
	}
	var slack struct {
		Text   string       `json:"text"`
		Blocks []slackBlock `json:"blocks"`
	}
	if err := json.Unmarshal(raw, &slack); err != nil {
		t.Fatal(err)
	}
	within("Slack's text", slack.Text, 3000)
	within("Slack's lead section", slack.Blocks[0].Text.Text, 3000)
	for _, f := range slack.Blocks[1].Fields {
		within("a Slack field", f.Text, 2000)
	}

	raw, err = discordBody(p)
	if err != nil {
		t.Fatal(err)
	}
	var discord struct {
		Content string         `json:"content"`
		Embeds  []discordEmbed `json:"embeds"`
	}
	if err := json.Unmarshal(raw, &discord); err != nil {
		t.Fatal(err)
	}
	within("Discord's content", discord.Content, 2000)
	within("Discord's embed title", discord.Embeds[0].Title, 256)
	within("Discord's embed description", discord.Embeds[0].Description, 4096)
	for _, f := range discord.Embeds[0].Fields {
		within("the Discord field "+f.Name, f.Value, 1024)
	}
	if !strings.HasSuffix(discord.Embeds[0].Fields[1].Value, "…") {
		t.Errorf("the cut commit field %q does not end in …", discord.Embeds[0].Fields[1].Value)
	}
}

func TestUnknownCommitDetailsAreLeftOut(t *testing.T) {
	// A manual deployment learns its commit's message and author only once it is cloned, after
	// deploy.started.
	e := sampleEvent(event.DeployStarted)
	e.Deployment.CommitMessage, e.Deployment.CommitAuthor = "", ""
	p := newTestNotifier(nil, Options{}).eventPayload(1, e)
	slack, err := slackBody(p)
	if err != nil {
		t.Fatal(err)
	}
	discord, err := discordBody(p)
	if err != nil {
		t.Fatal(err)
	}
	_, text, _ := emailParts(p)
	for name, body := range map[string]string{"Slack": string(slack), "Discord": string(discord), "email": text} {
		if strings.Contains(body, "Author") || strings.Contains(body, `(#42)*\n`) || strings.Contains(body, `"description"`) {
			t.Errorf("the %s message shows empty commit details: %s", name, body)
		}
	}
}
