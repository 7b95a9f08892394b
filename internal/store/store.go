// Package store owns miaobu's durable state: projects, their previews, deployments, the commit
// index, the record of webhook deliveries, the outbox of messages to send and the notification
// targets, in one bbolt file.
//
// Schema (version 4). Every bucket lives inside the root bucket "v1"; keys that are ids are 8-byte
// big-endian integers, so bbolt's byte order is id order; values are JSON.
//
//	meta                 "schema" → the schema version, in decimal
//	projects             project id → Project
//	project_slugs        slug → project id
//	project_repos        "owner/name" NUL root directory → project id (one import per repository and root)
//	deployments          deployment id → Deployment
//	project_deployments  project id ‖ deployment id → empty (a project's history, oldest first)
//	queued               project id ‖ deployment id → empty (deployments waiting for a worker)
//	running              project id ‖ deployment id → empty (deployments a worker has claimed)
//	commits              project id ‖ alias ‖ NUL ‖ commit SHA → deployment id (a deployment of that
//	                     commit to that alias, "" for production, that is queued, running or live:
//	                     the duplicate check is this one lookup)
//	previews             project id ‖ alias → Preview (a pull request's or preview branch's alias,
//	                     its head and its live deployment; a branch preview's Branch owns the alias
//	                     and its host label while the preview is up)
//	deliveries           delivery sequence → Delivery
//	outbox               message id → outbox.Message (reports and notifications not yet sent, oldest
//	                     first; only the oldest message of a key is sent, so a key's messages keep order)
//	branch_heads         project id ‖ branch → commit SHA of the branch's last accepted push, or
//	                     DeletedHead once a preview branch is deleted
//	deployed_commits     project id ‖ alias ‖ NUL ‖ commit SHA → id of the commit's newest deployment
//	                     to that alias, kept when that deployment is pruned or its preview removed
//	                     (with branch_heads, the stale-delivery check)
//	notifications        notification target id → Notification (where events are told)
//	domains              custom domain (lower-case ASCII) → project id (a domain belongs to one
//	                     project; the project lists its own in Project.Domains)
//	github_deployments   project id ‖ GitHub deployment id → deployment id (the deployment events
//	                     already acted on, built or put live again; a replay changes nothing)
//	login_codes          keyed hash of a dashboard login code → Expiring (usable once, until it expires)
//	sessions             keyed hash of a dashboard session token → Expiring (a signed-in browser)
//
// Project and deployment ids come from the sequences of their buckets and are never reused.
//
// Open creates the buckets that are missing, then runs the migrations from the recorded schema
// version to the latest one in the same transaction, so an upgrade is all or nothing; it refuses a
// store whose version is newer than this miaobu knows. The root bucket keeps its name "v1" across
// versions.
package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var (
	rootBucket               = []byte("v1")
	metaBucket               = []byte("meta")
	projectsBucket           = []byte("projects")
	projectSlugsBucket       = []byte("project_slugs")
	projectReposBucket       = []byte("project_repos")
	deploymentsBucket        = []byte("deployments")
	projectDeploymentsBucket = []byte("project_deployments")
	queuedBucket             = []byte("queued")
	runningBucket            = []byte("running")
	commitsBucket            = []byte("commits")
	deliveriesBucket         = []byte("deliveries")
	outboxBucket             = []byte("outbox")
	branchHeadsBucket        = []byte("branch_heads")
	deployedCommitsBucket    = []byte("deployed_commits")
	previewsBucket           = []byte("previews")
	notificationsBucket      = []byte("notifications")
	domainsBucket            = []byte("domains")
	githubDeploymentsBucket  = []byte("github_deployments")
	loginCodesBucket         = []byte("login_codes")
	sessionsBucket           = []byte("sessions")

	allBuckets = [][]byte{metaBucket, projectsBucket, projectSlugsBucket, projectReposBucket, deploymentsBucket,
		projectDeploymentsBucket, queuedBucket, runningBucket, commitsBucket, deliveriesBucket, outboxBucket,
		branchHeadsBucket, deployedCommitsBucket, previewsBucket, notificationsBucket, domainsBucket, githubDeploymentsBucket,
		loginCodesBucket, sessionsBucket}
	schemaKey = []byte("schema")
)

// ErrNotFound is returned when a project or deployment does not exist.
var ErrNotFound = errors.New("not found")

