// Package cluster runs several miaobu agents as one: each embeds a NATS server with JetStream
// (SyncAlways, replicas 3, routes to every peer), and Store keeps miaobu's state in its key-value
// buckets, its work-queue stream of build tokens and its object store of site outputs.
//
// Buckets and streams (all with 3 replicas, created idempotently by every node at start):
//
//	KV projects      project id → projectRecord: the project and every index of it that a change
//	                 must see at once (queued and running deployments, the commit index, branch
//	                 heads, previews, the build epoch) and the notifications of its changes not
//	                 yet copied to the outbox; it changes only by compare-and-set, the changes
//	                 a node makes of one record at once in one batch (see changeRecord)
//	KV deployments   deployment id → store.Deployment and the reports and notifications of its
//	                 changes of status not yet copied to the outbox, changed by compare-and-set
//	KV slugs         slug → project id (created once: slugs are unique)
//	KV repos         base64url("owner/name" NUL root) → project id (one import per repository)
//	KV domains       base64url(domain) → project id
//	KV notifications notification id → store.Notification
//	KV ids           one key per kind; a put's revision is a new id, unique and increasing
//	KV leases        "project.<id>" → the node building it, "reconciler" → the node reconciling,
//	                 "outbox" → the node sending the outbox (a bucket TTL: a lease not renewed
//	                 expires)
//	KV meta          "admin-token" → the cluster's admin token
//	KV outbox        message id → outbox.Message (reports and notifications not yet sent); ids
//	                 are numbered in the change that makes the message, and a sent message's
//	                 delete marker keeps its id from being written again
//	stream JOBS      work queue of build tokens "jobs.<project>.<alias>", one per subject (latest wins)
//	stream DELIVERIES the record of webhook deliveries, "deliveries.<project>"
//	object store sites "<deployment id>.tar": the local target's outputs; "<deployment id>.log":
//	                 the build logs, as their building node last shared them
//
// The route connections are TLS 1.3, both ends presenting a certificate that the other checks was
// signed by the cluster's certificate authority, which every node derives from cluster.secret alone
// (routeCA): a route port reached by someone without the secret can neither read nor join. Routes
// also log in with cluster.secret as their password, of which a node keeps only a bcrypt hash.
//
// Reads go to each stream's leader, so that a node reads what another has just written. A change
// that spans keys writes the project's record first (the truth), then the rest; the reconciler
// repairs what a node that died in between left.
package cluster

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"
)

// clusterName is the NATS cluster name every miaobu node uses.
const clusterName = "miaobu"

// routeAuthTimeout bounds how long a connection may take for its TLS handshake, and then to
// authenticate.
const routeAuthTimeout = 10 * time.Second

// localUser is the user name of this process's own connection to its node.
const localUser = "local"

// randomSecret returns 32 random bytes as text.
func randomSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// routeUser is the user name of the route connections; cluster.secret is their password.
const routeUser = "miaobu"

// Replicas is how many copies JetStream keeps of every bucket and stream.
const Replicas = 3

// NodeOptions configure an embedded NATS node.
type NodeOptions struct {
	// Name is the node's stable, unique name (cluster.node).
	Name string
	// Listen is the host:port of the route connections (cluster.listen).
	Listen string
	// Peers are the nats-route:// URLs of every voting node (cluster.peers).
	Peers []string
	// Secret authenticates and encrypts the routes (cluster.secret).
	Secret string
	// Dir is where JetStream keeps its files.
	Dir string
	Log *slog.Logger
}

// Node is a running embedded NATS server with JetStream and this process's connection to it.
type Node struct {
	name   string
	listen string
	// peers are the host:port addresses of cluster.peers.
	peers  []string
	server *server.Server
	conn   *nats.Conn
	js     jetstream.JetStream
}

