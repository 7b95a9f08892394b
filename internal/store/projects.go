package store

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Project is a project as stored, secrets included.
type Project struct {
	ID            int64  `json:"id"`
	Name          string `json:"name"`
	Slug          string `json:"slug"`
	Repo          string `json:"repo,omitempty"` // owner/name for GitHub projects
	RepoURL       string `json:"repo_url"`
	Private       bool   `json:"private,omitempty"`
	DefaultBranch string `json:"default_branch"`
	// Build settings; empty means detected from the checked-out commit at build time.
	Framework       string `json:"framework,omitempty"`
	InstallCommand  string `json:"install_command,omitempty"`
	BuildCommand    string `json:"build_command,omitempty"`
	OutputDirectory string `json:"output_directory,omitempty"`
	RootDirectory   string `json:"root_directory,omitempty"`
	Target          string `json:"target"`
	// WebhookSecret signs pushes; WebhookID is the GitHub hook's id, 0 for a hand-made hook.
	WebhookSecret string `json:"webhook_secret,omitempty"`
	WebhookID     int64  `json:"webhook_id,omitempty"`
	// WebhookEvents are the events the GitHub hook sends, as the agent last saw it; nil for a hook
	// made before they were recorded, which sends push events only.
	WebhookEvents      []string          `json:"webhook_events,omitempty"`
	Env                map[string]string `json:"env,omitempty"`
	ActiveDeploymentID int64             `json:"active_deployment_id,omitempty"`
	CreatedAt          time.Time         `json:"created_at"`
	// Detected is what the build of deployment DetectedBy, the newest to get that far, detected.
	Detected   *DetectedSettings `json:"detected,omitempty"`
	DetectedBy int64             `json:"detected_by,omitempty"`
	// Domains are the project's custom domains, in the order they were added.
	Domains []string `json:"domains,omitempty"`
	// Trigger rules (contract section 7, checked by package trigger): PreviewBranches and WatchPaths
	// are glob lists with "!" excludes; ForkPreviews is off, approve or on; TriggerMode is webhook
	// or poll.
	PreviewBranches []string `json:"preview_branches,omitempty"`
	PRPreviews      bool     `json:"pr_previews"`
	ForkPreviews    string   `json:"fork_previews"`
	WatchPaths      []string `json:"watch_paths,omitempty"`
	TriggerMode     string   `json:"trigger,omitempty"`
}

// WebhookConfigured reports whether signed pushes can arrive: a GitHub project whose hook exists,
// or a project whose hook was set up by hand.
func (p *Project) WebhookConfigured() bool {
	if p.WebhookSecret == "" {
		return false
	}
	return p.Repo == "" || p.WebhookID != 0
}

// ErrConflict matches every *ConflictError.
var ErrConflict = errors.New("conflict")

// ConflictError is returned when a project would duplicate another's repository; its Message says
// which, for the user.
type ConflictError struct {
	Message string
}

// Error returns the message after "conflict: ".
func (e *ConflictError) Error() string { return ErrConflict.Error() + ": " + e.Message }

// Is reports whether target is ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// repoKey is the project_repos key of a repository and root directory.
func repoKey(repo, rootDir string) []byte {
	return []byte(strings.ToLower(repo) + "\x00" + rootDir)
}

// CreateProject stores a new project, giving it an id and a slug unique among projects that starts
// from p.Slug; it refuses a second project of the same GitHub repository and root directory.
func (s *Store) CreateProject(p *Project) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		projects, slugs, repos := bucket(tx, projectsBucket), bucket(tx, projectSlugsBucket), bucket(tx, projectReposBucket)
		if p.Repo != "" {
			if id := repos.Get(repoKey(p.Repo, p.RootDirectory)); id != nil {
				where := ""
				if p.RootDirectory != "" {
					where = " with root directory " + p.RootDirectory
				}
				return &ConflictError{Message: fmt.Sprintf("repository %s%s is already imported as project %d", p.Repo, where, btoi(id))}
			}
		}
		id, err := projects.NextSequence()
		if err != nil {
			return err
		}
		p.ID = int64(id)
		p.Slug = UniqueSlug(p.Slug, func(s string) bool { return slugs.Get([]byte(s)) != nil })
		// The safe defaults of the trigger rules (schema version 3) when the caller set none.
		p.ForkPreviews, p.TriggerMode = cmp.Or(p.ForkPreviews, "approve"), cmp.Or(p.TriggerMode, "webhook")
		if p.CreatedAt.IsZero() {
			p.CreatedAt = time.Now().UTC()
		}
		if err := slugs.Put([]byte(p.Slug), itob(p.ID)); err != nil {
			return err
		}
		if p.Repo != "" {
			if err := repos.Put(repoKey(p.Repo, p.RootDirectory), itob(p.ID)); err != nil {
				return err
			}
		}
		return put(projects, itob(p.ID), p)
	})
}

