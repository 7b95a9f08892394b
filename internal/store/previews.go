package store

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/miaobu/miaobu/internal/event"
	"github.com/miaobu/miaobu/internal/trigger"
)

// Deployment environments: production deploys the project's default branch, a preview one alias.
const (
	EnvironmentProduction = "production"
	EnvironmentPreview    = "preview"
)

// Preview is one alias of a project besides production: a pull request's (pr-<n>) or a preview
// branch's (git-<branch-slug>), with its live deployment.
type Preview struct {
	ProjectID int64  `json:"project_id"`
	Alias     string `json:"alias"`
	// Branch is the head branch: the preview branch, or the pull request's head ref.
	Branch      string `json:"branch"`
	PullRequest int    `json:"pull_request,omitempty"`
	// Fork says the pull request's head repository is not the project's (or was deleted).
	Fork bool `json:"fork,omitempty"`
	// HeadSHA is the newest head commit seen; ApprovedSHA the fork head commit last approved.
	HeadSHA            string `json:"head_sha"`
	ApprovedSHA        string `json:"approved_sha,omitempty"`
	ActiveDeploymentID int64  `json:"active_deployment_id,omitempty"`
	// CommentID is the pull request's sticky comment on GitHub, once it exists.
	CommentID int64     `json:"comment_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// RemovedAt is when the alias was taken down (pull request closed, branch deleted, preview
	// remove); its files are deleted once retention.previews has passed since. RemovedReason is
	// why, as the domain said it.
	RemovedAt     *time.Time `json:"removed_at,omitempty"`
	RemovedReason string     `json:"removed_reason,omitempty"`
}

// Removed reports whether the preview was taken down.
func (p *Preview) Removed() bool { return p.RemovedAt != nil }

// previewKey is the previews key of a project's alias.
func previewKey(projectID int64, alias string) []byte { return append(itob(projectID), alias...) }

// loadPreview reads a project's preview inside tx.
func loadPreview(tx *bolt.Tx, projectID int64, alias string) (*Preview, error) {
	var p Preview
	if err := get(bucket(tx, previewsBucket), previewKey(projectID, alias), &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// savePreview writes p inside tx.
func savePreview(tx *bolt.Tx, p *Preview) error {
	return put(bucket(tx, previewsBucket), previewKey(p.ProjectID, p.Alias), p)
}

// PreviewHead is what a push or pull request update says about a preview's head.
type PreviewHead struct {
	Branch      string
	PullRequest int
	Fork        bool
	SHA         string
}

// AliasTakenError is the refusal of a branch's head for a preview whose alias, or host label,
// belongs to another branch: branches whose slugs collide (feature/a and feature/a-), or whose
// cut labels share their hash, do not share a preview.
type AliasTakenError struct {
	// Alias is the owner's preview alias, Branch the owner.
	Alias, Branch string
}

// Error says which branch holds the preview.
func (e *AliasTakenError) Error() string {
	return fmt.Sprintf("preview %s belongs to branch '%s'", e.Alias, e.Branch)
}

// notePreviewHead creates or updates the preview alias of a project inside tx with a new head (see
// NoteHead); a branch's head is refused with an *AliasTakenError when another branch's preview that
// is up has the alias or the same host label (see Preview.Withholds).
func notePreviewHead(tx *bolt.Tx, projectID int64, alias string, head PreviewHead, now time.Time) (*Preview, error) {
	if head.PullRequest == 0 {
		if err := checkBranchOwner(tx, projectID, alias, head.Branch); err != nil {
			return nil, err
		}
	}
	p, err := loadPreview(tx, projectID, alias)
	if errors.Is(err, ErrNotFound) {
		p, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	p = NoteHead(p, projectID, alias, head, now)
	return p, savePreview(tx, p)
}

// NoteHead returns p, the preview alias of a project (nil when it has none), with a new head: a
// preview taken down comes back up, and a branch taking over the alias of another one, deleted or
// removed, starts afresh, serving none of the other branch's deployments.
func NoteHead(p *Preview, projectID int64, alias string, head PreviewHead, now time.Time) *Preview {
	if p == nil || p.Branch != head.Branch && head.PullRequest == 0 {
		p = &Preview{ProjectID: projectID, Alias: alias, CreatedAt: now}
	}
	p.Branch, p.PullRequest, p.Fork, p.HeadSHA, p.RemovedAt, p.RemovedReason = head.Branch, head.PullRequest, head.Fork, head.SHA, nil, ""
	return p
}

// Withholds returns an *AliasTakenError when pv, a preview of the project whose slug is slug, keeps
// branch from deploying to alias: an alias, and its host label, belong to the first branch that
// deployed to it until its preview is taken down. It returns nil when pv is a pull request's, is
// down, is branch's own, or has another alias and host label.
func (pv *Preview) Withholds(slug, alias, branch string) *AliasTakenError {
	if pv.PullRequest != 0 || pv.Removed() || pv.Branch == branch {
		return nil
	}
	if pv.Alias != alias && trigger.HostLabel(slug, pv.Alias, 0, pv.Branch) != trigger.HostLabel(slug, alias, 0, branch) {
		return nil
	}
	return &AliasTakenError{Alias: pv.Alias, Branch: pv.Branch}
}

// checkBranchOwner returns an *AliasTakenError when a preview of the project withholds alias from
// branch (see Preview.Withholds).
func checkBranchOwner(tx *bolt.Tx, projectID int64, alias, branch string) error {
	var project Project
	if err := get(bucket(tx, projectsBucket), itob(projectID), &project); err != nil {
		return err
	}
	var taken error
	err := iterate(bucket(tx, previewsBucket), itob(projectID), func(_ []byte, pv Preview) (bool, error) {
		if owner := pv.Withholds(project.Slug, alias, branch); owner != nil {
			taken = owner
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	return taken
}

// Preview returns a project's preview with the given alias.
func (s *Store) Preview(projectID int64, alias string) (*Preview, error) {
	var p *Preview
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		p, err = loadPreview(tx, projectID, alias)
		return err
	})
	return p, err
}

// Previews returns a project's previews, removed ones included, in alias order.
func (s *Store) Previews(projectID int64) ([]*Preview, error) {
	var out []*Preview
	err := s.db.View(func(tx *bolt.Tx) error {
		if bucket(tx, projectsBucket).Get(itob(projectID)) == nil {
			return ErrNotFound
		}
		return iterate(bucket(tx, previewsBucket), itob(projectID), func(_ []byte, p Preview) (bool, error) {
			out = append(out, &p)
			return true, nil
		})
	})
	return out, err
}

// SetPreviewComment records the id of a pull request preview's sticky comment.
func (s *Store) SetPreviewComment(projectID int64, alias string, commentID int64) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		p, err := loadPreview(tx, projectID, alias)
		if err != nil {
			return err
		}
		p.CommentID = commentID
		return savePreview(tx, p)
	})
}

// RemovePreview takes a preview down at once: its alias serves nothing from now on, its queued and
// running deployments are cancelled and its commits no longer count as queued, running or live,
// so that a reopened pull request or a branch pushed again builds again. It returns the preview as
// it was before and the cancelled deployments; removing a preview already removed changes nothing.
func (s *Store) RemovePreview(projectID int64, alias, reason string) (*Preview, []*Deployment, error) {
	var (
		before    *Preview
		cancelled []*Deployment
	)
	err := s.db.Update(func(tx *bolt.Tx) (err error) {
		before, cancelled, err = s.removePreview(tx, projectID, alias, reason)
		return err
	})
	return before, cancelled, err
}

// DeletedHead is the head recorded for a deleted branch: the all-zero SHA of a deletion's push.
const DeletedHead = "0000000000000000000000000000000000000000"

// ErrStaleDeletion is returned by DeleteBranch for a replayed old deletion: the branch was pushed
// again since, from another commit than the one deleted.
var ErrStaleDeletion = errors.New("the branch has moved on since its deletion")

// StaleDeletion reports whether the deletion of a branch at commit last replays an old one: the
// branch's alias deployed last (deployed), and head, the branch's last pushed head, is another
// commit (the branch was pushed again since).
func StaleDeletion(head, last string, deployed bool) bool {
	return deployed && head != "" && head != DeletedHead && head != last
}

// DeleteBranch records that a preview branch was deleted at commit last (the deletion's before),
// so that a replayed push of a commit its alias had before is stale (see RecordPush), and takes the
// alias down like RemovePreview when the branch owns it. It returns the preview as it was before,
// nil when the alias has none; one whose Branch is another is not touched. The cancelled
// deployments come with it. A deletion whose last commit the alias deployed but is not the
// branch's last pushed head is a replay from before the branch was pushed again: it changes
// nothing and returns ErrStaleDeletion.
func (s *Store) DeleteBranch(projectID int64, branch, last, alias, reason string) (*Preview, []*Deployment, error) {
	var (
		before    *Preview
		cancelled []*Deployment
	)
	err := s.db.Update(func(tx *bolt.Tx) error {
		if bucket(tx, projectsBucket).Get(itob(projectID)) == nil {
			return ErrNotFound
		}
		head := string(bucket(tx, branchHeadsBucket).Get(branchKey(projectID, branch)))
		if StaleDeletion(head, last, bucket(tx, deployedCommitsBucket).Get(commitKey(projectID, alias, last)) != nil) {
			return ErrStaleDeletion
		}
		pv, err := loadPreview(tx, projectID, alias)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return err
		case pv.PullRequest == 0 && pv.Branch == branch:
			if before, cancelled, err = s.removePreview(tx, projectID, alias, reason); err != nil {
				return err
			}
		default:
			before = pv
		}
		return bucket(tx, branchHeadsBucket).Put(branchKey(projectID, branch), []byte(DeletedHead))
	})
	return before, cancelled, err
}

// removePreview is RemovePreview inside tx.
func (s *Store) removePreview(tx *bolt.Tx, projectID int64, alias, reason string) (*Preview, []*Deployment, error) {
	p, err := loadPreview(tx, projectID, alias)
	if err != nil {
		return nil, nil, err
	}
	before := *p
	if p.Removed() {
		return &before, nil, nil
	}
	now := time.Now().UTC()
	p.RemovedAt, p.RemovedReason = &now, reason
	if err := savePreview(tx, p); err != nil {
		return nil, nil, err
	}
	if err := s.notifyRemoved(tx, p, now); err != nil {
		return nil, nil, err
	}
	var cancelled []*Deployment
	for _, index := range [][]byte{queuedBucket, runningBucket} {
		unfinished, err := aliasDeployments(tx, index, projectID, alias)
		if err != nil {
			return nil, nil, err
		}
		for _, d := range unfinished {
			if err := s.finish(tx, d.ID, StatusCancelled, reason, now); err != nil {
				return nil, nil, err
			}
			if d, err = loadDeployment(tx, d.ID); err != nil {
				return nil, nil, err
			}
			cancelled = append(cancelled, d)
		}
	}
	// A pull request reopened, or a branch pushed again, at a commit this alias had deployed must
	// deploy it afresh, not as a duplicate; deployed_commits stays, for the stale rule after a
	// branch's deletion.
	if err := deletePrefix(bucket(tx, commitsBucket), aliasCommitsPrefix(projectID, alias)); err != nil {
		return nil, nil, err
	}
	if p.PullRequest == 0 {
		return &before, cancelled, bucket(tx, branchHeadsBucket).Delete(branchKey(projectID, p.Branch))
	}
	return &before, cancelled, nil
}

// notifyRemoved enqueues inside tx the notifications that preview p, just taken down, is removed,
// about the deployment that was live on it (none when nothing went live).
func (s *Store) notifyRemoved(tx *bolt.Tx, p *Preview, now time.Time) error {
	if p.ActiveDeploymentID == 0 {
		return nil
	}
	d, err := loadDeployment(tx, p.ActiveDeploymentID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var project Project
	if err := get(bucket(tx, projectsBucket), itob(p.ProjectID), &project); err != nil {
		return err
	}
	return s.notify(tx, Event{Name: event.PreviewRemoved, Project: project, Deployment: *d, At: now})
}

// PurgeRemovedPreviews deletes the previews taken down before cutoff, with all their deployments,
// and returns those deployments so that their files and logs can be removed.
func (s *Store) PurgeRemovedPreviews(cutoff time.Time) ([]*Deployment, error) {
	var gone []*Deployment
	err := s.db.Update(func(tx *bolt.Tx) error {
		var expired []*Preview
		err := iterate(bucket(tx, previewsBucket), nil, func(_ []byte, p Preview) (bool, error) {
			if p.Removed() && p.RemovedAt.Before(cutoff) {
				expired = append(expired, &p)
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		for _, p := range expired {
			history, err := aliasDeployments(tx, projectDeploymentsBucket, p.ProjectID, p.Alias)
			if err != nil {
				return err
			}
			for _, d := range history {
				if !d.Terminal() {
					continue
				}
				if err := deleteDeployment(tx, d); err != nil {
					return err
				}
				gone = append(gone, d)
			}
			if err := bucket(tx, previewsBucket).Delete(previewKey(p.ProjectID, p.Alias)); err != nil {
				return err
			}
		}
		return nil
	})
	return gone, err
}
