package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/notify"
	"github.com/miaobu/miaobu/internal/outbox"
	"github.com/miaobu/miaobu/internal/store"
)

// newNotifier returns the agent's Notifier, configured from smtp.* and notifications.*.
func (a *Agent) newNotifier() *notify.Notifier {
	c := a.cfg.SMTP
	return notify.New(notify.Options{Store: a.store, PublicURL: a.cfg.PublicURL, Log: a.log,
		AllowPrivateNetworks: a.cfg.Notifications.AllowPrivateNetworks,
		SMTP: notify.SMTP{Host: c.Host, Port: c.Port, Username: c.Username, Password: c.Password, From: c.From,
			ImplicitTLS: c.Port == 465},
		Views: func(p *store.Project, d *store.Deployment) (api.Project, api.Deployment) {
			return a.projectView(p), a.deploymentView(d, p)
		}})
}

// startOutbox runs the outbox worker, which sends notifications, until ctx ends; the returned
// channel is closed once it has stopped.
func (a *Agent) startOutbox(ctx context.Context) (stopped <-chan struct{}) {
	w := outbox.New(a.store, outbox.Options{Logger: a.log})
	w.Register(notify.Kind, a.notifier.Send)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	return done
}

// notificationView turns a stored target into its API form, its target masked and without its secret.
func notificationView(n *store.Notification) api.Notification {
	v := api.Notification{ID: n.ID, Type: n.Type, Target: notify.Mask(n.Target), Events: n.Events, CreatedAt: n.CreatedAt}
	if n.ProjectID != 0 {
		v.ProjectID = &n.ProjectID
	}
	if n.DisabledReason != "" {
		v.DisabledReason = &n.DisabledReason
	}
	return v
}

func (a *Agent) listNotifications(w http.ResponseWriter, r *http.Request) {
	targets, err := a.store.Notifications()
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	out := make([]api.Notification, 0, len(targets))
	for _, n := range targets {
		out = append(out, notificationView(n))
	}
	writeJSON(w, http.StatusOK, out)
}

// createNotification is `miaobu notify add`: the answer carries a webhook's secret, this once.
func (a *Agent) createNotification(w http.ResponseWriter, r *http.Request) {
	var req api.NotificationCreate
	if !decodeBody(w, r, &req) {
		return
	}
	var project int64
	if req.ProjectID != nil {
		project = *req.ProjectID
	}
	n, err := a.notifier.NewTarget(r.Context(), req.Type, req.Target, project, req.Events)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	err = a.store.CreateNotification(n)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Project %d not found", project))
		return
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	a.log.Info("notification target added", "notification", n.ID, "type", n.Type, "target", notify.Mask(n.Target))
	v := notificationView(n)
	v.Secret = n.Secret
	writeJSON(w, http.StatusCreated, v)
}

// lookupNotification reads the target the path names, answering the error itself when it cannot.
func (a *Agent) lookupNotification(w http.ResponseWriter, r *http.Request) (*store.Notification, bool) {
	ref := r.PathValue("id")
	id, err := strconv.ParseInt(ref, 10, 64)
	var n *store.Notification
	if err == nil {
		n, err = a.store.Notification(id)
	}
	switch {
	case errors.Is(err, strconv.ErrSyntax), errors.Is(err, strconv.ErrRange), errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("Notification %s not found", ref))
		return nil, false
	case err != nil:
		a.internalError(w, r, err)
		return nil, false
	}
	return n, true
}

func (a *Agent) deleteNotification(w http.ResponseWriter, r *http.Request) {
	n, ok := a.lookupNotification(w, r)
	if !ok {
		return
	}
	if err := a.store.DeleteNotification(n.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		a.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, notificationView(n))
}

// testNotification is `miaobu notify test`: a test message sent at once, about the newest
// deployment of the target's project (or of any project), and what the receiver answered.
func (a *Agent) testNotification(w http.ResponseWriter, r *http.Request) {
	n, ok := a.lookupNotification(w, r)
	if !ok {
		return
	}
	sample, err := a.sampleEvent(n.ProjectID)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	answer, err := a.notifier.Test(r.Context(), n, sample)
	if err != nil {
		writeError(w, http.StatusBadGateway, "No answer from the receiver: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, api.NotificationTest{StatusCode: answer.Code, Response: answer.Text})
}

// sampleEvent is what a test message tells of: the newest deployment of project (0: of any),
// nil when there is none.
func (a *Agent) sampleEvent(project int64) (*store.Event, error) {
	deployments, err := a.store.Deployments(project, 1)
	if err != nil || len(deployments) == 0 {
		return nil, err
	}
	d := deployments[0]
	p, err := a.store.Project(d.ProjectID)
	if err != nil {
		return nil, err
	}
	return &store.Event{Name: notify.EventTest, Project: *p, Deployment: *d, At: d.CreatedAt}, nil
}
