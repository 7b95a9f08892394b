package cluster

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/miaobu/miaobu/internal/keylock"
	"github.com/miaobu/miaobu/internal/outbox"
	"github.com/miaobu/miaobu/internal/store"
)

// opTimeout bounds one store operation: without a quorum it fails then, so that a webhook gets
// 503 instead of waiting.
const opTimeout = 5 * time.Second

// DefaultLeaseTTL is how long a build's lease on its project outlives its last renewal.
const DefaultLeaseTTL = time.Minute

// ErrUnavailable wraps the failures of reads and writes the cluster could not answer (no quorum,
// or leaders being elected).
var ErrUnavailable = errors.New("the cluster has no quorum")

// Options configure a Store.
type Options struct {
	// LeaseTTL is how long a lease outlives its last renewal; 0 means DefaultLeaseTTL.
	LeaseTTL time.Duration
	Log      *slog.Logger
}

// Store is miaobu's state on the cluster's JetStream, for the domain and the build workers; it is
// safe for concurrent use.
type Store struct {
	node     *Node
	log      *slog.Logger
	leaseTTL time.Duration

	projects, deployments, slugs, repos, domains, notifications, ids, leases, meta, outbox, sessions jetstream.KeyValue
	jobs, deliveries                                                                                 jetstream.Stream
	builders                                                                                         jetstream.Consumer
	sites                                                                                            jetstream.ObjectStore

	// claims are the builds this node runs, by deployment id; recordLocks serialise this node's
	// writes of each project's record, and batches are the changes of each project waiting for
	// its next write, under batchesMu (see changeRecord); recordWrites counts the compare-and-sets
	// of project records this node made.
	mu           sync.Mutex
	claims       map[int64]*claim
	recordLocks  keylock.Locks
	batchesMu    sync.Mutex
	batches      map[int64]*recordBatch
	recordWrites atomic.Int64
	// finished is told the status of every deployment that finishes (see OnFinish).
	finished atomic.Pointer[func(status store.Status)]
	// leaseLost is told of every build of this node whose claim was taken over (see OnLeaseLost).
	leaseLost atomic.Pointer[func(deploymentID int64)]
	// reporter and notifier make the outbox messages of a deployment's changes (see OnTransition
	// and OnNotify); enqueued wakes the outbox worker, and sender holds the outbox lease.
	reporter atomic.Pointer[store.Reporter]
	notifier atomic.Pointer[store.Notifier]
	enqueued chan struct{}
	sender   sender
	// stranded are the deployments the reconciler's last pass found unfinished outside their
	// project's queue and running set (see endStranded); only the reconciler uses it.
	stranded map[int64]bool
	// unwritten are the queued or running deployments whose record the reconciler's last pass
	// found missing, with when a pass first did (see dropUnwritten).
	unwritten map[int64]time.Time
	// dieAfterChange, set by tests, leaves the messages a change wrote on its record unsent, as a
	// node killed right after the change's compare-and-set does.
	dieAfterChange atomic.Bool
}

