package domain

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/config"
)

func TestErrorsOfNotifications(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	private := func() error {
		_, err := f.svc.CreateNotification(ctx, NewNotification{Type: "discord", Target: "http://169.254.169.254/api/webhooks/1/token"})
		return err
	}
	checkError(t, private(), Invalid, "cannot send to http://169.254.169.254/api/…: 169.254.169.254 resolves to 169.254.169.254, a loopback, "+
		"private, link-local or otherwise internal address: notifications are not sent there unless notifications.allow_private_networks is set")
	tests := []struct {
		name   string
		call   func() error
		kind   Kind
		detail string
	}{
		{"unknown type", func() error {
			_, err := f.svc.CreateNotification(ctx, NewNotification{Type: "pager", Target: "https://203.0.113.9/x"})
			return err
		}, Invalid, `unknown notification type "pager": use slack, discord, webhook, email`},
		{"email without a mail server", func() error {
			_, err := f.svc.CreateNotification(ctx, NewNotification{Type: "email", Target: "ops@example.com"})
			return err
		}, Invalid, "no mail server is configured: set smtp.host and smtp.from (MIAOBU_SMTP_HOST, MIAOBU_SMTP_FROM)"},
		{"a project that does not exist", func() error {
			_, err := f.svc.CreateNotification(ctx, NewNotification{Type: "slack", Target: "https://203.0.113.9/services/x", ProjectID: 99})
			return err
		}, NotFound, "Project 99 not found"},
		{"unknown target", func() error { _, err := f.svc.Notification("7"); return err }, NotFound, "Notification 7 not found"},
		{"target that is no number", func() error { _, err := f.svc.DeleteNotification("x"); return err }, NotFound, "Notification x not found"},
		{"test of an unknown target", func() error { _, err := f.svc.TestNotification(ctx, "7"); return err }, NotFound, "Notification 7 not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkError(t, tt.call(), tt.kind, tt.detail) })
	}
}

func TestNotificationTargetLifecycle(t *testing.T) {
	f := newFixture(t, func(cfg *config.Config) { cfg.Notifications.AllowPrivateNetworks = true })
	ctx := context.Background()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // nothing answers at its address any more
	n, err := f.svc.CreateNotification(ctx, NewNotification{Type: "webhook", Target: gone.URL + "/hook"})
	if err != nil || !strings.HasPrefix(n.Secret, "whsec_") || len(n.Events) == 0 {
		t.Fatalf("created %+v, %v: want a secret and the default events", n, err)
	}
	_, err = f.svc.TestNotification(ctx, "1")
	var e *Error
	if !errors.As(err, &e) || e.Kind != Upstream || !strings.HasPrefix(e.Detail, "No answer from the receiver: ") || strings.Contains(e.Detail, gone.URL) {
		t.Fatalf("testing a receiver that is gone: %v; want Upstream without the URL", err)
	}
	if all, err := f.svc.Notifications(); err != nil || len(all) != 1 || all[0].ID != n.ID {
		t.Fatalf("targets %v, %v", all, err)
	}
	if removed, err := f.svc.DeleteNotification("1"); err != nil || removed.ID != n.ID {
		t.Fatalf("deleting: %+v, %v", removed, err)
	}
	_, err = f.svc.DeleteNotification("1")
	checkError(t, err, NotFound, "Notification 1 not found")
}