// StartNode starts the embedded NATS server and waits until JetStream answers (a metadata leader
// is elected), at most until ctx ends; it refuses fewer than three peers.
func StartNode(ctx context.Context, opts NodeOptions) (*Node, error) {
	host, portText, err := net.SplitHostPort(opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("cluster.listen %q: %w", opts.Listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("cluster.listen %q: the port is not a number", opts.Listen)
	}
	routes, err := routeURLs(opts.Peers, opts.Secret)
	if err != nil {
		return nil, err
	}
	if err := checkVoters(ctx, opts.Listen, routes); err != nil {
		return nil, err
	}
	// The client port is needed: with DontListen the server never starts its routes. It listens on
	// loopback only, on a random port, with a password this process alone knows.
	clientPassword, err := randomSecret()
	if err != nil {
		return nil, err
	}
	// The server keeps only bcrypt hashes of the passwords it checks; the route URLs carry the secret.
	routeHash, err := bcrypt.GenerateFromPassword([]byte(opts.Secret), bcrypt.DefaultCost)
	if err != nil {
		return nil, err
	}
	// The local password is 32 random bytes: the lowest cost protects it as well and connects fast.
	clientHash, err := bcrypt.GenerateFromPassword([]byte(clientPassword), bcrypt.MinCost)
	if err != nil {
		return nil, err
	}
	routeTLS, err := routeTLSConfig(opts.Name, opts.Secret)
	if err != nil {
		return nil, fmt.Errorf("making the route certificate: %w", err)
	}
	so := &server.Options{ServerName: opts.Name, JetStream: true, StoreDir: filepath.Join(opts.Dir, "jetstream"),
		// Every acknowledged write is on a quorum's disks: the Raft log is fsynced per append.
		SyncAlways: true, NoSigs: true,
		Host: "127.0.0.1", Port: server.RANDOM_PORT, Username: localUser, Password: string(clientHash),
		Cluster: server.ClusterOpts{Name: clusterName, Host: host, Port: port, Username: routeUser, Password: string(routeHash),
			TLSConfig: routeTLS,
			// A TLS handshake and a bcrypt check take a while on a busy machine.
			TLSTimeout: routeAuthTimeout.Seconds(), AuthTimeout: routeAuthTimeout.Seconds()},
		Routes: routes}
	srv, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("starting the cluster node: %w", err)
	}
	if opts.Log != nil {
		srv.SetLoggerV2(&natsLogger{log: opts.Log.With("component", "nats")}, false, false, false)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("the cluster node did not start within 10s")
	}
	conn, err := nats.Connect("", nats.InProcessServer(srv), nats.UserInfo(localUser, clientPassword), nats.Name(opts.Name),
		nats.MaxReconnects(-1), nats.Timeout(routeAuthTimeout))
	if err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("connecting to the cluster node: %w", err)
	}
	js, err := jetstream.New(conn)
	if err != nil {
		conn.Close()
		srv.Shutdown()
		return nil, err
	}
	n := &Node{name: opts.Name, listen: opts.Listen, server: srv, conn: conn, js: js}
	for _, route := range routes {
		n.peers = append(n.peers, route.Host)
	}
	if err := n.waitForJetStream(ctx); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// routeURLs returns the peers as route URLs that carry the route credentials.
func routeURLs(peers []string, secret string) ([]*url.URL, error) {
	var routes []*url.URL
	for _, peer := range peers {
		u, err := url.Parse(peer)
		if err != nil || u.Scheme != "nats-route" || u.Host == "" {
			return nil, fmt.Errorf("cluster.peers: %q is not a nats-route://host:port URL", peer)
		}
		u.User = url.UserPassword(routeUser, secret)
		routes = append(routes, u)
	}
	return routes, nil
}

// checkVoters refuses peers that name fewer than Replicas distinct nodes (two peers are one node
// when their addresses resolve to a common one) or that leave out this node's own listen address.
func checkVoters(ctx context.Context, listen string, routes []*url.URL) error {
	self, err := resolve(ctx, listen)
	if err != nil {
		return fmt.Errorf("cluster.listen %q: %w", listen, err)
	}
	seen := map[string]bool{}
	voters, listed := 0, false
	for _, route := range routes {
		addrs, err := resolve(ctx, route.Host)
		if err != nil {
			return fmt.Errorf("cluster.peers: %q: %w", route.Host, err)
		}
		if !slices.ContainsFunc(addrs, func(a string) bool { return seen[a] }) {
			voters++
		}
		for _, a := range addrs {
			seen[a] = true
		}
		listed = listed || slices.ContainsFunc(addrs, func(a string) bool { return slices.Contains(self, a) })
	}
	if voters < Replicas {
		return fmt.Errorf("cluster.peers names %d distinct voting nodes (of %d entries): a cluster needs at least %d", voters, len(routes), Replicas)
	}
	if !listed {
		return fmt.Errorf("cluster.peers does not list this node's own cluster.listen %s: every node lists every voting node, itself included", listen)
	}
	return nil
}