// Open creates the buckets and streams that are missing (every node does, idempotently) and
// returns the Store on node.
func Open(ctx context.Context, node *Node, opts Options) (*Store, error) {
	s := &Store{node: node, log: opts.Log, leaseTTL: cmp.Or(opts.LeaseTTL, DefaultLeaseTTL), claims: map[int64]*claim{},
		enqueued: make(chan struct{}, 1)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	buckets := []bucketSpec{
		{&s.projects, jetstream.KeyValueConfig{Bucket: "projects", History: 1}},
		{&s.deployments, jetstream.KeyValueConfig{Bucket: "deployments", History: 1}},
		{&s.slugs, jetstream.KeyValueConfig{Bucket: "slugs", History: 1}},
		{&s.repos, jetstream.KeyValueConfig{Bucket: "repos", History: 1}},
		{&s.domains, jetstream.KeyValueConfig{Bucket: "domains", History: 1}},
		{&s.notifications, jetstream.KeyValueConfig{Bucket: "notifications", History: 1}},
		{&s.ids, jetstream.KeyValueConfig{Bucket: "ids", History: 1}},
		{&s.leases, jetstream.KeyValueConfig{Bucket: "leases", History: 1, TTL: s.leaseTTL}},
		{&s.meta, jetstream.KeyValueConfig{Bucket: "meta", History: 1}},
		{&s.outbox, jetstream.KeyValueConfig{Bucket: "outbox", History: 1}},
		{&s.sessions, jetstream.KeyValueConfig{Bucket: "sessions", History: 1, TTL: sessionsTTL}},
	}
	// Each bucket and stream is a Raft group of its own whose first leader takes seconds to elect:
	// they are created at once so that the elections overlap.
	var g errgroup.Group
	for _, b := range buckets {
		g.Go(func() error {
			return s.retry(ctx, "creating the "+b.cfg.Bucket+" bucket", func(ctx context.Context) (err error) {
				*b.kv, err = createBucket(ctx, node.js, b.cfg)
				return err
			})
		})
	}
	g.Go(func() error {
		err := s.retry(ctx, "creating the JOBS stream", func(ctx context.Context) (err error) {
			// Latest wins: a new token of a project's alias replaces the one waiting.
			s.jobs, err = node.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "JOBS", Subjects: []string{"jobs.>"},
				Retention: jetstream.WorkQueuePolicy, MaxMsgsPerSubject: 1, Discard: jetstream.DiscardOld,
				Replicas: Replicas, Storage: jetstream.FileStorage})
			return err
		})
		if err != nil {
			return err
		}
		return s.retry(ctx, "creating the builders consumer", func(ctx context.Context) (err error) {
			// Pulled only when a build slot is free, one token at a time.
			s.builders, err = s.jobs.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "builders",
				AckPolicy: jetstream.AckExplicitPolicy, AckWait: 2 * time.Minute, Replicas: Replicas})
			return err
		})
	})
	g.Go(func() error {
		return s.retry(ctx, "creating the DELIVERIES stream", func(ctx context.Context) (err error) {
			s.deliveries, err = node.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "DELIVERIES", Subjects: []string{"deliveries.>"},
				MaxMsgs: maxDeliveries, Replicas: Replicas, Storage: jetstream.FileStorage})
			return err
		})
	})
	g.Go(func() error {
		return s.retry(ctx, "creating the sites object store", func(ctx context.Context) (err error) {
			s.sites, err = node.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "sites",
				Replicas: Replicas, Storage: jetstream.FileStorage})
			return err
		})
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := s.waitForLeaders(ctx, buckets); err != nil {
		return nil, err
	}
	if err := s.listenForEnqueued(); err != nil {
		return nil, err
	}
	return s, nil
}

// createBucket creates or updates a key-value bucket whose reads go to its stream's leader: the
// stream nats.go makes for a bucket answers reads from any replica (direct get), and a replica
// that lags would not yet know what another node just wrote, such as a new project.
func createBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	duplicates := 2 * time.Minute
	if cfg.TTL > 0 && cfg.TTL < duplicates {
		duplicates = cfg.TTL
	}
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "KV_" + cfg.Bucket, Subjects: []string{"$KV." + cfg.Bucket + ".>"},
		MaxMsgsPerSubject: int64(cfg.History), MaxBytes: -1, MaxAge: cfg.TTL, MaxMsgSize: -1, Storage: jetstream.FileStorage,
		Replicas: Replicas, AllowRollup: true, DenyDelete: true, Duplicates: duplicates, MaxMsgs: -1, MaxConsumers: -1,
		Discard: jetstream.DiscardNew})
	if err != nil {
		return nil, err
	}
	return js.KeyValue(ctx, cfg.Bucket)
}

// retryAttempt bounds one attempt of retry: the server leaves unanswered a create that races
// another node's create of the same stream, so a late attempt is made again.
const retryAttempt = 10 * time.Second

// retry runs attempt, each time with a deadline of retryAttempt, until it succeeds or ctx ends:
// while a cluster starts, its leaders are still being elected. what names the work, for the log.
func (s *Store) retry(ctx context.Context, what string, attempt func(ctx context.Context) error) error {
	for {
		actx, cancel := context.WithTimeout(ctx, retryAttempt)
		err := attempt(actx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, err)
		case <-time.After(200 * time.Millisecond):
		}
		s.log.Info("cluster: trying again: "+what, "err", err)
	}
}

// bucketSpec is a key-value bucket of the store and its configuration.
type bucketSpec struct {
	kv  *jetstream.KeyValue
	cfg jetstream.KeyValueConfig
}

// waitForLeaders returns once every bucket and stream answers a read from its leader: a created
// stream may still be electing one, and the store is ready only once JetStream answers.
func (s *Store) waitForLeaders(ctx context.Context, buckets []bucketSpec) error {
	var g errgroup.Group
	for _, b := range buckets {
		g.Go(func() error {
			return s.retry(ctx, "reading the "+b.cfg.Bucket+" bucket", func(ctx context.Context) error {
				_, err := (*b.kv).Get(ctx, "ready")
				if errors.Is(err, jetstream.ErrKeyNotFound) {
					return nil
				}
				return err
			})
		})
	}
	for _, stream := range []jetstream.Stream{s.jobs, s.deliveries} {
		g.Go(func() error {
			return s.retry(ctx, "reading the "+stream.CachedInfo().Config.Name+" stream", func(ctx context.Context) error {
				_, err := stream.Info(ctx)
				return err
			})
		})
	}
	return g.Wait()
}

// maxDeliveries is how many delivery records are kept.
const maxDeliveries = 10000

