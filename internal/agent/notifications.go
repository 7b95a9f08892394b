package agent

import (
	"net/http"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/domain"
	"github.com/miaobu/miaobu/internal/notify"
	"github.com/miaobu/miaobu/internal/store"
)

// newNotifier returns the agent's Notifier, configured from smtp.* and notifications.*, whose sender
// is registered on the outbox, and makes the store enqueue its messages with every deployment
// event. The views use the domain, read when a message is made.
func (a *Agent) newNotifier() *notify.Notifier {
	c := a.cfg.SMTP
	n := notify.New(notify.Options{Store: a.store, PublicURL: a.cfg.PublicURL, Log: a.log,
		AllowPrivateNetworks: a.cfg.Notifications.AllowPrivateNetworks,
		SMTP: notify.SMTP{Host: c.Host, Port: c.Port, Username: c.Username, Password: c.Password, From: c.From,
			ImplicitTLS: c.Port == 465},
		Views: func(p *store.Project, d *store.Deployment) (api.Project, api.Deployment) {
			return a.projectView(p), a.deploymentView(d, p)
		}})
	a.store.OnNotify(n.Message)
	a.outbox.Register(notify.Kind, n.Send)
	return n
}

func (a *Agent) listNotifications(w http.ResponseWriter, r *http.Request) error {
	targets, err := a.domain.Notifications()
	if err != nil {
		return err
	}
	out := make([]api.Notification, 0, len(targets))
	for _, n := range targets {
		out = append(out, notificationView(n))
	}
	return writeJSON(w, http.StatusOK, out)
}

// createNotification is `miaobu notify add`: the answer carries a webhook's secret, this once.
func (a *Agent) createNotification(w http.ResponseWriter, r *http.Request) error {
	var req api.NotificationCreate
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	create := domain.NewNotification{Type: req.Type, Target: req.Target, Events: req.Events}
	if req.ProjectID != nil {
		create.ProjectID = *req.ProjectID
	}
	n, err := a.domain.CreateNotification(r.Context(), create)
	if err != nil {
		return err
	}
	v := notificationView(n)
	v.Secret = n.Secret
	return writeJSON(w, http.StatusCreated, v)
}

func (a *Agent) deleteNotification(w http.ResponseWriter, r *http.Request) error {
	n, err := a.domain.DeleteNotification(r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, notificationView(n))
}

// testNotification is `miaobu notify test`: what the receiver answered to a test message.
func (a *Agent) testNotification(w http.ResponseWriter, r *http.Request) error {
	answer, err := a.domain.TestNotification(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, api.NotificationTest{StatusCode: answer.Code, Response: answer.Text})
}