// resolve returns the host:port addresses that address, a host:port, resolves to; an unspecified
// host (listening on every interface) resolves to the port on each of this machine's addresses.
func resolve(ctx context.Context, address string) ([]string, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	var ips []string
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		ifaces, err := net.InterfaceAddrs()
		if err != nil {
			return nil, err
		}
		for _, a := range ifaces {
			if n, ok := a.(*net.IPNet); ok {
				ips = append(ips, n.IP.String())
			}
		}
	} else if ips, err = net.DefaultResolver.LookupHost(ctx, host); err != nil {
		return nil, err
	}
	var addrs []string
	for _, ip := range ips {
		if parsed := net.ParseIP(ip); parsed != nil {
			ip = parsed.String()
		}
		addrs = append(addrs, net.JoinHostPort(ip, port))
	}
	return addrs, nil
}

// waitForJetStream polls JetStream until it answers, which it does once a metadata leader exists.
func (n *Node) waitForJetStream(ctx context.Context) error {
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := n.js.AccountInfo(actx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the cluster's quorum (are at least two of cluster.peers running?): %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Name returns the node's name.
func (n *Node) Name() string { return n.name }

// Close closes the connection and shuts the NATS server down.
func (n *Node) Close() {
	n.conn.Close()
	n.server.Shutdown()
	n.server.WaitForShutdown()
}

// JetStreamDisabled reports whether JetStream is off on this node: the embedded server turns it off
// for good when it runs out of disk space or memory, and only a restart brings it back.
func (n *Node) JetStreamDisabled() bool { return !n.server.JetStreamEnabled() }

// Problem returns why this node cannot do its share of the cluster's work now, or "" when it can.
func (n *Node) Problem() string {
	if n.JetStreamDisabled() {
		return "JetStream is disabled on this node (out of disk space or memory?)"
	}
	if !n.Health().Quorum {
		return "the cluster has no quorum"
	}
	return ""
}

// Member is one voting node of the cluster as this node sees it.
type Member struct {
	Node    string
	Address string
	Leader  bool
	Current bool
}

// Health is the cluster as this node sees it: its members, and whether a quorum of them agree on a
// leader, without which nothing can be written.
type Health struct {
	Node    string
	Members []Member
	Quorum  bool
}

// Health returns the members, the leader of the cluster's metadata and whether there is a quorum.
// A member is current when it is online and either caught up as the leader last reported or
// connected to this node by a route: a follower's view of the other followers is not kept up to date.
func (n *Node) Health() Health {
	h := Health{Node: n.name}
	info, err := n.server.Jsz(&server.JSzOptions{})
	if err != nil || info.Meta == nil {
		return h
	}
	addresses, connected := n.routeAddresses()
	meta := info.Meta
	current := 1
	h.Members = append(h.Members, Member{Node: n.name, Address: n.listen, Leader: meta.Leader == n.name, Current: true})
	for _, p := range meta.Replicas {
		if p.Name == n.name {
			continue
		}
		m := Member{Node: p.Name, Address: addresses[p.Name], Leader: p.Name == meta.Leader,
			Current: p.Name == meta.Leader || (!p.Offline && (p.Current || connected[p.Name]))}
		if m.Current {
			current++
		}
		h.Members = append(h.Members, m)
	}
	slices.SortFunc(h.Members, func(a, b Member) int { return cmp.Compare(a.Node, b.Node) })
	size := max(meta.Size, len(h.Members))
	h.Quorum = meta.Leader != "" && current >= size/2+1
	return h
}

// routeAddresses returns the route address of each node connected to this one, by name, and which
// are connected. A route at one of cluster.peers names that peer's address; one the peer dialed has
// only its host, which names the peer's address when a single one of cluster.peers not yet taken
// is on it.
func (n *Node) routeAddresses() (addresses map[string]string, connected map[string]bool) {
	addresses, connected = map[string]string{}, map[string]bool{}
	routes, err := n.server.Routez(&server.RoutezOptions{})
	if err != nil {
		return addresses, connected
	}
	taken := map[string]bool{n.listen: true}
	for _, r := range routes.Routes {
		connected[r.RemoteName] = true
		if address := net.JoinHostPort(r.IP, strconv.Itoa(r.Port)); slices.Contains(n.peers, address) {
			addresses[r.RemoteName] = address
			taken[address] = true
		}
	}
	for _, r := range routes.Routes {
		if _, ok := addresses[r.RemoteName]; ok {
			continue
		}
		var candidates []string
		for _, peer := range n.peers {
			if host, _, err := net.SplitHostPort(peer); err == nil && host == r.IP && !taken[peer] {
				candidates = append(candidates, peer)
			}
		}
		if len(candidates) == 1 {
			addresses[r.RemoteName] = candidates[0]
			taken[candidates[0]] = true
		} else {
			addresses[r.RemoteName] = r.IP
		}
	}
	return addresses, connected
}

// natsLogger turns the NATS server's log lines into the agent's, at a level below their own: the
// server is chatty about routine cluster changes.
type natsLogger struct {
	log *slog.Logger
	mu  sync.Mutex
	// lastAuthFailure is when each kind of route authentication failure was last logged.
	lastAuthFailure map[string]time.Time
}

// routeAuthLogInterval is how often a route authentication failure, retried several times a
// second, is logged at most.
const routeAuthLogInterval = time.Minute

// routeAuthFailures are what the server logs when a route fails to authenticate, and what it means:
// a certificate signed by another authority, or a wrong password, comes of another cluster.secret.
var routeAuthFailures = []struct{ logged, meaning string }{
	{"Route Error 'Authorization Violation'", "a peer refused this node's route: this node's cluster.secret does not match the peers'"},
	{"authentication error", "a node was refused a route: its cluster.secret does not match this node's"},
	{"remote error: tls: bad certificate", "a peer refused this node's route certificate: this node's cluster.secret does not match the peers'"},
	{"remote error: tls: unknown certificate authority", "a peer refused this node's route certificate: this node's cluster.secret does not match the peers'"},
	{"x509: certificate signed by unknown authority", "a node's route certificate was refused: its cluster.secret does not match this node's"},
}

// routeAuthFailure logs a route authentication failure as what it means, at most once per
// routeAuthLogInterval for each kind, and reports whether msg was one.
func (l *natsLogger) routeAuthFailure(msg string) bool {
	if !strings.Contains(msg, "rid:") {
		return false
	}
	for _, f := range routeAuthFailures {
		if !strings.Contains(msg, f.logged) {
			continue
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if time.Since(l.lastAuthFailure[f.logged]) >= routeAuthLogInterval {
			if l.lastAuthFailure == nil {
				l.lastAuthFailure = map[string]time.Time{}
			}
			l.lastAuthFailure[f.logged] = time.Now()
			l.log.Error(f.meaning, "nats", msg, "repeats_logged_every", routeAuthLogInterval.String())
		}
		return true
	}
	return false
}

// Noticef logs a notice at debug level.
func (l *natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }

// Warnf logs a warning.
func (l *natsLogger) Warnf(format string, v ...any) { l.log.Warn(fmt.Sprintf(format, v...)) }

// Fatalf logs a fatal error.
func (l *natsLogger) Fatalf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }

// Errorf logs an error, a route authentication failure as what it means.
func (l *natsLogger) Errorf(format string, v ...any) {
	if msg := fmt.Sprintf(format, v...); !l.routeAuthFailure(msg) {
		l.log.Error(msg)
	}
}

// Debugf logs a debug line.
func (l *natsLogger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }

// Tracef drops trace lines.
func (l *natsLogger) Tracef(string, ...any) {}

// Owner returns the current member that owns key (rendezvous hashing): every node that sees the
// same members picks the same one, and when a member is lost only its keys move. It returns ""
// when no member is current.
func (h Health) Owner(key string) string {
	owner, best := "", uint64(0)
	for _, m := range h.Members {
		if !m.Current {
			continue
		}
		sum := sha256.Sum256([]byte(m.Node + "\x00" + key))
		if score := binary.BigEndian.Uint64(sum[:8]); owner == "" || score > best {
			owner, best = m.Node, score
		}
	}
	return owner
}
