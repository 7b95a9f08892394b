package store

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// Deployment is a deployment as stored.
type Deployment struct {
	ID               int64      `json:"id"`
	ProjectID        int64      `json:"project_id"`
	CommitSHA        string     `json:"commit_sha"`
	CommitMessage    string     `json:"commit_message"`
	CommitAuthor     string     `json:"commit_author"`
	Branch           string     `json:"branch"`
	Trigger          Trigger    `json:"trigger"`
	Status           Status     `json:"status"`
	ErrorMessage     string     `json:"error_message,omitempty"`
	DeliveryID       string     `json:"delivery_id,omitempty"`
	CreatedAt        time.Time  `json:"created_at"`
	StartedAt        *time.Time `json:"started_at,omitempty"`
	FinishedAt       *time.Time `json:"finished_at,omitempty"`
	BuildTimeSeconds *float64   `json:"build_time_seconds,omitempty"`
	// Attempts counts builds interrupted by a crash of the agent; one is retried, a second fails.
	Attempts int `json:"attempts,omitempty"`
	// Framework is the framework the build used, detected or set, once the build knows it.
	Framework string `json:"framework,omitempty"`
	// SPA says the site answers unknown extension-less paths with /index.html.
	SPA bool `json:"spa,omitempty"`
	// Detected is what detection found in the commit, once the build has looked.
	Detected *DetectedSettings `json:"detected,omitempty"`
	// Environment is EnvironmentProduction or EnvironmentPreview, set from Alias when the deployment
	// is created; Alias names its preview ("" for production); ordering, duplicates and
	// latest-wins hold per project and alias.
	Environment string `json:"environment"`
	Alias       string `json:"alias,omitempty"`
	PullRequest int    `json:"pull_request,omitempty"`
	// Fork marks the build of a fork's pull request: no variables, no token, no cache, sandbox only.
	Fork bool `json:"fork,omitempty"`
	// GitHubDeploymentID is the deployment on GitHub that reports this one, 0 until one is made.
	GitHubDeploymentID int64 `json:"github_deployment_id,omitempty"`
	// NoCache asks for a build from nothing: the project's build cache is cleared before it.
	NoCache bool `json:"no_cache,omitempty"`
	// Node is the clustered agent that runs (or ran) the build; empty on a single agent.
	Node string `json:"node,omitempty"`
	// SkipMarkers says the commit's message was unknown when the deployment was made (a pull
	// request's update that GitHub did not tell about): the build reads it from the clone and
	// cancels the deployment when it has a skip marker.
	SkipMarkers bool `json:"skip_markers,omitempty"`
	// Skipped marks a deployment that its build cancelled for a skip marker in its commit's message
	// (Skip): ErrorMessage says which, and GitHub hears of it as a skip, not as a cancellation.
	Skipped bool `json:"skipped,omitempty"`
}

// DetectedSettings are the build settings detection found in a commit: what a build uses wherever
// the project sets none of its own.
type DetectedSettings struct {
	Framework       string `json:"framework"`
	InstallCommand  string `json:"install_command"`
	BuildCommand    string `json:"build_command"`
	OutputDirectory string `json:"output_directory"`
}

// Status is where a deployment is in its life; the values are the API's.
type Status string

// Deployment statuses, in the order a successful build passes through them.
const (
	StatusQueued     Status = "queued"
	StatusCloning    Status = "cloning"
	StatusInstalling Status = "installing"
	StatusBuilding   Status = "building"
	StatusUploading  Status = "uploading"
	StatusPurging    Status = "purging"
	StatusDeployed   Status = "deployed"
	StatusFailed     Status = "failed"
	StatusCancelled  Status = "cancelled"
)

// Statuses lists every deployment status, in the order of StatusQueued to StatusCancelled.
var Statuses = []Status{StatusQueued, StatusCloning, StatusInstalling, StatusBuilding, StatusUploading, StatusPurging,
	StatusDeployed, StatusFailed, StatusCancelled}

