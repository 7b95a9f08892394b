package domain

import (
	"context"
	"errors"
	"fmt"

	"github.com/miaobu/miaobu/internal/notify"
	"github.com/miaobu/miaobu/internal/store"
)

// NewNotification is a notification target to add (`miaobu notify add`).
type NewNotification struct {
	// Type is slack, discord, webhook or email; Target is its URL or email address.
	Type, Target string
	// ProjectID limits the target to one project; 0: every project.
	ProjectID int64
	// Events are the events to tell; none: the default ones.
	Events []string
}

// Notifications returns every notification target, oldest first.
func (s *Service) Notifications() ([]*store.Notification, error) {
	return s.store.Notifications()
}

// Notification finds the notification target ref names (its numeric id).
func (s *Service) Notification(ref string) (*store.Notification, error) {
	return byID(ref, "Notification", s.store.Notification)
}

// CreateNotification checks and stores a notification target. A target that cannot be sent to, such
// as one on a private network unless notifications.allow_private_networks is set, is Invalid; a
// webhook gets a new signing secret, which the returned target carries for the one answer that may
// show it.
func (s *Service) CreateNotification(ctx context.Context, req NewNotification) (*store.Notification, error) {
	n, err := s.notifier.NewTarget(ctx, req.Type, req.Target, req.ProjectID, req.Events)
	if err != nil {
		return nil, &Error{Kind: Invalid, Detail: err.Error()}
	}
	if err := s.store.CreateNotification(n); err != nil {
		return nil, storeError(err, fmt.Sprintf("Project %d not found", req.ProjectID))
	}
	s.log.Info("notification target added", "notification", n.ID, "type", n.Type, "target", notify.Mask(n.Target))
	return n, nil
}

// DeleteNotification removes the notification target ref names and returns it; its messages still
// in the outbox are dropped when their turn comes.
func (s *Service) DeleteNotification(ref string) (*store.Notification, error) {
	n, err := s.Notification(ref)
	if err != nil {
		return nil, err
	}
	if err := s.store.DeleteNotification(n.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	s.log.Info("notification target removed", "notification", n.ID)
	return n, nil
}

// TestNotification sends the notification target ref names a test message at once, about the
// newest deployment of its project (or of any project), and returns what the receiver answered,
// whatever it was; no answer at all is Upstream.
func (s *Service) TestNotification(ctx context.Context, ref string) (*notify.Answer, error) {
	n, err := s.Notification(ref)
	if err != nil {
		return nil, err
	}
	sample, err := s.sampleEvent(n.ProjectID)
	if err != nil {
		return nil, err
	}
	answer, err := s.notifier.Test(ctx, n, sample)
	if err != nil {
		return nil, Errorf(Upstream, "No answer from the receiver: %v", err)
	}
	return answer, nil
}

// sampleEvent is what a test message tells of: the newest deployment of project (0: of any), nil
// when there is none.
func (s *Service) sampleEvent(project int64) (*store.Event, error) {
	deployments, err := s.store.Deployments(project, 1)
	if err != nil || len(deployments) == 0 {
		return nil, err
	}
	d := deployments[0]
	p, err := s.store.Project(d.ProjectID)
	if err != nil {
		return nil, err
	}
	return &store.Event{Name: notify.EventTest, Project: *p, Deployment: *d, At: d.CreatedAt}, nil
}
