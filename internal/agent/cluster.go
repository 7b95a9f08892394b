package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/cluster"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/store"
)

// clusterStartTimeout bounds how long a clustered agent waits at start for a quorum of its peers.
const clusterStartTimeout = 2 * time.Minute

// errLeaseLost ends a build that this node no longer holds: cancelled through another node, or
// taken over after its lease was lost.
var errLeaseLost = errors.New("this node no longer holds the build: it was cancelled, or another node took it over")

// runClustered is Run for an agent that is one node of a cluster (cluster.peers set): it starts the
// embedded NATS node, opens the cluster's store and takes the cluster's admin token.
func runClustered(ctx context.Context, cfg *config.Config, log *slog.Logger, version string) error {
	startCtx, cancel := context.WithTimeout(ctx, clusterStartTimeout)
	defer cancel()
	log.Info("starting the cluster node: waiting for a quorum of cluster.peers", "node", cfg.Cluster.Node,
		"cluster_listen", cfg.Cluster.Listen, "peers", len(cfg.Cluster.Peers))
	node, err := cluster.StartNode(startCtx, cluster.NodeOptions{Name: cfg.Cluster.Node, Listen: cfg.Cluster.Listen,
		Peers: cfg.Cluster.Peers, Secret: cfg.Cluster.Secret, Dir: cfg.DataDir, Log: log})
	if err != nil {
		return err
	}
	defer node.Close()
	log.Info("the cluster has a quorum: opening its store")
	cs, err := cluster.Open(startCtx, node, cluster.Options{LeaseTTL: cfg.Cluster.LeaseTTL, Log: log})
	if err != nil {
		return err
	}
	defer cs.Close()
	if err := takeClusterToken(startCtx, cfg, cs); err != nil {
		return err
	}
	a, err := newAgent(cfg, cs, log, version, net.DefaultResolver)
	if err != nil {
		return err
	}
	a.cluster = cs
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	return a.Serve(ctx, ln)
}

// takeClusterToken makes the cluster's admin token this node's: the first node stores its own,
// and every node writes the stored one to its <data_dir>/admin-token.
func takeClusterToken(ctx context.Context, cfg *config.Config, cs *cluster.Store) error {
	local, err := loadOrCreateAdminToken(cfg.AdminTokenFile())
	if err != nil {
		return err
	}
	token, err := cs.AdminToken(ctx, local)
	if err != nil {
		return fmt.Errorf("reading the cluster's admin token: %w", err)
	}
	if token == local {
		return nil
	}
	if err := config.WriteFileAtomic(cfg.AdminTokenFile(), strings.NewReader(token+"\n")); err != nil {
		return fmt.Errorf("writing admin token: %w", err)
	}
	return nil
}

// jetStreamCheckInterval is how often a clustered agent checks that JetStream is still on.
const jetStreamCheckInterval = time.Second

// startCluster runs what a clustered agent does besides a single one's work until ctx ends: it
// reconciles the build queue when it holds the reconciler lease, wakes its workers for tokens
// published anywhere, stops builds whose lease is lost, and reports on the returned channel when
// JetStream was turned off on this node. It returns at once, with a nil channel, on a single agent.
func (a *Agent) startCluster(ctx context.Context) (<-chan error, error) {
	if a.cluster == nil {
		return nil, nil
	}
	a.cluster.OnLeaseLost(func(id int64) { a.builds.stop(id, errLeaseLost) })
	unsubscribe, err := a.cluster.Wakeups(a.builds.Wake)
	if err != nil {
		return nil, fmt.Errorf("subscribing to build tokens: %w", err)
	}
	go func() {
		<-ctx.Done()
		unsubscribe()
	}()
	go a.cluster.Reconcile(ctx)
	failed := make(chan error, 1)
	go a.watchJetStream(ctx, failed)
	return failed, nil
}

// errJetStreamDisabled stops a node whose JetStream the embedded server turned off: it would
// otherwise claim builds it cannot record and stay out of the cluster, while only a restart
// brings JetStream back.
var errJetStreamDisabled = errors.New("JetStream was disabled on this node (out of disk space or memory?): " +
	"stopping so that the service manager restarts the agent once there is room again")

// watchJetStream sends errJetStreamDisabled on failed once JetStream is off on this node, checking
// until ctx ends.
func (a *Agent) watchJetStream(ctx context.Context, failed chan<- error) {
	tick := time.NewTicker(jetStreamCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if a.cluster.Node().JetStreamDisabled() {
				failed <- errJetStreamDisabled
				return
			}
		}
	}
}

// clusterProblem returns why this node cannot do its share of the cluster's work, or "" when it
// can or the agent is a single one.
func (a *Agent) clusterProblem() string {
	if a.cluster == nil {
		return ""
	}
	return a.cluster.Node().Problem()
}

// siteDir is where deployment id of project slug is served from; on a cluster, its files are
// fetched from the cluster's object store the first time this node needs them.
func (a *Agent) siteDir(slug string, id int64) string {
	dir := a.domain.SiteDir(slug, id)
	if a.cluster == nil {
		return dir
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.cluster.FetchSite(ctx, id, dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		a.log.Warn("fetching a deployment's files from the cluster", "deployment", id, "dir", filepath.Base(dir), "err", err)
	}
	return dir
}

// pollsHere returns whether this node polls and reconciles a project: on a single agent every
// project, on a cluster those that its current members agree this node owns.
func (a *Agent) pollsHere() func(projectID int64) bool {
	if a.cluster == nil {
		return func(int64) bool { return true }
	}
	h := a.cluster.Node().Health()
	return func(projectID int64) bool { return h.Owner(strconv.FormatInt(projectID, 10)) == h.Node }
}

// shareLog gives the other nodes of a cluster the build log of deployment id as it is now, for
// those asked for it; it does nothing on a single agent.
func (a *Agent) shareLog(log *slog.Logger, id int64) {
	if a.cluster == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.cluster.PutLog(ctx, id, a.domain.LogPath(id)); err != nil {
		log.Warn("sharing the build log with the cluster", "err", err)
	}
}

// keepLog shares the build log of deployment id of project slug with the cluster once its build
// ended, or, when the deployment was deleted meanwhile (its project deleted through another node,
// which removed only its own copies), removes the log and the deployment's files from this node.
// It does nothing on a single agent.
func (a *Agent) keepLog(log *slog.Logger, slug string, id int64) {
	if a.cluster == nil {
		return
	}
	if _, err := a.store.Deployment(id); errors.Is(err, store.ErrNotFound) {
		for _, path := range []string{a.domain.LogPath(id), a.domain.SiteDir(slug, id)} {
			if err := os.RemoveAll(path); err != nil {
				log.Warn("removing the files of a deleted deployment", "err", err)
			}
		}
		return
	}
	a.shareLog(log, id)
}

// clusterView is the cluster as this node sees it, for the status; nil on a single agent.
func (a *Agent) clusterView() *api.Cluster {
	if a.cluster == nil {
		return nil
	}
	h := a.cluster.Node().Health()
	out := &api.Cluster{Node: h.Node, Quorum: h.Quorum, Members: make([]api.ClusterMember, 0, len(h.Members))}
	for _, m := range h.Members {
		out.Members = append(out.Members, api.ClusterMember{Node: m.Node, Address: m.Address, Leader: m.Leader, Current: m.Current})
	}
	return out
}
