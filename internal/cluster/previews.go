package cluster

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/miaobu/miaobu/internal/event"
	"github.com/miaobu/miaobu/internal/outbox"
	"github.com/miaobu/miaobu/internal/store"
)

// RemovePreview takes a preview down at once: its alias serves nothing from now on, its queued and
// running deployments are cancelled (a build of one on any node cannot go live) and its commits no
// longer count as queued, running or live, so that a reopened pull request or a branch pushed again
// builds again. It returns the preview as it was before and the cancelled deployments; removing a
// preview already removed changes nothing.
func (s *Store) RemovePreview(projectID int64, alias, reason string) (*store.Preview, []*store.Deployment, error) {
	ctx, cancel := opContext()
	defer cancel()
	var rm removal
	_, err := s.changeRecord(ctx, projectID, func(r *projectRecord) (err error) {
		rm, err = s.removePreview(ctx, r, alias, reason)
		rm.unsent = slices.Clone(r.Unsent)
		return err
	})
	if err != nil {
		return nil, nil, unavailable(err)
	}
	cancelled, err := s.takenDown(ctx, projectID, rm, reason)
	return rm.before, cancelled, err
}

// DeleteBranch records that a preview branch was deleted at commit last (the deletion's before),
// so that a replayed push of a commit its alias had before is stale (see store.Push.Stale), and
// takes the alias down like RemovePreview when the branch owns it. It returns the preview as it
// was before, nil when the alias has none; one whose Branch is another is not touched. The
// cancelled deployments come with it. A replay of an old deletion (see store.StaleDeletion)
// changes nothing and returns ErrStaleDeletion. The check, the removal and the record of the
// deletion are one compare-and-set of the project's record.
func (s *Store) DeleteBranch(projectID int64, branch, last, alias, reason string) (*store.Preview, []*store.Deployment, error) {
	ctx, cancel := opContext()
	defer cancel()
	var rm removal
	_, err := s.changeRecord(ctx, projectID, func(r *projectRecord) (err error) {
		rm = removal{}
		if _, deployed := r.Deployed[commitKey(alias, last)]; store.StaleDeletion(r.Heads[branch], last, deployed) {
			return store.ErrStaleDeletion
		}
		switch p := r.Previews[alias]; {
		case p == nil:
		case p.PullRequest == 0 && p.Branch == branch:
			if rm, err = s.removePreview(ctx, r, alias, reason); err != nil {
				return err
			}
		default:
			copied := *p
			rm.before = &copied
		}
		r.Heads[branch] = store.DeletedHead
		rm.unsent = slices.Clone(r.Unsent)
		return nil
	})
	if err != nil {
		return nil, nil, unavailable(err)
	}
	cancelled, err := s.takenDown(ctx, projectID, rm, reason)
	return rm.before, cancelled, err
}

// removal is what taking a preview down changed in its project's record: the preview as it was
// before, and the deployments left to end and the messages left to send after the compare-and-set.
type removal struct {
	before *store.Preview
	// unfinished were queued or running; wasLive was live on the preview, 0 when none was.
	unfinished []int64
	wasLive    int64
	// unsent are the messages on the record once the removal was made, its own among them.
	unsent []outbox.Message
}

// removePreview takes preview alias down in r for reason (see RemovePreview); store.ErrNotFound
// when r has none.
func (r *projectRecord) removePreview(alias, reason string, now time.Time) (removal, error) {
	p := r.Previews[alias]
	if p == nil {
		return removal{}, store.ErrNotFound
	}
	copied := *p
	rm := removal{before: &copied}
	if p.Removed() {
		return rm, nil
	}
	p.RemovedAt, p.RemovedReason, rm.wasLive = &now, reason, p.ActiveDeploymentID
	for _, set := range []map[int64]slot{r.Queued, r.Running} {
		for id, sl := range set {
			if sl.Alias == alias {
				rm.unfinished = append(rm.unfinished, id)
			}
		}
	}
	slices.Sort(rm.unfinished)
	for _, id := range rm.unfinished {
		r.finish(id)
	}
	// A pull request reopened, or a branch pushed again, at a commit this alias had deployed must
	// deploy it afresh, not as a duplicate; Deployed stays, for the stale rule after a branch's
	// deletion.
	prefix := alias + "\x00"
	maps.DeleteFunc(r.Commits, func(key string, _ int64) bool { return strings.HasPrefix(key, prefix) })
	if p.PullRequest == 0 {
		delete(r.Heads, p.Branch)
	}
	return rm, nil
}

// removePreview takes preview alias down in r now, as r.removePreview does, and writes on r the
// notifications that it is removed, so that they are sent exactly when the removal is made (see
// takenDown).
func (s *Store) removePreview(ctx context.Context, r *projectRecord, alias, reason string) (removal, error) {
	rm, err := r.removePreview(alias, reason, time.Now().UTC())
	if err != nil || rm.wasLive == 0 {
		return rm, err
	}
	messages, err := s.removalMessages(ctx, &r.Project, rm.wasLive)
	r.Unsent = append(r.Unsent, messages...)
	return rm, err
}

