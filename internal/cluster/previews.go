package cluster

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/miaobu/miaobu/internal/event"
	"github.com/miaobu/miaobu/internal/store"
)

// RemovePreview takes a preview down at once: its alias serves nothing from now on, its queued and
// running deployments are cancelled (a build of one on any node cannot go live) and its commits no
// longer count as deployed. It returns the preview as it was before and the cancelled deployments;
// removing a preview already removed changes nothing.
func (s *Store) RemovePreview(projectID int64, alias, reason string) (*store.Preview, []*store.Deployment, error) {
	ctx, cancel := opContext()
	defer cancel()
	var before *store.Preview
	var unfinished []int64
	var wasLive int64
	r, err := s.changeRecord(ctx, projectID, func(r *projectRecord) error {
		before, unfinished, wasLive = nil, nil, 0
		p := r.Previews[alias]
		if p == nil {
			return store.ErrNotFound
		}
		copied := *p
		before = &copied
		if p.Removed() {
			return nil
		}
		now := time.Now().UTC()
		p.RemovedAt, wasLive = &now, p.ActiveDeploymentID
		for _, set := range []map[int64]slot{r.Queued, r.Running} {
			for id, sl := range set {
				if sl.Alias == alias {
					unfinished = append(unfinished, id)
				}
			}
		}
		for _, id := range unfinished {
			r.finish(id)
		}
		// A pull request reopened, or a branch pushed again, at a commit this alias had deployed must
		// deploy it afresh, neither as a duplicate nor as a stale delivery.
		prefix := alias + "\x00"
		maps.DeleteFunc(r.Commits, func(key string, _ int64) bool { return strings.HasPrefix(key, prefix) })
		maps.DeleteFunc(r.Deployed, func(key string, _ int64) bool { return strings.HasPrefix(key, prefix) })
		if p.PullRequest == 0 {
			delete(r.Heads, p.Branch)
		}
		return nil
	})
	if err != nil {
		return nil, nil, unavailable(err)
	}
	slices.Sort(unfinished)
	var cancelled []*store.Deployment
	for _, id := range unfinished {
		d, err := s.endDeployment(ctx, id, store.StatusCancelled, reason)
		if errors.Is(err, store.ErrFinished) || errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return before, cancelled, unavailable(err)
		}
		cancelled = append(cancelled, d)
	}
	if wasLive != 0 {
		s.notifyRemoved(ctx, &r.Project, wasLive)
	}
	return before, cancelled, nil
}

// notifyRemoved enqueues the notifications that a preview of p, on which deployment id was live,
// is removed.
func (s *Store) notifyRemoved(ctx context.Context, p *store.Project, id int64) {
	notifier := s.notifier.Load()
	if notifier == nil {
		return
	}
	d, _, err := s.deployment(ctx, id)
	if err == nil {
		var targets []*store.Notification
		if targets, err = s.notificationsWith(ctx); err == nil {
			e := store.Event{Name: event.PreviewRemoved, Project: *p, Deployment: *d, At: time.Now().UTC()}
			for _, n := range targets {
				if n.Wants(e) {
					m := (*notifier)(*n, e)
					err = errors.Join(err, s.enqueue(ctx, &m))
				}
			}
		}
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("cluster: notifying of a removed preview", "deployment", id, "err", err)
	}
}

// PurgeRemovedPreviews deletes the previews taken down before cutoff, with their finished
// deployments, and returns those deployments so that their files and logs can be removed.
func (s *Store) PurgeRemovedPreviews(cutoff time.Time) ([]*store.Deployment, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*opTimeout)
	defer cancel()
	records, err := s.records(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	var gone []*store.Deployment
	for _, r := range records {
		var expired []string
		for alias, p := range r.Previews {
			if p.Removed() && p.RemovedAt.Before(cutoff) {
				expired = append(expired, alias)
			}
		}
		if len(expired) == 0 {
			continue
		}
		var purged []*store.Deployment
		for _, id := range r.History {
			d, _, err := s.deployment(ctx, id)
			if err == nil && d.Terminal() && slices.Contains(expired, d.Alias) {
				purged = append(purged, d)
			}
		}
		_, err := s.changeRecord(ctx, r.Project.ID, func(r *projectRecord) error {
			for _, alias := range expired {
				delete(r.Previews, alias)
			}
			r.History = slices.DeleteFunc(r.History, func(id int64) bool {
				return slices.ContainsFunc(purged, func(d *store.Deployment) bool { return d.ID == id })
			})
			return nil
		})
		if err != nil {
			return gone, unavailable(err)
		}
		for _, d := range purged {
			_ = s.deployments.Delete(ctx, idKey(d.ID))
			_ = s.sites.Delete(ctx, siteObject(d.ID))
			_ = s.sites.Delete(ctx, logObject(d.ID))
		}
		gone = append(gone, purged...)
	}
	return gone, nil
}

// RecordGitHubDeployment durably records a deployment asked for on GitHub: a new queued deployment
// of its commit, without the duplicate check (as `miaobu deploy`), and the delivery.
func (s *Store) RecordGitHubDeployment(ctx context.Context, g store.GitHubDeployment) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	nd := &newDeployment{d: &store.Deployment{ProjectID: g.ProjectID, CommitSHA: g.CommitSHA, Branch: g.Branch,
		Trigger: store.TriggerGitHubDeployment, DeliveryID: g.DeliveryID, GitHubDeploymentID: g.GitHubID}}
	_, err := s.changeRecord(ctx, g.ProjectID, func(r *projectRecord) error {
		if err := s.add(ctx, r, nd); err != nil {
			return err
		}
		r.GitHubDeployments[g.GitHubID] = nd.d.ID
		forgetOldest(r.GitHubDeployments, maxRemembered)
		return nil
	})
	if err != nil {
		return 0, unavailable(err)
	}
	if err := s.write(ctx, nd, time.Now().UTC()); err != nil {
		return 0, unavailable(err)
	}
	return nd.d.ID, unavailable(s.addDelivery(ctx, store.Delivery{GUID: g.DeliveryID, Event: "deployment", ProjectID: g.ProjectID,
		Outcome: store.OutcomeSuccess, DeploymentID: nd.d.ID, RemoteAddr: g.RemoteAddr}))
}

// HandleGitHubDeployment records that project's GitHub deployment githubID was acted on by
// deployment id, put live again.
func (s *Store) HandleGitHubDeployment(projectID, githubID, id int64) error {
	ctx, cancel := opContext()
	defer cancel()
	_, err := s.changeRecord(ctx, projectID, func(r *projectRecord) error {
		r.GitHubDeployments[githubID] = id
		forgetOldest(r.GitHubDeployments, maxRemembered)
		return nil
	})
	return unavailable(err)
}

// HandledGitHubDeployment reports whether project's GitHub deployment githubID was already acted
// on: built, or put live again.
func (s *Store) HandledGitHubDeployment(projectID, githubID int64) (bool, error) {
	ctx, cancel := opContext()
	defer cancel()
	r, _, err := s.record(ctx, projectID)
	if err != nil {
		return false, err
	}
	_, handled := r.GitHubDeployments[githubID]
	return handled, nil
}