// Trigger is what created a deployment; the values are the API's.
type Trigger string

// Deployment triggers.
const (
	TriggerWebhook  Trigger = "webhook"
	TriggerManual   Trigger = "manual"
	TriggerImport   Trigger = "import"
	TriggerRollback Trigger = "rollback"
	// TriggerPoll is a new head found by polling (contract section 9).
	TriggerPoll Trigger = "poll"
	// TriggerReconcile is a head found without a deployment by reconciliation.
	TriggerReconcile Trigger = "reconcile"
	// TriggerPullRequest is a pull request's update, or the approval of a fork's head commit.
	TriggerPullRequest Trigger = "pull_request"
	// TriggerGitHubDeployment is a deployment asked for on GitHub (a deployment event).
	TriggerGitHubDeployment Trigger = "github_deployment"
)

// chosen reports whether a deployment of this trigger is of a commit that a user picked, rather than
// the head of its branch: a manual deployment or a GitHub deployment event.
func (t Trigger) chosen() bool {
	return t == TriggerManual || t == TriggerGitHubDeployment
}

// Terminal reports whether the deployment has finished, successfully or not.
func (d *Deployment) Terminal() bool { return IsTerminal(d.Status) }

// IsTerminal reports whether status is one a deployment never leaves.
func IsTerminal(status Status) bool {
	return status == StatusDeployed || status == StatusFailed || status == StatusCancelled
}

// ErrFinished is returned when a change is asked of a deployment that has already finished.
var ErrFinished = errors.New("deployment has already finished")