// Node returns the node the store runs on.
func (s *Store) Node() *Node { return s.node }

// OnFinish makes the store call fn with the final status of every deployment that finishes from now
// on, whatever ended it, once the change is acknowledged.
func (s *Store) OnFinish(fn func(status store.Status)) { s.finished.Store(&fn) }

// opContext returns a context for one store operation.
func opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

// unavailable wraps a failed write so that the caller can tell a missing quorum; the store's
// answers (not found, finished, refusals) pass unwrapped.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	for _, answer := range []error{store.ErrNotFound, store.ErrFinished, store.ErrStaleDeletion, store.ErrHeadMoved, ErrUnavailable} {
		if errors.Is(err, answer) {
			return err
		}
	}
	var conflict *store.ConflictError
	var taken *store.AliasTakenError
	if errors.As(err, &conflict) || errors.As(err, &taken) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// idKey is the key of an id.
func idKey(id int64) string { return strconv.FormatInt(id, 10) }

// encodedKey is a KV key for text that may hold characters keys cannot.
func encodedKey(text string) string { return base64.RawURLEncoding.EncodeToString([]byte(text)) }

// nextID returns a new id of kind, unique and larger than every id handed out before.
func (s *Store) nextID(ctx context.Context, kind string) (int64, error) {
	var rev uint64
	err := whileElecting(ctx, func() (err error) {
		rev, err = s.ids.Put(ctx, kind, nil)
		return err
	})
	return int64(rev), err
}

// electionPause is how long whileElecting waits before asking a stream again.
const electionPause = 100 * time.Millisecond

// whileElecting runs op until it gets an answer, within ctx: a stream that is electing a leader
// answers nobody for a moment (a request nobody received is safe to send again), and an
// operation should wait that out rather than report the cluster unavailable.
func whileElecting(ctx context.Context, op func() error) error {
	for {
		err := op()
		if !errors.Is(err, jetstream.ErrNoStreamResponse) && !errors.Is(err, nats.ErrNoResponders) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(electionPause):
		}
	}
}

// getJSON reads key of kv into v and returns its revision; store.ErrNotFound when absent.
func getJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) (uint64, error) {
	var e jetstream.KeyValueEntry
	err := whileElecting(ctx, func() (err error) {
		e, err = kv.Get(ctx, key)
		return err
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, store.ErrNotFound
	}
	if err != nil {
		return 0, unavailable(err)
	}
	return e.Revision(), json.Unmarshal(e.Value(), v)
}

// casJSON writes v at key of kv if its revision is still rev (0: if the key does not exist).
func casJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any, rev uint64) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return whileElecting(ctx, func() (err error) {
		if rev == 0 {
			_, err = kv.Create(ctx, key, data)
		} else {
			_, err = kv.Update(ctx, key, data, rev)
		}
		return err
	})
}