// Project returns the project with the given id.
func (s *Store) Project(id int64) (*Project, error) {
	var p Project
	err := s.db.View(func(tx *bolt.Tx) error { return get(bucket(tx, projectsBucket), itob(id), &p) })
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// ProjectBySlug returns the project with the given slug.
func (s *Store) ProjectBySlug(slug string) (*Project, error) {
	return s.projectByIndex(projectSlugsBucket, slug)
}

// projectByIndex returns the project that key names in index, a bucket of keys to project ids.
func (s *Store) projectByIndex(index []byte, key string) (*Project, error) {
	var p Project
	err := s.db.View(func(tx *bolt.Tx) error {
		id := bucket(tx, index).Get([]byte(key))
		if id == nil {
			return ErrNotFound
		}
		return get(bucket(tx, projectsBucket), id, &p)
	})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// Projects returns every project, oldest first.
func (s *Store) Projects() ([]*Project, error) {
	var out []*Project
	err := s.db.View(func(tx *bolt.Tx) error {
		return iterate(bucket(tx, projectsBucket), nil, func(_ []byte, p Project) (bool, error) {
			out = append(out, &p)
			return true, nil
		})
	})
	return out, err
}

// UpdateProject applies change to the stored project inside one transaction and stores the result.
func (s *Store) UpdateProject(id int64, change func(p *Project) error) (*Project, error) {
	var p Project
	err := s.db.Update(func(tx *bolt.Tx) error {
		projects := bucket(tx, projectsBucket)
		if err := get(projects, itob(id), &p); err != nil {
			return err
		}
		oldRepo, oldRoot := p.Repo, p.RootDirectory
		if err := change(&p); err != nil {
			return err
		}
		p.ID = id
		if p.Repo != "" && (p.Repo != oldRepo || p.RootDirectory != oldRoot) {
			repos := bucket(tx, projectReposBucket)
			if other := repos.Get(repoKey(p.Repo, p.RootDirectory)); other != nil && btoi(other) != id {
				return &ConflictError{Message: fmt.Sprintf("repository %s with root directory %q is already project %d", p.Repo, p.RootDirectory, btoi(other))}
			}
			if err := repos.Delete(repoKey(oldRepo, oldRoot)); err != nil {
				return err
			}
			if err := repos.Put(repoKey(p.Repo, p.RootDirectory), itob(id)); err != nil {
				return err
			}
		}
		return put(projects, itob(id), &p)
	})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// DeleteProject removes a project with its deployments, index entries and queue entries, returning
// the deleted deployments so their files can be removed.
func (s *Store) DeleteProject(id int64) ([]*Deployment, error) {
	var gone []*Deployment
	err := s.db.Update(func(tx *bolt.Tx) error {
		var p Project
		if err := get(bucket(tx, projectsBucket), itob(id), &p); err != nil {
			return err
		}
		prefix := itob(id)
		for _, name := range [][]byte{projectDeploymentsBucket, queuedBucket, runningBucket, commitsBucket, branchHeadsBucket,
			deployedCommitsBucket, previewsBucket, githubDeploymentsBucket} {
			if err := deletePrefix(bucket(tx, name), prefix); err != nil {
				return err
			}
		}
		// A target of this project alone has nothing left to tell.
		if err := deleteWhere(bucket(tx, notificationsBucket), nil, func(n Notification) bool { return n.ProjectID == id }); err != nil {
			return err
		}
		deployments := bucket(tx, deploymentsBucket)
		err := iterate(deployments, nil, func(_ []byte, d Deployment) (bool, error) {
			if d.ProjectID == id {
				gone = append(gone, &d)
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		for _, d := range gone {
			if err := deployments.Delete(itob(d.ID)); err != nil {
				return err
			}
		}
		if err := bucket(tx, projectSlugsBucket).Delete([]byte(p.Slug)); err != nil {
			return err
		}
		if p.Repo != "" {
			if err := bucket(tx, projectReposBucket).Delete(repoKey(p.Repo, p.RootDirectory)); err != nil {
				return err
			}
		}
		for _, name := range p.Domains {
			if err := bucket(tx, domainsBucket).Delete([]byte(name)); err != nil {
				return err
			}
		}
		return bucket(tx, projectsBucket).Delete(itob(id))
	})
	return gone, err
}

// deletePrefix deletes every key of b that starts with prefix.
func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	return deleteWhere(b, prefix, func(struct{}) bool { return true })
}

// deleteWhere deletes every key of b that starts with prefix and whose value match accepts.
func deleteWhere[T any](b *bolt.Bucket, prefix []byte, match func(v T) bool) error {
	var keys [][]byte
	err := iterate(b, prefix, func(k []byte, v T) (bool, error) {
		if match(v) {
			keys = append(keys, append([]byte(nil), k...))
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