// loadDeployment reads deployment id inside tx.
func loadDeployment(tx *bolt.Tx, id int64) (*Deployment, error) {
	var d Deployment
	if err := get(bucket(tx, deploymentsBucket), itob(id), &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// saveDeployment writes d inside tx, its commit message and author cut to their limits: every way a
// deployment is created or learns its commit (webhook, deploy, import, the build) passes here.
func saveDeployment(tx *bolt.Tx, d *Deployment) error {
	d.CommitMessage = LimitCommitMessage(d.CommitMessage)
	d.CommitAuthor = LimitCommitAuthor(d.CommitAuthor)
	return put(bucket(tx, deploymentsBucket), itob(d.ID), d)
}

// MaxCommitMessage is the most bytes of a commit message that a deployment keeps.
const MaxCommitMessage = 4 << 10

// maxCommitAuthor is the most bytes of a commit author that a deployment keeps.
const maxCommitAuthor = 256

// LimitCommitMessage returns message as a deployment keeps it: whole, or cut to MaxCommitMessage
// bytes at a character boundary and ending in "…".
func LimitCommitMessage(message string) string {
	return limitText(message, MaxCommitMessage)
}

// LimitCommitAuthor returns author as a deployment keeps it: whole, or cut like LimitCommitMessage
// to maxCommitAuthor bytes.
func LimitCommitAuthor(author string) string {
	return limitText(author, maxCommitAuthor)
}

// limitText returns s whole when it has at most limit bytes, else cut at a character boundary so
// that, with "…" appended, it has at most limit bytes.
func limitText(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := limit - len("…")
	for back := 0; back < utf8.UTFMax && cut > 0 && !utf8.RuneStart(s[cut]); back++ {
		cut--
	}
	return s[:cut] + "…"
}

// liveID returns the live deployment of a project's alias ("" for production) inside tx, 0 when
// none.
func liveID(tx *bolt.Tx, projectID int64, alias string) (int64, error) {
	if alias != "" {
		p, err := loadPreview(tx, projectID, alias)
		if errors.Is(err, ErrNotFound) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		return p.ActiveDeploymentID, nil
	}
	var p Project
	if err := get(bucket(tx, projectsBucket), itob(projectID), &p); err != nil {
		return 0, err
	}
	return p.ActiveDeploymentID, nil
}

// aliasDeployments returns the deployments of a project's alias that the index bucket named index
// (queued, running or project_deployments) lists, oldest first.
func aliasDeployments(tx *bolt.Tx, index []byte, projectID int64, alias string) ([]*Deployment, error) {
	ids, err := pairedIDs(bucket(tx, index), itob(projectID))
	if err != nil {
		return nil, err
	}
	var out []*Deployment
	for _, id := range ids {
		d, err := loadDeployment(tx, id)
		if err != nil {
			return nil, err
		}
		if d.Alias == alias {
			out = append(out, d)
		}
	}
	return out, nil
}

// createDeployment stores d as a new queued deployment and cancels the older queued ones of its
// project and alias.
func (s *Store) createDeployment(tx *bolt.Tx, d *Deployment, now time.Time) error {
	deployments := bucket(tx, deploymentsBucket)
	seq, err := deployments.NextSequence()
	if err != nil {
		return err
	}
	d.ID, d.Status, d.CreatedAt = int64(seq), StatusQueued, now
	d.Environment = EnvironmentProduction
	if d.Alias != "" {
		d.Environment = EnvironmentPreview
	}
	older, err := aliasDeployments(tx, queuedBucket, d.ProjectID, d.Alias)
	if err != nil {
		return err
	}
	for _, old := range older {
		if err := s.finish(tx, old.ID, StatusCancelled, fmt.Sprintf("superseded by #%d", d.ID), now); err != nil {
			return err
		}
	}
	if err := s.saveTransition(tx, d); err != nil {
		return err
	}
	if err := bucket(tx, projectDeploymentsBucket).Put(pairKey(d.ProjectID, d.ID), nil); err != nil {
		return err
	}
	if err := bucket(tx, queuedBucket).Put(pairKey(d.ProjectID, d.ID), nil); err != nil {
		return err
	}
	if err := bucket(tx, deployedCommitsBucket).Put(commitKey(d.ProjectID, d.Alias, d.CommitSHA), itob(d.ID)); err != nil {
		return err
	}
	return bucket(tx, commitsBucket).Put(commitKey(d.ProjectID, d.Alias, d.CommitSHA), itob(d.ID))
}

// CreateDeployment queues d (a manual, import or retried build) without the duplicate check; a
// deployment to a preview alias brings the preview up with d's commit as its head.
func (s *Store) CreateDeployment(d *Deployment) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if bucket(tx, projectsBucket).Get(itob(d.ProjectID)) == nil {
			return ErrNotFound
		}
		now := time.Now().UTC()
		if d.Alias != "" {
			head := PreviewHead{Branch: d.Branch, PullRequest: d.PullRequest, Fork: d.Fork, SHA: d.CommitSHA}
			if _, err := notePreviewHead(tx, d.ProjectID, d.Alias, head, now); err != nil {
				return err
			}
		}
		return s.createDeployment(tx, d, now)
	})
}

// pairedIDs returns the child ids of the (parent id, child id) pair keys of b that start with prefix,
// in key order.
func pairedIDs(b *bolt.Bucket, prefix []byte) ([]int64, error) {
	var ids []int64
	err := iterate(b, prefix, func(k []byte, _ struct{}) (bool, error) {
		ids = append(ids, btoi(k[8:]))
		return true, nil
	})
	return ids, err
}

// finish moves deployment id to a terminal status inside tx and drops it from the queue, the running
// set and, unless it is live on its alias, the commit index; the OnFinish function hears of it once
// tx commits.
func (s *Store) finish(tx *bolt.Tx, id int64, status Status, message string, now time.Time) error {
	d, err := loadDeployment(tx, id)
	if err != nil {
		return err
	}
	return s.finishDeployment(tx, d, status, message, now)
}