// takenDown copies to the outbox the notifications that the removal rm of a preview of project
// projectID wrote on its record, then cancels, for reason, the deployments that the removal left
// unfinished; it returns the deployments it cancelled.
func (s *Store) takenDown(ctx context.Context, projectID int64, rm removal, reason string) ([]*store.Deployment, error) {
	s.sendRecordUnsent(ctx, projectID, rm.unsent)
	var cancelled []*store.Deployment
	for _, id := range rm.unfinished {
		d, err := s.endDeployment(ctx, id, store.StatusCancelled, reason, false)
		if errors.Is(err, store.ErrFinished) || errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return cancelled, unavailable(err)
		}
		cancelled = append(cancelled, d)
	}
	return cancelled, nil
}

// removalMessages returns, numbered, the notifications that a preview of p, on which deployment id
// was live, is removed.
func (s *Store) removalMessages(ctx context.Context, p *store.Project, id int64) ([]outbox.Message, error) {
	notifier := s.notifier.Load()
	if notifier == nil {
		return nil, nil
	}
	d, _, err := s.deployment(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	targets, err := s.notificationsWith(ctx)
	if err != nil {
		return nil, err
	}
	var messages []outbox.Message
	e := store.Event{Name: event.PreviewRemoved, Project: *p, Deployment: *d, At: time.Now().UTC()}
	for _, n := range targets {
		if n.Wants(e) {
			messages = append(messages, (*notifier)(*n, e))
		}
	}
	return messages, s.number(ctx, messages)
}

// sendRecordUnsent copies unsent, the messages left on a project's record, to the outbox and clears
// them from the record; on failure it logs, and the reconciler tries again.
func (s *Store) sendRecordUnsent(ctx context.Context, projectID int64, unsent []outbox.Message) {
	if len(unsent) == 0 || s.dieAfterChange.Load() {
		return
	}
	err := s.copyToOutbox(ctx, unsent)
	if err == nil {
		last := unsent[len(unsent)-1].ID
		_, err = s.changeRecord(ctx, projectID, func(r *projectRecord) error {
			r.Unsent = slices.DeleteFunc(r.Unsent, func(m outbox.Message) bool { return m.ID <= last })
			return nil
		})
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("cluster: enqueueing the notifications of a project", "project", projectID, "err", err)
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

// RecordGitHubDeployment durably records a deployment asked for on GitHub and its delivery: a new
// queued production deployment of its commit, unless the GitHub deployment was handled before or,
// by the duplicate rule of pushes, a deployment of the commit is queued, running or live for
// production; the check and the record are one compare-and-set of the project's record.
func (s *Store) RecordGitHubDeployment(ctx context.Context, g store.GitHubDeployment) (store.GitHubDeploymentResult, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	var res store.GitHubDeploymentResult
	var nd *newDeployment
	written, err := s.changeRecord(ctx, g.ProjectID, func(r *projectRecord) error {
		res, nd = store.GitHubDeploymentResult{}, nil
		if id, handled := r.GitHubDeployments[g.GitHubID]; handled {
			res.DeploymentID, res.Handled = id, true
			return nil
		}
		if id, duplicate := r.Commits[commitKey("", g.CommitSHA)]; duplicate {
			res.DeploymentID, res.Duplicate = id, true
		} else {
			nd = &newDeployment{d: &store.Deployment{ProjectID: g.ProjectID, CommitSHA: g.CommitSHA, Branch: g.Branch,
				Trigger: store.TriggerGitHubDeployment, DeliveryID: g.DeliveryID, GitHubDeploymentID: g.GitHubID}}
			if err := s.add(ctx, r, nd); err != nil {
				return err
			}
			res.DeploymentID = nd.d.ID
		}
		r.GitHubDeployments[g.GitHubID] = res.DeploymentID
		forgetOldest(r.GitHubDeployments, maxRemembered)
		return nil
	})
	if err != nil {
		return res, unavailable(err)
	}
	delivery := store.Delivery{GUID: g.DeliveryID, Event: "deployment", ProjectID: g.ProjectID, Outcome: store.OutcomeSuccess,
		DeploymentID: res.DeploymentID, RemoteAddr: g.RemoteAddr}
	switch {
	case res.Handled:
		delivery.Outcome, delivery.DeploymentID = store.OutcomeIgnored, 0
	case res.Duplicate:
		delivery.Outcome = store.OutcomeSkipped
	default:
		nd.written = written
		if err := s.write(ctx, nd, time.Now().UTC()); err != nil {
			return res, unavailable(err)
		}
	}
	return res, unavailable(s.addDelivery(ctx, delivery))
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
