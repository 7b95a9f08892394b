package notify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/miaobu/miaobu/internal/event"
)

// mailbox is an in-process SMTP server's backend: it keeps every message and login.
type mailbox struct {
	mu    sync.Mutex
	mails []received
	// tlsLogins records each successful login: whether it was made over TLS.
	tlsLogins []bool
}

// received is one message a mailbox accepted.
type received struct {
	from string
	to   []string
	data []byte
}

func (b *mailbox) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{box: b, conn: c}, nil
}

// session is one SMTP connection to a mailbox; it offers AUTH PLAIN for miaobu / s3cret.
type session struct {
	box  *mailbox
	conn *smtp.Conn
	from string
	to   []string
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "miaobu" || pass != "s3cret" {
			return errors.New("invalid credentials")
		}
		_, isTLS := s.conn.TLSConnectionState()
		s.box.mu.Lock()
		s.box.tlsLogins = append(s.box.tlsLogins, isTLS)
		s.box.mu.Unlock()
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error   { s.to = append(s.to, to); return nil }
func (s *session) Reset()                                      { s.from, s.to = "", nil }
func (s *session) Logout() error                               { return nil }

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.box.mu.Lock()
	defer s.box.mu.Unlock()
	s.box.mails = append(s.box.mails, received{s.from, s.to, data})
	return nil
}

// messages returns the mails accepted so far.
func (b *mailbox) messages() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.mails...)
}

// logins returns, for each successful login so far, whether it was made over TLS.
func (b *mailbox) logins() []bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]bool(nil), b.tlsLogins...)
}

// selfSigned returns a server configuration with a certificate for 127.0.0.1 and a client
// configuration that trusts it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, &tls.Config{RootCAs: pool}
}

// startSMTP runs an in-process SMTP server on loopback: STARTTLS offered when tlsConfig is set,
// TLS from the first byte when implicit too. It returns the SMTP settings that reach it.
func startSMTP(t *testing.T, tlsConfig *tls.Config, implicit bool) (*mailbox, SMTP) {
	t.Helper()
	box := &mailbox{}
	srv := smtp.NewServer(box)
	srv.Domain, srv.AllowInsecureAuth = "localhost", tlsConfig == nil
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if implicit {
		ln = tls.NewListener(ln, tlsConfig)
	} else {
		srv.TLSConfig = tlsConfig
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return box, SMTP{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, From: "miaobu@example.com", ImplicitTLS: implicit}
}

// mailParts reads a multipart/alternative message into its headers and its parts by media type.
func mailParts(t *testing.T, data []byte) (*mail.Message, map[string]string) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	media, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || media != "multipart/alternative" {
		t.Fatalf("Content-Type %q: want multipart/alternative", msg.Header.Get("Content-Type"))
	}
	parts := map[string]string{}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(p) // quoted-printable is decoded by the reader
		media, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		parts[media] = string(body)
	}
	return msg, parts
}

func TestEmailIsPlainTextAndEscapedHTML(t *testing.T) {
	box, cfg := startSMTP(t, nil, false)
	st := openStore(t, storeDir(t))
	n := newTestNotifier(st, Options{SMTP: cfg})
	target := addTarget(t, st, TypeEmail, "ops@example.com")
	m := n.Message(*target, sampleEvent(event.DeployFailed))
	if err := n.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	mails := box.messages()
	if len(mails) != 1 || mails[0].from != "miaobu@example.com" || strings.Join(mails[0].to, ",") != "ops@example.com" {
		t.Fatalf("mails %+v: want one from miaobu@example.com to ops@example.com", mails)
	}
	msg, parts := mailParts(t, mails[0].data)
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subject != "[miaobu] Deployment of Blog <&> *team* failed (#42)" {
		t.Fatalf("Subject %q (%v)", subject, err)
	}
	if id := msg.Header.Get("Message-ID"); !strings.HasPrefix(id, "<msg_") {
		t.Fatalf("Message-ID %q: want the message's webhook id, the same on every retry", id)
	}
	wantText := "Deployment of Blog <&> *team* failed (#42)\r\n\r\nProject: Blog <&> *team*\r\nCommit: 0123456 on main\r\n" +
		"Author: Ada <ada@example.com>\r\nDuration: 1m 5s\r\nLog: http://127.0.0.1:8000/deployments/42\r\n" +
		"Error: build: `npm run build` exited with status 1\r\n\r\nFix <b>bold</b> & _stars_ @everyone\r\n\r\nSecond paragraph\r\n"
	if parts["text/plain"] != wantText {
		t.Fatalf("text part\n%q\nwant\n%q", parts["text/plain"], wantText)
	}
	html := parts["text/html"]
	for _, want := range []string{"<h2>Deployment of Blog &lt;&amp;&gt; *team* failed (#42)</h2>",
		"<pre>Fix &lt;b&gt;bold&lt;/b&gt; &amp; _stars_ @everyone", "<td>Ada &lt;ada@example.com&gt;</td>",
		`<a href="http://127.0.0.1:8000/deployments/42">`} {
		if !strings.Contains(html, want) {
			t.Fatalf("HTML part lacks %q:\n%s", want, html)
		}
	}
	if strings.Contains(html, "<b>bold</b>") {
		t.Fatal("the commit message reached the HTML unescaped")
	}
}

func TestEmailOverTLSWithLogin(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	for _, implicit := range []bool{false, true} {
		box, cfg := startSMTP(t, serverTLS, implicit)
		cfg.Username, cfg.Password, cfg.TLS = "miaobu", "s3cret", clientTLS
		st := openStore(t, storeDir(t))
		n := newTestNotifier(st, Options{SMTP: cfg})
		target := addTarget(t, st, TypeEmail, "ops@example.com")
		answer, err := n.Test(context.Background(), target, nil)
		if err != nil {
			t.Fatalf("implicit TLS %v: %v", implicit, err)
		}
		if answer.Code != 250 || answer.Text == "" {
			t.Fatalf("implicit TLS %v: the server's answer %+v, want 250 and its text", implicit, answer)
		}
		if logins := box.logins(); len(box.messages()) != 1 || len(logins) != 1 || !logins[0] {
			t.Fatalf("implicit TLS %v: %d mails, logins %v: want one mail after one login over TLS", implicit, len(box.messages()), logins)
		}
	}
	// A wrong password is the server's permanent refusal, and the error does not quote the password.
	box, cfg := startSMTP(t, serverTLS, false)
	cfg.Username, cfg.Password, cfg.TLS = "miaobu", "wrong-pass", clientTLS
	st := openStore(t, storeDir(t))
	n := newTestNotifier(st, Options{SMTP: cfg})
	target := addTarget(t, st, TypeEmail, "ops@example.com")
	err := n.Send(context.Background(), n.Message(*target, sampleEvent(event.DeployFailed)))
	if err == nil || strings.Contains(err.Error(), "wrong-pass") || len(box.messages()) != 0 {
		t.Fatalf("a refused login: %v, %d mails", err, len(box.messages()))
	}
}

func TestEmailWithoutAMailServerIsRefused(t *testing.T) {
	st := openStore(t, storeDir(t))
	n := newTestNotifier(st, Options{})
	target := addTarget(t, st, TypeEmail, "ops@example.com")
	if err := n.Send(context.Background(), n.Message(*target, sampleEvent(event.DeployFailed))); !errors.Is(err, ErrNoSMTP) {
		t.Fatalf("sending without smtp.*: %v, want ErrNoSMTP", err)
	}
}