// finishDeployment is finish of d, loaded from tx.
func (s *Store) finishDeployment(tx *bolt.Tx, d *Deployment, status Status, message string, now time.Time) error {
	if d.Terminal() {
		return ErrFinished
	}
	if finished := s.finished.Load(); finished != nil {
		tx.OnCommit(func() { (*finished)(status) })
	}
	d.Status, d.ErrorMessage, d.FinishedAt = status, message, &now
	if d.StartedAt != nil {
		secs := now.Sub(*d.StartedAt).Seconds()
		d.BuildTimeSeconds = &secs
	}
	if err := s.saveTransition(tx, d); err != nil {
		return err
	}
	key := pairKey(d.ProjectID, d.ID)
	if err := bucket(tx, queuedBucket).Delete(key); err != nil {
		return err
	}
	if err := bucket(tx, runningBucket).Delete(key); err != nil {
		return err
	}
	active, err := liveID(tx, d.ProjectID, d.Alias)
	if err != nil || active == d.ID {
		return err
	}
	return releaseCommit(tx, d)
}

// releaseCommit points the commit index entry of d's commit at another deployment of the same commit
// and alias that is still queued, running or live, or deletes it when there is none.
func releaseCommit(tx *bolt.Tx, d *Deployment) error {
	commits := bucket(tx, commitsBucket)
	key := commitKey(d.ProjectID, d.Alias, d.CommitSHA)
	if v := commits.Get(key); v == nil || btoi(v) != d.ID {
		return nil
	}
	active, err := liveID(tx, d.ProjectID, d.Alias)
	if err != nil {
		return err
	}
	candidates := []int64{active}
	for _, name := range [][]byte{queuedBucket, runningBucket} {
		ids, err := pairedIDs(bucket(tx, name), itob(d.ProjectID))
		if err != nil {
			return err
		}
		candidates = append(candidates, ids...)
	}
	for _, id := range candidates {
		if id == 0 || id == d.ID {
			continue
		}
		other, err := loadDeployment(tx, id)
		if err != nil {
			return err
		}
		if other.CommitSHA == d.CommitSHA && other.Alias == d.Alias {
			return commits.Put(key, itob(id))
		}
	}
	return commits.Delete(key)
}

// Deployment returns the deployment with the given id.
func (s *Store) Deployment(id int64) (*Deployment, error) {
	var d *Deployment
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		d, err = loadDeployment(tx, id)
		return err
	})
	return d, err
}

// Deployments returns up to limit deployments, newest first, of one project or, with projectID 0, of all.
func (s *Store) Deployments(projectID int64, limit int) ([]*Deployment, error) {
	return s.DeploymentsWhere(projectID, limit, nil)
}

// DeploymentsWhere is Deployments of only the deployments keep accepts (all when keep is nil).
func (s *Store) DeploymentsWhere(projectID int64, limit int, keep func(*Deployment) bool) ([]*Deployment, error) {
	var out []*Deployment
	add := func(d *Deployment) bool {
		if keep == nil || keep(d) {
			out = append(out, d)
		}
		return limit <= 0 || len(out) < limit
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		deployments := bucket(tx, deploymentsBucket)
		if projectID == 0 {
			return iterateBackward(deployments, nil, func(_ []byte, d Deployment) (bool, error) {
				return add(&d), nil
			})
		}
		if bucket(tx, projectsBucket).Get(itob(projectID)) == nil {
			return ErrNotFound
		}
		return iterateBackward(bucket(tx, projectDeploymentsBucket), itob(projectID), func(k []byte, _ struct{}) (bool, error) {
			var d Deployment
			if err := get(deployments, k[8:], &d); err != nil {
				return false, err
			}
			return add(&d), nil
		})
	})
	return out, err
}

// NewestDeploymentOf returns the newest deployment of commit sha to project's alias ("" for
// production), ErrNotFound when there is none left.
func (s *Store) NewestDeploymentOf(projectID int64, alias, sha string) (*Deployment, error) {
	var d *Deployment
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		id := bucket(tx, deployedCommitsBucket).Get(commitKey(projectID, alias, sha))
		if id == nil {
			return ErrNotFound
		}
		d, err = loadDeployment(tx, btoi(id))
		return err
	})
	return d, err
}