// ErrLocked is returned by Open when another process holds the store.
var ErrLocked = errors.New("the store is in use by another miaobu agent")

// Store is the open bbolt file and its group-commit writer.
type Store struct {
	db     *bolt.DB
	writes chan *groupWrite
	done   chan struct{}
	// closing guards writes: senders hold it for reading, Close takes it to close the channel,
	// so a late webhook gets ErrClosed instead of sending on a closed channel.
	closing sync.RWMutex
	closed  bool
	// enqueued wakes the outbox worker after a commit that enqueued messages.
	enqueued chan struct{}
	// finished is told the status of every deployment that finishes (see OnFinish).
	finished atomic.Pointer[func(status Status)]
	// reporter makes the messages that report a deployment's changes of status (see OnTransition).
	reporter atomic.Pointer[Reporter]
	// notifier makes the messages that tell notification targets of events (see OnNotify).
	notifier atomic.Pointer[Notifier]
}

// OnFinish makes the store call fn with the final status (deployed, failed or cancelled) of every
// deployment that finishes from now on, whatever ended it, once the change is committed.
func (s *Store) OnFinish(fn func(status Status)) { s.finished.Store(&fn) }

// ErrClosed is returned by writes that arrive after Close.
var ErrClosed = errors.New("the store is closed")

// FileName is the name of the bbolt file inside the data directory.
const FileName = "miaobu.db"

// Open opens (creating if needed) the store in dataDir, waiting at most timeout for another agent's
// lock; a store file that is empty, truncated or damaged is refused with a *DamagedError.
func Open(dataDir string, timeout time.Duration) (*Store, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data dir: %w", err)
	}
	path := filepath.Join(dataDir, FileName)
	if err := checkExisting(path, timeout); err != nil {
		return nil, err
	}
	var db *bolt.DB
	err := recoverDamage(path, func() (err error) {
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout,
			// The freelist is rebuilt on open instead of written on every commit: fewer pages per fsync,
			// the same durability (as etcd runs bbolt).
			NoFreelistSync: true, FreelistType: bolt.FreelistMapType,
			// Fewer remaps while the file grows; a remap blocks every transaction.
			InitialMmapSize: 64 << 20})
		return err
	})
	var damaged *DamagedError
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, lockedError(path)
	case errors.As(err, &damaged):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return migrate(tx, migrations) }); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	s := &Store{db: db, writes: make(chan *groupWrite, maxGroup), done: make(chan struct{}), enqueued: make(chan struct{}, 1)}
	go s.writer()
	return s, nil
}

// lockedError says that another agent holds the store at path.
func lockedError(path string) error {
	return fmt.Errorf("%w (%s): is another `miaobu agent` running with this data dir?", ErrLocked, path)
}

// Close stops the group-commit writer once the writes already queued are committed, and closes the file.
func (s *Store) Close() error {
	s.closing.Lock()
	if !s.closed {
		s.closed = true
		close(s.writes)
	}
	s.closing.Unlock()
	<-s.done
	return s.db.Close()
}

// bucket returns the named bucket inside the root bucket.
func bucket(tx *bolt.Tx, name []byte) *bolt.Bucket {
	return tx.Bucket(rootBucket).Bucket(name)
}

// itob encodes an id as an 8-byte big-endian key.
func itob(id int64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(id))
	return b
}

// btoi decodes an 8-byte big-endian key.
func btoi(b []byte) int64 { return int64(binary.BigEndian.Uint64(b)) }

// pairKey is the key of a (parent id, child id) pair.
func pairKey(a, b int64) []byte { return append(itob(a), itob(b)...) }

// commitKey is the commits-index key of a commit deployed to a project's alias ("" for production).
func commitKey(projectID int64, alias, sha string) []byte {
	return append(aliasCommitsPrefix(projectID, alias), sha...)
}

// aliasCommitsPrefix is the beginning of the commits-index keys of a project's alias.
func aliasCommitsPrefix(projectID int64, alias string) []byte {
	return append(append(itob(projectID), alias...), 0)
}

// get decodes the JSON value at key into v, returning ErrNotFound when absent.
func get(b *bolt.Bucket, key []byte, v any) error {
	data := b.Get(key)
	if data == nil {
		return ErrNotFound
	}
	return decode(data, v)
}

// decode decodes a stored value into v.
func decode(data []byte, v any) error { return json.Unmarshal(data, v) }

// put encodes v as JSON at key.
func put(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}
