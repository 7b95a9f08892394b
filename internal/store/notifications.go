package store

import (
	"errors"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/miaobu/miaobu/internal/event"
	"github.com/miaobu/miaobu/internal/outbox"
)

// Notification is an outgoing notification target: where events are told, and which.
type Notification struct {
	ID int64 `json:"id"`
	// Type is slack, discord, webhook or email.
	Type string `json:"type"`
	// Target is the URL to post to, or the email address; a chat URL is a secret.
	Target string `json:"target"`
	// Secret is the webhook type's signing secret ("whsec_" and base64).
	Secret string `json:"secret,omitempty"`
	// ProjectID limits the target to one project; 0 means every project.
	ProjectID int64    `json:"project_id,omitempty"`
	Events    []string `json:"events"`
	// DisabledReason says why deliveries to the target stopped (the receiver is gone); empty while enabled.
	DisabledReason string    `json:"disabled_reason,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

// Event is something that happened to a deployment, with copies of the deployment and its project
// as they are once it has happened.
type Event struct {
	Name       string
	Project    Project
	Deployment Deployment
	At         time.Time
}

// Notifier makes the outbox message that tells target n of e. The store calls it inside the
// transaction of the change, for every enabled target subscribed to e, so the message is durable
// exactly when the change is: it must be quick and must not use the store.
type Notifier func(n Notification, e Event) outbox.Message

// OnNotify makes the store enqueue what fn makes of every event from now on.
func (s *Store) OnNotify(fn Notifier) { s.notifier.Store(&fn) }

// notify enqueues inside tx a message about e for every enabled target that subscribes to it and
// covers its project.
func (s *Store) notify(tx *bolt.Tx, e Event) error {
	fn := s.notifier.Load()
	if fn == nil {
		return nil
	}
	var targets []Notification
	err := iterate(bucket(tx, notificationsBucket), nil, func(_ []byte, n Notification) (bool, error) {
		if n.Wants(e) {
			targets = append(targets, n)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, n := range targets {
		m := (*fn)(n, e)
		if err := s.enqueue(tx, &m, e.At); err != nil {
			return err
		}
	}
	return nil
}

// notifyDeployment enqueues inside tx the notifications of the new status of d, of project p:
// started when a build claims it; succeeded, and recovered when the previous production deployment
// had failed, or preview ready for a preview's, or failed when it ends. A cancelled deployment, and
// any other status, tells nothing.
func (s *Store) notifyDeployment(tx *bolt.Tx, p *Project, d *Deployment, now time.Time) error {
	if s.notifier.Load() == nil {
		return nil
	}
	names, err := EventsOf(d, func() (bool, error) { return previousFailed(tx, d) })
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := s.notify(tx, Event{Name: name, Project: *p, Deployment: *d, At: now}); err != nil {
			return err
		}
	}
	return nil
}

// EventsOf returns the events that the new status of d tells: started when a build claims it;
// succeeded, and recovered when previousFailed says the previous production deployment had
// failed, or preview ready for a preview's; failed when it fails. A cancelled deployment, and any
// other status, tells nothing.
func EventsOf(d *Deployment, previousFailed func() (bool, error)) ([]string, error) {
	switch d.Status {
	case StatusCloning:
		return []string{event.DeployStarted}, nil
	case StatusFailed:
		return []string{event.DeployFailed}, nil
	case StatusDeployed:
		if d.Alias != "" {
			return []string{event.PreviewReady}, nil
		}
		failed, err := previousFailed()
		if err != nil || !failed {
			return []string{event.DeploySucceeded}, err
		}
		return []string{event.DeploySucceeded, event.DeployRecovered}, nil
	}
	return nil, nil
}

// previousFailed reports whether the newest deployment of d's project and alias before d that
// succeeded or failed (cancelled ones say nothing of the site) failed.
func previousFailed(tx *bolt.Tx, d *Deployment) (bool, error) {
	failed := false
	deployments := bucket(tx, deploymentsBucket)
	err := iterateBackward(bucket(tx, projectDeploymentsBucket), itob(d.ProjectID), func(k []byte, _ struct{}) (bool, error) {
		if btoi(k[8:]) >= d.ID {
			return true, nil
		}
		var prev Deployment
		if err := get(deployments, k[8:], &prev); err != nil {
			return false, err
		}
		var settled bool
		failed, settled = d.Settled(&prev)
		return !settled, nil
	})
	return failed, err
}

// Settled says what an earlier deployment prev tells of the site before d, walking back from d:
// settled when prev, of d's alias, succeeded or failed, and then whether it failed.
func (d *Deployment) Settled(prev *Deployment) (failed, settled bool) {
	if prev.Alias != d.Alias {
		return false, false
	}
	switch prev.Status {
	case StatusFailed:
		return true, true
	case StatusDeployed:
		return false, true
	}
	return false, false
}

// Wants reports whether target n is told of e: it is enabled, covers e's project and subscribes to it.
func (n *Notification) Wants(e Event) bool {
	return n.DisabledReason == "" && (n.ProjectID == 0 || n.ProjectID == e.Project.ID) && slices.Contains(n.Events, e.Name)
}

// CreateNotification stores n as a new target, setting its id and creation time; a target of a
// project that does not exist is refused with ErrNotFound.
func (s *Store) CreateNotification(n *Notification) error {
	if n.Type == "" || n.Target == "" || len(n.Events) == 0 {
		return errors.New("a notification target needs a type, a target and events")
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if n.ProjectID != 0 && bucket(tx, projectsBucket).Get(itob(n.ProjectID)) == nil {
			return ErrNotFound
		}
		b := bucket(tx, notificationsBucket)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		n.ID, n.CreatedAt = int64(seq), time.Now().UTC()
		return put(b, itob(n.ID), n)
	})
}

// Notifications returns every notification target, oldest first.
func (s *Store) Notifications() ([]*Notification, error) {
	var out []*Notification
	err := s.db.View(func(tx *bolt.Tx) error {
		return iterate(bucket(tx, notificationsBucket), nil, func(_ []byte, n Notification) (bool, error) {
			out = append(out, &n)
			return true, nil
		})
	})
	return out, err
}

// Notification returns the notification target with the given id.
func (s *Store) Notification(id int64) (*Notification, error) {
	var n Notification
	err := s.db.View(func(tx *bolt.Tx) error { return get(bucket(tx, notificationsBucket), itob(id), &n) })
	if err != nil {
		return nil, err
	}
	return &n, nil
}

// DeleteNotification removes notification target id; its messages still in the outbox are dropped
// when their turn comes.
func (s *Store) DeleteNotification(id int64) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := bucket(tx, notificationsBucket)
		if b.Get(itob(id)) == nil {
			return ErrNotFound
		}
		return b.Delete(itob(id))
	})
}

// DisableNotification stops deliveries to notification target id for reason; a target disabled
// already keeps its first reason.
func (s *Store) DisableNotification(id int64, reason string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := bucket(tx, notificationsBucket)
		var n Notification
		if err := get(b, itob(id), &n); err != nil {
			return err
		}
		if n.DisabledReason != "" {
			return nil
		}
		n.DisabledReason = reason
		return put(b, itob(id), &n)
	})
}