// ClaimNext takes the oldest queued deployment whose project is not busy, marks it cloning and
// returns it; it returns nil when there is nothing to claim.
func (s *Store) ClaimNext(busy func(projectID int64) bool) (*Deployment, error) {
	var claimed *Deployment
	err := s.db.Update(func(tx *bolt.Tx) error {
		var best []byte
		err := iterate(bucket(tx, queuedBucket), nil, func(k []byte, _ struct{}) (bool, error) {
			if !busy(btoi(k[:8])) && (best == nil || btoi(k[8:]) < btoi(best[8:])) {
				best = append(best[:0:0], k...)
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		if best == nil {
			return nil
		}
		d, err := loadDeployment(tx, btoi(best[8:]))
		if err != nil {
			return err
		}
		now := time.Now().UTC()
		d.Status, d.StartedAt, d.FinishedAt, d.BuildTimeSeconds, d.ErrorMessage = StatusCloning, &now, nil, nil, ""
		if err := bucket(tx, queuedBucket).Delete(best); err != nil {
			return err
		}
		if err := bucket(tx, runningBucket).Put(best, nil); err != nil {
			return err
		}
		claimed = d
		return s.saveTransition(tx, d)
	})
	return claimed, err
}

// SetStatus moves a running deployment to another in-progress status; it returns ErrFinished when the
// deployment has finished meanwhile (cancelled, say), which tells the worker to stop.
func (s *Store) SetStatus(id int64, status Status) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		d, err := loadDeployment(tx, id)
		if err != nil {
			return err
		}
		if d.Terminal() {
			return ErrFinished
		}
		d.Status = status
		return s.saveTransition(tx, d)
	})
}

// UpdateRunning applies change to a deployment that has not finished, for what its build learns on
// the way (the commit's message and author, the framework); it returns ErrFinished for one that has.
// change must not touch the status or the queue.
func (s *Store) UpdateRunning(id int64, change func(d *Deployment)) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		_, err := updateRunning(tx, id, change)
		return err
	})
}

// updateRunning is UpdateRunning inside tx; it returns the changed deployment.
func updateRunning(tx *bolt.Tx, id int64, change func(d *Deployment)) (*Deployment, error) {
	d, err := loadDeployment(tx, id)
	if err != nil {
		return nil, err
	}
	if d.Terminal() {
		return nil, ErrFinished
	}
	status := d.Status
	change(d)
	d.Status = status
	return d, saveDeployment(tx, d)
}

// RecordDetected records what the build of a running deployment detected, on the deployment and,
// unless a newer deployment's build has detected already, as its project's last detection; it
// returns ErrFinished for a deployment that has finished.
func (s *Store) RecordDetected(id int64, detected DetectedSettings) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		d, err := updateRunning(tx, id, func(d *Deployment) { d.Detected = &detected })
		if err != nil {
			return err
		}
		projects := bucket(tx, projectsBucket)
		var p Project
		if err := get(projects, itob(d.ProjectID), &p); err != nil {
			return err
		}
		if p.DetectedBy > d.ID {
			return nil
		}
		p.Detected, p.DetectedBy = &detected, d.ID
		return put(projects, itob(p.ID), &p)
	})
}

// Fail ends a deployment as failed or cancelled with a message.
func (s *Store) Fail(id int64, status Status, message string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return s.finish(tx, id, status, message, time.Now().UTC())
	})
}

// Skip ends a deployment whose build found a skip marker in its commit's message: cancelled, marked
// Skipped, with message ("Skipped: commit message contains [skip ci]"). It returns ErrFinished for
// a deployment that has finished.
func (s *Store) Skip(id int64, message string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		d, err := loadDeployment(tx, id)
		if err != nil {
			return err
		}
		d.Skipped = true
		return s.finishDeployment(tx, d, StatusCancelled, message, time.Now().UTC())
	})
}

