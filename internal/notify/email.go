package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"net/textproto"
	"strconv"
	"time"

	"github.com/miaobu/miaobu/internal/outbox"
)

// ErrNoSMTP refuses an email when no mail server is configured.
var ErrNoSMTP = errors.New("no mail server is configured: set smtp.host and smtp.from (MIAOBU_SMTP_HOST, MIAOBU_SMTP_FROM)")

// Configured reports whether email can be sent: a host and a sender are set.
func (c SMTP) Configured() bool { return c.Host != "" && c.From != "" }

// tlsConfig returns the TLS configuration for the mail server.
func (c SMTP) tlsConfig() *tls.Config {
	cfg := &tls.Config{}
	if c.TLS != nil {
		cfg = c.TLS.Clone()
	}
	cfg.ServerName = c.Host
	return cfg
}

// sendEmail mails p to the address to through the configured server: implicit TLS or STARTTLS
// when offered, authenticated when a username is set (never in clear text but to a local server),
// and returns the server's reply to the message.
func (n *Notifier) sendEmail(ctx context.Context, to string, p payload) (*reply, error) {
	c := n.opts.SMTP
	if !c.Configured() {
		return nil, outbox.Permanent(ErrNoSMTP)
	}
	subject, text, html := emailParts(p)
	msg := emailMessage(c.From, to, subject, text, html, p.WebhookID, n.pacer.clock.Now())
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(c.Host, strconv.Itoa(c.Port)))
	if err != nil {
		return nil, fmt.Errorf("connecting to the mail server: %w", err)
	}
	defer conn.Close()
	// The smtp package knows no context: closing the connection ends whatever waits on it.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if c.ImplicitTLS {
		tc := tls.Client(conn, c.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("TLS with the mail server: %w", err)
		}
		conn = tc
	}
	client, err := smtp.NewClient(conn, c.Host)
	if err != nil {
		return nil, smtpError("greeting the mail server", err)
	}
	defer client.Close()
	if ok, _ := client.Extension("STARTTLS"); ok && !c.ImplicitTLS {
		if err := client.StartTLS(c.tlsConfig()); err != nil {
			return nil, smtpError("STARTTLS with the mail server", err)
		}
	}
	if c.Username != "" {
		if err := client.Auth(smtp.PlainAuth("", c.Username, c.Password, c.Host)); err != nil {
			return nil, smtpError("logging in to the mail server as "+c.Username, err)
		}
	}
	if err := client.Mail(c.From); err != nil {
		return nil, smtpError("MAIL FROM", err)
	}
	if err := client.Rcpt(to); err != nil {
		return nil, smtpError("RCPT TO", err)
	}
	code, answer, err := data(client, msg)
	if err != nil {
		return nil, smtpError("sending the message", err)
	}
	_ = client.Quit()
	return &reply{Answer: Answer{Code: code, Text: excerpt(answer)}}, nil
}

// data sends msg with the DATA command and returns the server's reply to it, which smtp.Client's
// own Data keeps to itself.
func data(c *smtp.Client, msg []byte) (int, string, error) {
	id, err := c.Text.Cmd("DATA")
	if err != nil {
		return 0, "", err
	}
	c.Text.StartResponse(id)
	_, _, err = c.Text.ReadResponse(354)
	c.Text.EndResponse(id)
	if err != nil {
		return 0, "", err
	}
	w := c.Text.DotWriter()
	if _, err := w.Write(msg); err != nil {
		return 0, "", err
	}
	if err := w.Close(); err != nil {
		return 0, "", err
	}
	return c.Text.ReadResponse(250)
}

// smtpError says what step failed; a permanent refusal (a 5xx reply) is not retried.
func smtpError(step string, err error) error {
	err = fmt.Errorf("%s: %w", step, err)
	var reply *textproto.Error
	if errors.As(err, &reply) && reply.Code >= 500 {
		return outbox.Permanent(err)
	}
	return err
}

// emailMessage returns an RFC 5322 message with a plain-text and an HTML alternative.
func emailMessage(from, to, subject, text, html, id string, now time.Time) []byte {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	header := [][2]string{
		{"From", from},
		{"To", to},
		{"Subject", mime.QEncoding.Encode("utf-8", subject)},
		{"Date", now.Format(time.RFC1123Z)},
		{"Message-ID", "<" + id + "@miaobu>"},
		{"MIME-Version", "1.0"},
		{"Content-Type", "multipart/alternative; boundary=" + mw.Boundary()},
	}
	for _, h := range header {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n")
	for _, part := range [][2]string{{"text/plain", text}, {"text/html", html}} {
		w, _ := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part[0] + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		}) // writing to a bytes.Buffer never fails
		qp := quotedprintable.NewWriter(w)
		_, _ = qp.Write([]byte(part[1]))
		_ = qp.Close()
	}
	_ = mw.Close()
	return b.Bytes()
}