// conflicted reports whether err says another writer changed the key first.
func conflicted(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// projectRecord is a project with every index of it that one change must read and write at once;
// its revision is the fence of a build that goes live.
type projectRecord struct {
	Project store.Project `json:"project"`
	// Queued and Running are the deployments waiting for a build and being built.
	Queued  map[int64]slot `json:"queued,omitempty"`
	Running map[int64]slot `json:"running,omitempty"`
	// Commits maps alias NUL sha to the deployment of that commit that is queued, running or live:
	// the duplicate check; Deployed to the newest deployment of it ever (the stale check).
	Commits  map[string]int64 `json:"commits,omitempty"`
	Deployed map[string]int64 `json:"deployed,omitempty"`
	// LiveSHA is the commit live on each alias.
	LiveSHA map[string]string `json:"live_sha,omitempty"`
	// Heads maps a branch to its last accepted push's commit, or store.DeletedHead once a preview
	// branch is deleted; Deployed keeps a preview's commits when it is taken down, for the stale
	// check after its branch's deletion.
	Heads    map[string]string         `json:"heads,omitempty"`
	Previews map[string]*store.Preview `json:"previews,omitempty"`
	// History lists the project's deployments, oldest first; LastID is the newest ever created.
	History []int64 `json:"history,omitempty"`
	LastID  int64   `json:"last_id,omitempty"`
	// GitHubDeployments maps the GitHub deployments acted on (built, or put live again) to the
	// deployment that did.
	GitHubDeployments map[int64]int64 `json:"github_deployments,omitempty"`
	// Epoch counts claims of builds: a build holds the epoch of its claim, and a change of it
	// fences the build out.
	Epoch int64 `json:"epoch,omitempty"`
	// Unsent are the numbered notifications of changes of the record (a preview taken down), oldest
	// first, that the change wrote and that are not yet known to be in the outbox.
	Unsent []outbox.Message `json:"unsent,omitempty"`
}

// slot is a queued or running deployment in its project's record.
type slot struct {
	Alias string `json:"alias"`
	SHA   string `json:"sha"`
	// Node and Epoch are the running build's node and the epoch of its claim.
	Node  string `json:"node,omitempty"`
	Epoch int64  `json:"epoch,omitempty"`
}

// commitKey is the key of a commit on an alias in Commits and Deployed.
func commitKey(alias, sha string) string { return alias + "\x00" + sha }

// liveID returns the live deployment of alias, 0 when none.
func (r *projectRecord) liveID(alias string) int64 {
	if alias == "" {
		return r.Project.ActiveDeploymentID
	}
	if p := r.Previews[alias]; p != nil {
		return p.ActiveDeploymentID
	}
	return 0
}

// setLive makes deployment id of commit sha live on alias and keeps the commit index right for the
// one it replaces.
func (r *projectRecord) setLive(id int64, alias, sha string) error {
	previous, previousSHA := r.liveID(alias), r.LiveSHA[alias]
	if alias == "" {
		r.Project.ActiveDeploymentID = id
	} else {
		p := r.Previews[alias]
		if p == nil {
			return fmt.Errorf("preview %s of project %d: %w", alias, r.Project.ID, store.ErrNotFound)
		}
		p.ActiveDeploymentID = id
	}
	r.LiveSHA[alias] = sha
	if previous != 0 && previous != id {
		r.releaseCommit(previous, alias, previousSHA)
	}
	if _, ok := r.Commits[commitKey(alias, sha)]; !ok {
		r.Commits[commitKey(alias, sha)] = id
	}
	return nil
}

// supersederOf returns the newest deployment of alias that r queues, runs or has live when it
// neither queues nor runs deployment id, which that newer one superseded then; 0 otherwise.
func (r *projectRecord) supersederOf(id int64, alias string) int64 {
	if _, queued := r.Queued[id]; queued {
		return 0
	}
	if _, running := r.Running[id]; running {
		return 0
	}
	return r.newerThan(id, alias)
}

// newerThan returns the newest deployment of alias newer than id that is queued, running or live,
// 0 when there is none: the one that supersedes id.
func (r *projectRecord) newerThan(id int64, alias string) int64 {
	newest := int64(0)
	for _, set := range []map[int64]slot{r.Queued, r.Running} {
		for other, sl := range set {
			if sl.Alias == alias && other > max(id, newest) {
				newest = other
			}
		}
	}
	if live := r.liveID(alias); live > max(id, newest) {
		newest = live
	}
	return newest
}

// releaseCommit points the commit index entry of deployment id at another deployment of the same
// commit and alias that is queued, running or live, or deletes it when there is none.
func (r *projectRecord) releaseCommit(id int64, alias, sha string) {
	key := commitKey(alias, sha)
	if r.Commits[key] != id {
		return
	}
	if live := r.liveID(alias); live != 0 && live != id && r.LiveSHA[alias] == sha {
		r.Commits[key] = live
		return
	}
	for _, set := range []map[int64]slot{r.Queued, r.Running} {
		for other, sl := range set {
			if other != id && sl.Alias == alias && sl.SHA == sha {
				r.Commits[key] = other
				return
			}
		}
	}
	delete(r.Commits, key)
}

// finish drops deployment id from the queue and the running set and, unless it is live, from the
// commit index; it reports whether the deployment was queued or running.
func (r *projectRecord) finish(id int64) bool {
	sl, ok := r.Queued[id]
	if !ok {
		sl, ok = r.Running[id]
	}
	if !ok {
		return false
	}
	delete(r.Queued, id)
	delete(r.Running, id)
	if r.liveID(sl.Alias) != id {
		r.releaseCommit(id, sl.Alias, sl.SHA)
	}
	return true
}

// enqueue adds deployment id of commit sha to alias's queue and returns the older queued
// deployments of the alias that it supersedes, which it drops.
func (r *projectRecord) enqueue(id int64, alias, sha string) []int64 {
	var superseded []int64
	for other, sl := range r.Queued {
		if sl.Alias == alias && other < id {
			superseded = append(superseded, other)
		}
	}
	for _, other := range superseded {
		r.finish(other)
	}
	r.Queued[id] = slot{Alias: alias, SHA: sha}
	r.Commits[commitKey(alias, sha)] = id
	r.Deployed[commitKey(alias, sha)] = id
	forgetOldest(r.Deployed, maxRemembered)
	r.History = append(r.History, id)
	r.LastID = id
	return superseded
}

// maxRemembered bounds the commits a project's record remembers as deployed, and the GitHub
// deployments it remembers as handled: every change reads and writes the whole record. A replay of
// a delivery older than that many deployments is no longer recognised as stale.
const maxRemembered = 1000

// forgetOldest deletes from m the entries of the oldest deployments beyond the newest limit.
func forgetOldest[K comparable](m map[K]int64, limit int) {
	if len(m) <= limit {
		return
	}
	ids := slices.Sorted(maps.Values(m))
	cutoff := ids[len(ids)-limit]
	maps.DeleteFunc(m, func(_ K, id int64) bool { return id < cutoff })
}

// notePreviewHead creates or updates a preview with a new head (see store.NoteHead); a branch's
// head is refused with an *store.AliasTakenError when another branch's preview withholds the alias
// (see store.Preview.Withholds).
func (r *projectRecord) notePreviewHead(alias string, head store.PreviewHead, now time.Time) (*store.Preview, error) {
	if head.PullRequest == 0 {
		for _, pv := range r.Previews {
			if taken := pv.Withholds(r.Project.Slug, alias, head.Branch); taken != nil {
				return nil, taken
			}
		}
	}
	p := store.NoteHead(r.Previews[alias], r.Project.ID, alias, head, now)
	r.Previews[alias] = p
	return p, nil
}

// fill makes the record's maps usable after decoding.
func (r *projectRecord) fill() {
	if r.Queued == nil {
		r.Queued = map[int64]slot{}
	}
	if r.Running == nil {
		r.Running = map[int64]slot{}
	}
	for _, m := range []*map[string]int64{&r.Commits, &r.Deployed} {
		if *m == nil {
			*m = map[string]int64{}
		}
	}
	for _, m := range []*map[string]string{&r.LiveSHA, &r.Heads} {
		if *m == nil {
			*m = map[string]string{}
		}
	}
	if r.Previews == nil {
		r.Previews = map[string]*store.Preview{}
	}
	if r.GitHubDeployments == nil {
		r.GitHubDeployments = map[int64]int64{}
	}
}

// record reads a project's record and its revision.
func (s *Store) record(ctx context.Context, id int64) (*projectRecord, uint64, error) {
	var r projectRecord
	rev, err := getJSON(ctx, s.projects, idKey(id), &r)
	if err != nil {
		return nil, 0, err
	}
	r.fill()
	return &r, rev, nil
}

// maxBatch bounds how many changes of one project's record one compare-and-set makes.
const maxBatch = 64

// errRunAlone tells a change that its batch failed on another change and that it must run alone.
var errRunAlone = errors.New("the change must run alone")

// recordChange is one caller's change of a project's record waiting in a batch.
type recordChange struct {
	change func(r *projectRecord) error
	// done receives the outcome: the record written, the write's error, or errRunAlone.
	done chan recordOutcome
}

// recordOutcome is what became of a batch's write of a project's record.
type recordOutcome struct {
	written *projectRecord
	err     error
}

// recordBatch is the changes of one project's record that arrived on this node while its previous
// write was in flight, in arrival order.
type recordBatch struct {
	changes []*recordChange
}

// changeRecord applies change to a project's record and writes it back if nobody wrote it
// meanwhile, trying again on a fresh read otherwise; change may run several times, so it resets
// what it captures at its start. The changes of one project made on this node at once join one
// batch (see writeBatch), so that a burst of webhooks for one project makes one compare-and-set
// instead of retrying each other's, and only other nodes' writes make them try again. It returns
// the record written, which may hold later changes of the same batch and which the batch's callers
// share, reading it only; a caller that needs the record as its own change left it captures that
// in change.
func (s *Store) changeRecord(ctx context.Context, id int64, change func(r *projectRecord) error) (*projectRecord, error) {
	c := &recordChange{change: change, done: make(chan recordOutcome, 1)}
	s.batchesMu.Lock()
	b := s.batches[id]
	leader := b == nil || len(b.changes) == maxBatch
	if leader {
		b = &recordBatch{}
		if s.batches == nil {
			s.batches = map[int64]*recordBatch{}
		}
		s.batches[id] = b
	}
	b.changes = append(b.changes, c)
	s.batchesMu.Unlock()
	if leader {
		s.writeBatch(ctx, id, b)
	}
	if outcome := <-c.done; !errors.Is(outcome.err, errRunAlone) {
		return outcome.written, outcome.err
	}
	unlock := s.lockRecord(id)
	defer unlock()
	return s.writeRecord(ctx, id, change)
}

// writeBatch waits for this node's lock on a project's record, closes batch b to newcomers and
// applies its changes in order to one read of the record, then writes it and tells every change
// the outcome. Like bbolt's DB.Batch, a change that fails is told to run alone, and the others are
// applied again without it to a fresh read, so that it neither fails nor alters them. The write
// outlives a cancellation of ctx, which belongs to one caller of many.
func (s *Store) writeBatch(ctx context.Context, id int64, b *recordBatch) {
	unlock := s.lockRecord(id)
	defer unlock()
	s.batchesMu.Lock()
	if s.batches[id] == b {
		delete(s.batches, id)
	}
	changes := b.changes
	s.batchesMu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
	defer cancel()
	for {
		failed := -1
		written, err := s.writeRecord(ctx, id, func(r *projectRecord) error {
			for i, c := range changes {
				if err := c.change(r); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 || len(changes) == 1 {
			for _, c := range changes {
				c.done <- recordOutcome{written, err}
			}
			return
		}
		changes[failed].done <- recordOutcome{err: errRunAlone}
		changes = slices.Delete(changes, failed, failed+1)
	}
}

// writeRecord applies change to a fresh read of a project's record and writes it back if nobody
// wrote it meanwhile, trying again otherwise, and returns the record written; the caller holds
// this node's lock on the record.
func (s *Store) writeRecord(ctx context.Context, id int64, change func(r *projectRecord) error) (*projectRecord, error) {
	for attempt := 1; ; attempt++ {
		r, rev, err := s.record(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := change(r); err != nil {
			return nil, err
		}
		s.recordWrites.Add(1)
		err = casJSON(ctx, s.projects, idKey(id), r, rev)
		if err == nil {
			return r, nil
		}
		if !conflicted(err) {
			return nil, err
		}
		// Another node wrote first: nodes that lost the race all at once try again at different times.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(rand.N(time.Duration(min(attempt, 10)) * time.Millisecond)):
		}
	}
}

// lockRecord takes this node's lock on a project's record and returns the unlock function.
func (s *Store) lockRecord(id int64) func() {
	return s.recordLocks.Lock(id)
}

// Project returns the project with the given id.
func (s *Store) Project(id int64) (*store.Project, error) {
	ctx, cancel := opContext()
	defer cancel()
	r, _, err := s.record(ctx, id)
	if err != nil {
		return nil, err
	}
	return &r.Project, nil
}

// ProjectBySlug returns the project with the given slug.
func (s *Store) ProjectBySlug(slug string) (*store.Project, error) {
	return s.projectByIndex(s.slugs, slug)
}

// ProjectByDomain returns the project that a custom domain belongs to.
func (s *Store) ProjectByDomain(name string) (*store.Project, error) {
	return s.projectByIndex(s.domains, encodedKey(strings.ToLower(name)))
}

// projectByIndex returns the project whose id index holds at key.
func (s *Store) projectByIndex(index jetstream.KeyValue, key string) (*store.Project, error) {
	ctx, cancel := opContext()
	defer cancel()
	var id int64
	if _, err := getJSON(ctx, index, key, &id); err != nil {
		return nil, err
	}
	r, _, err := s.record(ctx, id)
	if err != nil {
		return nil, err
	}
	return &r.Project, nil
}

// records returns every project's record, oldest project first.
func (s *Store) records(ctx context.Context) ([]*projectRecord, error) {
	keys, err := s.projects.ListKeys(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	var out []*projectRecord
	for key := range keys.Keys() {
		id, err := strconv.ParseInt(key, 10, 64)
		if err != nil {
			continue
		}
		r, _, err := s.record(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *projectRecord) int { return cmp.Compare(a.Project.ID, b.Project.ID) })
	return out, nil
}

// Projects returns every project, oldest first.
func (s *Store) Projects() ([]*store.Project, error) {
	ctx, cancel := opContext()
	defer cancel()
	records, err := s.records(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*store.Project, len(records))
	for i, r := range records {
		out[i] = &r.Project
	}
	return out, nil
}

// repoKey is the repos key of a repository and root directory.
func repoKey(repo, rootDir string) string {
	return encodedKey(strings.ToLower(repo) + "\x00" + rootDir)
}

// CreateProject stores a new project, giving it an id and a slug unique among projects that starts
// from p.Slug; it refuses a second project of the same GitHub repository and root directory.
func (s *Store) CreateProject(p *store.Project) error {
	ctx, cancel := opContext()
	defer cancel()
	id, err := s.nextID(ctx, "project")
	if err != nil {
		return unavailable(err)
	}
	p.ID = id
	if p.Repo != "" {
		if err := s.claimIndex(ctx, s.repos, repoKey(p.Repo, p.RootDirectory), id); err != nil {
			if errors.Is(err, jetstream.ErrKeyExists) {
				var other int64
				_, _ = getJSON(ctx, s.repos, repoKey(p.Repo, p.RootDirectory), &other)
				where := ""
				if p.RootDirectory != "" {
					where = " with root directory " + p.RootDirectory
				}
				return &store.ConflictError{Message: fmt.Sprintf("repository %s%s is already imported as project %d", p.Repo, where, other)}
			}
			return unavailable(err)
		}
	}
	base := p.Slug
	for {
		p.Slug = store.UniqueSlug(base, func(slug string) bool {
			_, err := s.slugs.Get(ctx, slug)
			return err == nil
		})
		err := s.claimIndex(ctx, s.slugs, p.Slug, id)
		if err == nil {
			break
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return unavailable(err)
		}
	}
	p.ForkPreviews, p.TriggerMode = cmp.Or(p.ForkPreviews, "approve"), cmp.Or(p.TriggerMode, "webhook")
	if p.CreatedAt.IsZero() {
		p.CreatedAt = time.Now().UTC()
	}
	return unavailable(casJSON(ctx, s.projects, idKey(id), &projectRecord{Project: *p}, 0))
}

// claimIndex creates key in index, pointing at project id; jetstream.ErrKeyExists if it exists.
func (s *Store) claimIndex(ctx context.Context, index jetstream.KeyValue, key string, id int64) error {
	return casJSON(ctx, index, key, id, 0)
}

// UpdateProject applies change to the stored project and stores the result if nobody changed it
// meanwhile (else it applies change again to the new value).
func (s *Store) UpdateProject(id int64, change func(p *store.Project) error) (*store.Project, error) {
	ctx, cancel := opContext()
	defer cancel()
	var oldRepo, oldRoot string
	var p *store.Project
	_, err := s.changeRecord(ctx, id, func(r *projectRecord) (err error) {
		oldRepo, oldRoot = r.Project.Repo, r.Project.RootDirectory
		if err := change(&r.Project); err != nil {
			return err
		}
		r.Project.ID = id
		if p, err = projectCopy(&r.Project); err != nil {
			return err
		}
		if p.Repo != "" && (p.Repo != oldRepo || p.RootDirectory != oldRoot) {
			var other int64
			if _, err := getJSON(ctx, s.repos, repoKey(p.Repo, p.RootDirectory), &other); err == nil && other != id {
				return &store.ConflictError{Message: fmt.Sprintf("repository %s with root directory %q is already project %d", p.Repo, p.RootDirectory, other)}
			}
		}
		return nil
	})
	if err != nil {
		return nil, unavailable(err)
	}
	if p.Repo != "" && (p.Repo != oldRepo || p.RootDirectory != oldRoot) {
		if _, err := s.repos.Put(ctx, repoKey(p.Repo, p.RootDirectory), []byte(idKey(id))); err != nil {
			return nil, unavailable(err)
		}
		if oldRepo != "" {
			_ = s.repos.Delete(ctx, repoKey(oldRepo, oldRoot))
		}
	}
	return p, nil
}

// projectCopy returns a copy of p that shares nothing with it, for a caller to keep while later
// changes of its record go on.
func projectCopy(p *store.Project) (*store.Project, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	var copied store.Project
	return &copied, json.Unmarshal(data, &copied)
}

// DeleteProject removes a project with its deployments and index entries, returning the deleted
// deployments so their files can be removed.
func (s *Store) DeleteProject(id int64) ([]*store.Deployment, error) {
	ctx, cancel := opContext()
	defer cancel()
	r, _, err := s.record(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.projects.Delete(ctx, idKey(id)); err != nil {
		return nil, unavailable(err)
	}
	var gone []*store.Deployment
	for _, did := range r.History {
		var d store.Deployment
		if _, err := getJSON(ctx, s.deployments, idKey(did), &d); err == nil {
			gone = append(gone, &d)
		}
		_ = s.deployments.Delete(ctx, idKey(did))
	}
	_ = s.slugs.Delete(ctx, r.Project.Slug)
	if r.Project.Repo != "" {
		_ = s.repos.Delete(ctx, repoKey(r.Project.Repo, r.Project.RootDirectory))
	}
	for _, name := range r.Project.Domains {
		_ = s.domains.Delete(ctx, encodedKey(name))
	}
	return gone, nil
}

// AddDomain attaches a custom domain to a project; a domain of another project is a conflict.
func (s *Store) AddDomain(id int64, name string) (*store.Project, error) {
	ctx, cancel := opContext()
	defer cancel()
	if err := s.claimIndex(ctx, s.domains, encodedKey(name), id); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, unavailable(err)
		}
		var other int64
		if _, err := getJSON(ctx, s.domains, encodedKey(name), &other); err != nil {
			return nil, unavailable(err)
		}
		if other != id {
			return nil, &store.ConflictError{Message: fmt.Sprintf("domain %s belongs to project %d", name, other)}
		}
	}
	var p *store.Project
	_, err := s.changeRecord(ctx, id, func(r *projectRecord) (err error) {
		if !slices.Contains(r.Project.Domains, name) {
			r.Project.Domains = append(r.Project.Domains, name)
		}
		p, err = projectCopy(&r.Project)
		return err
	})
	if err != nil {
		return nil, unavailable(err)
	}
	return p, nil
}

// RemoveDomain detaches a custom domain from a project; store.ErrNotFound if it has no such domain.
func (s *Store) RemoveDomain(id int64, name string) (*store.Project, error) {
	ctx, cancel := opContext()
	defer cancel()
	var p *store.Project
	_, err := s.changeRecord(ctx, id, func(r *projectRecord) (err error) {
		i := slices.Index(r.Project.Domains, name)
		if i < 0 {
			return store.ErrNotFound
		}
		r.Project.Domains = slices.Delete(r.Project.Domains, i, i+1)
		p, err = projectCopy(&r.Project)
		return err
	})
	if err != nil {
		return nil, unavailable(err)
	}
	return p, unavailable(s.domains.Delete(ctx, encodedKey(name)))
}

// Preview returns a project's preview with the given alias.
func (s *Store) Preview(projectID int64, alias string) (*store.Preview, error) {
	ctx, cancel := opContext()
	defer cancel()
	r, _, err := s.record(ctx, projectID)
	if err != nil {
		return nil, err
	}
	p := r.Previews[alias]
	if p == nil {
		return nil, store.ErrNotFound
	}
	return p, nil
}

// Previews returns a project's previews, by alias.
func (s *Store) Previews(projectID int64) ([]*store.Preview, error) {
	ctx, cancel := opContext()
	defer cancel()
	r, _, err := s.record(ctx, projectID)
	if err != nil {
		return nil, err
	}
	var out []*store.Preview
	for _, p := range r.Previews {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *store.Preview) int { return cmp.Compare(a.Alias, b.Alias) })
	return out, nil
}

// SetPreviewComment records the sticky comment of a preview's pull request.
func (s *Store) SetPreviewComment(projectID int64, alias string, commentID int64) error {
	ctx, cancel := opContext()
	defer cancel()
	_, err := s.changeRecord(ctx, projectID, func(r *projectRecord) error {
		p := r.Previews[alias]
		if p == nil {
			return store.ErrNotFound
		}
		p.CommentID = commentID
		return nil
	})
	return unavailable(err)
}

// Notifications returns every notification target, oldest first.
func (s *Store) Notifications() ([]*store.Notification, error) {
	ctx, cancel := opContext()
	defer cancel()
	return s.notificationsWith(ctx)
}

// notificationsWith is Notifications with ctx.
func (s *Store) notificationsWith(ctx context.Context) ([]*store.Notification, error) {
	keys, err := s.notifications.ListKeys(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	var out []*store.Notification
	for key := range keys.Keys() {
		var n store.Notification
		if _, err := getJSON(ctx, s.notifications, key, &n); err == nil {
			out = append(out, &n)
		}
	}
	slices.SortFunc(out, func(a, b *store.Notification) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// Notification returns the notification target with the given id.
func (s *Store) Notification(id int64) (*store.Notification, error) {
	ctx, cancel := opContext()
	defer cancel()
	var n store.Notification
	if _, err := getJSON(ctx, s.notifications, idKey(id), &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// CreateNotification stores a new notification target, giving it an id.
func (s *Store) CreateNotification(n *store.Notification) error {
	ctx, cancel := opContext()
	defer cancel()
	id, err := s.nextID(ctx, "notification")
	if err != nil {
		return unavailable(err)
	}
	n.ID = id
	if n.CreatedAt.IsZero() {
		n.CreatedAt = time.Now().UTC()
	}
	return unavailable(casJSON(ctx, s.notifications, idKey(id), n, 0))
}

// DeleteNotification removes a notification target.
func (s *Store) DeleteNotification(id int64) error {
	ctx, cancel := opContext()
	defer cancel()
	if _, err := s.notifications.Get(ctx, idKey(id)); errors.Is(err, jetstream.ErrKeyNotFound) {
		return store.ErrNotFound
	}
	return unavailable(s.notifications.Delete(ctx, idKey(id)))
}

// AdminToken returns the cluster's admin token: the one stored by the first node, or token, which
// becomes it when none is stored yet. While the cluster settles (leaders being elected) it tries
// again until ctx ends.
func (s *Store) AdminToken(ctx context.Context, token string) (string, error) {
	var stored string
	err := s.retry(ctx, "reading the admin token", func(ctx context.Context) error {
		_, err := s.meta.Create(ctx, "admin-token", []byte(token))
		if err == nil {
			stored = token
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return err
		}
		e, err := s.meta.Get(ctx, "admin-token")
		if err != nil {
			return err
		}
		stored = string(e.Value())
		return nil
	})
	return stored, unavailable(err)
}

// DisableNotification records why a notification target is no longer sent to.
func (s *Store) DisableNotification(id int64, reason string) error {
	ctx, cancel := opContext()
	defer cancel()
	for {
		var n store.Notification
		rev, err := getJSON(ctx, s.notifications, idKey(id), &n)
		if err != nil {
			return err
		}
		n.DisabledReason = reason
		if err := casJSON(ctx, s.notifications, idKey(id), &n, rev); !conflicted(err) {
			return unavailable(err)
		}
	}
}