// Cancel cancels a deployment that has not finished; it returns ErrFinished for one that has.
func (s *Store) Cancel(id int64) (*Deployment, error) {
	var d *Deployment
	err := s.db.Update(func(tx *bolt.Tx) (err error) {
		if err = s.finish(tx, id, StatusCancelled, "cancelled by user", time.Now().UTC()); err != nil {
			return err
		}
		d, err = loadDeployment(tx, id)
		return err
	})
	return d, err
}

// MayGoLive reports whether a finished build of deployment id may become live: no deployment of its
// alias created after it is live already.
func (s *Store) MayGoLive(id int64) (bool, error) {
	ok := false
	err := s.db.View(func(tx *bolt.Tx) error {
		d, err := loadDeployment(tx, id)
		if err != nil {
			return err
		}
		active, err := liveID(tx, d.ProjectID, d.Alias)
		ok = active < id && !d.Terminal()
		return err
	})
	return ok, err
}

// Complete marks a running deployment deployed and makes it live on its alias unless a deployment of
// the alias created after it is live already; it reports whether it went live.
func (s *Store) Complete(id int64) (live bool, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		d, err := loadDeployment(tx, id)
		if err != nil {
			return err
		}
		if d.Terminal() {
			return ErrFinished
		}
		active, err := liveID(tx, d.ProjectID, d.Alias)
		if err != nil {
			return err
		}
		if live = active < id; live {
			if err := setLive(tx, d, id); err != nil {
				return err
			}
		}
		return s.finish(tx, id, StatusDeployed, "", time.Now().UTC())
	})
	return live, err
}

// setLive makes d, whose id is id, the live deployment of its project's alias inside tx and keeps
// the commit index right for the deployment it replaces.
func setLive(tx *bolt.Tx, d *Deployment, id int64) error {
	projectID := d.ProjectID
	previous, err := swapLive(tx, d, id)
	if err != nil {
		return err
	}
	if previous != 0 && previous != id {
		old, err := loadDeployment(tx, previous)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if old != nil && old.Terminal() {
			if err := releaseCommit(tx, old); err != nil {
				return err
			}
		}
	}
	commits := bucket(tx, commitsBucket)
	if key := commitKey(projectID, d.Alias, d.CommitSHA); commits.Get(key) == nil {
		return commits.Put(key, itob(id))
	}
	return nil
}

// swapLive stores id as the live deployment of d's project and alias inside tx and returns the one
// it replaces.
func swapLive(tx *bolt.Tx, d *Deployment, id int64) (previous int64, err error) {
	if d.Alias != "" {
		p, err := loadPreview(tx, d.ProjectID, d.Alias)
		if err != nil {
			return 0, err
		}
		previous, p.ActiveDeploymentID = p.ActiveDeploymentID, id
		return previous, savePreview(tx, p)
	}
	projects := bucket(tx, projectsBucket)
	var p Project
	if err := get(projects, itob(d.ProjectID), &p); err != nil {
		return 0, err
	}
	previous, p.ActiveDeploymentID = p.ActiveDeploymentID, id
	return previous, put(projects, itob(d.ProjectID), &p)
}

// Rollback makes an earlier successful deployment of the project live again at once on its alias.
func (s *Store) Rollback(projectID, id int64) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		d, err := loadDeployment(tx, id)
		if err != nil {
			return err
		}
		if d.ProjectID != projectID || d.Status != StatusDeployed {
			return fmt.Errorf("deployment %d is not a successful deployment of project %d", id, projectID)
		}
		if d.Alias != "" {
			if p, err := loadPreview(tx, projectID, d.Alias); err != nil || p.Removed() {
				return fmt.Errorf("deployment %d belongs to preview %s, which was removed", id, d.Alias)
			}
		}
		return setLive(tx, d, id)
	})
}

// Requeue puts a deployment whose build was interrupted by a shutdown back in the queue, or cancels
// it when a newer deployment of its project and alias is queued.
func (s *Store) Requeue(id int64) error {
	return s.db.Update(func(tx *bolt.Tx) error { return s.requeue(tx, id, time.Now().UTC()) })
}

// requeue is Requeue inside tx.
func (s *Store) requeue(tx *bolt.Tx, id int64, now time.Time) error {
	d, err := loadDeployment(tx, id)
	if err != nil {
		return err
	}
	if d.Terminal() {
		return nil
	}
	queued, err := aliasDeployments(tx, queuedBucket, d.ProjectID, d.Alias)
	if err != nil {
		return err
	}
	for _, newer := range queued {
		if newer.ID > id {
			return s.finish(tx, id, StatusCancelled, fmt.Sprintf("superseded by #%d", newer.ID), now)
		}
	}
	d.Status, d.StartedAt = StatusQueued, nil
	if err := s.saveTransition(tx, d); err != nil {
		return err
	}
	key := pairKey(d.ProjectID, d.ID)
	if err := bucket(tx, runningBucket).Delete(key); err != nil {
		return err
	}
	return bucket(tx, queuedBucket).Put(key, nil)
}

// RecoverInterrupted runs at start: deployments that were building when the agent died are queued
// again once, and fail on a second interruption; it returns the deployments it touched.
func (s *Store) RecoverInterrupted() ([]*Deployment, error) {
	var touched []*Deployment
	err := s.db.Update(func(tx *bolt.Tx) error {
		ids, err := pairedIDs(bucket(tx, runningBucket), nil)
		if err != nil {
			return err
		}
		now := time.Now().UTC()
		for _, id := range ids {
			d, err := loadDeployment(tx, id)
			if err != nil {
				return err
			}
			if d.Attempts >= 1 {
				if err := s.finish(tx, id, StatusFailed, "the agent stopped during this build twice; deploy again to retry", now); err != nil {
					return err
				}
			} else {
				d.Attempts++
				if err := saveDeployment(tx, d); err != nil {
					return err
				}
				if err := s.requeue(tx, id, now); err != nil {
					return err
				}
			}
			if d, err = loadDeployment(tx, id); err != nil {
				return err
			}
			touched = append(touched, d)
		}
		return nil
	})
	return touched, err
}

// QueueDepth returns how many deployments wait for a worker.
func (s *Store) QueueDepth() (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		n = bucket(tx, queuedBucket).Stats().KeyN
		return nil
	})
	return n, err
}

// PruneDeployments deletes, for production and for each preview alias of a project apart, the
// deployments beyond the newest keep successful ones (the live one always kept and counted among
// them) and the failed or cancelled ones older than the oldest kept success, returning them so their
// files and logs can be removed.
func (s *Store) PruneDeployments(projectID int64, keep int) ([]*Deployment, error) {
	history, err := s.Deployments(projectID, 0)
	if err != nil {
		return nil, err
	}
	var gone []*Deployment
	err = s.db.Update(func(tx *bolt.Tx) error {
		live, kept := map[string]int64{}, map[string]int{}
		for _, d := range history {
			active, seen := live[d.Alias]
			if !seen {
				if active, err = liveID(tx, projectID, d.Alias); err != nil {
					return err
				}
				live[d.Alias] = active
				// The live deployment is always kept and counts as one of the keep.
				if active != 0 {
					kept[d.Alias] = 1
				}
			}
			switch {
			case !d.Terminal() || d.ID == active:
				continue
			case d.Status == StatusDeployed && kept[d.Alias] < keep:
				kept[d.Alias]++
				continue
			case d.Status != StatusDeployed && kept[d.Alias] < keep:
				continue
			}
			gone = append(gone, d)
			if err := deleteDeployment(tx, d); err != nil {
				return err
			}
		}
		return nil
	})
	return gone, err
}

// deleteDeployment deletes the record of a finished deployment inside tx.
func deleteDeployment(tx *bolt.Tx, d *Deployment) error {
	if err := bucket(tx, deploymentsBucket).Delete(itob(d.ID)); err != nil {
		return err
	}
	return bucket(tx, projectDeploymentsBucket).Delete(pairKey(d.ProjectID, d.ID))
}
