package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/logtest"
	"github.com/nats-io/nats-server/v2/server"
)

func TestRouteCADerivedFromTheSecretAlone(t *testing.T) {
	a, _, err := routeCA("one secret")
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := routeCA("one secret")
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := routeCA("another secret")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Raw, again.Raw) {
		t.Fatal("the same secret derived two different certificate authorities")
	}
	if bytes.Equal(a.Raw, other.Raw) || a.PublicKey.(ed25519.PublicKey).Equal(other.PublicKey) {
		t.Fatal("two secrets derived the same certificate authority")
	}
	if !a.IsCA || a.Subject.CommonName != "miaobu cluster CA" {
		t.Fatalf("the authority's certificate is %+v, want a CA named miaobu cluster CA", a.Subject)
	}
}

// dialRoutePort dials the route port at address, with a deadline past which the test fails.
func dialRoutePort(t *testing.T, address string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", address, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(15 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return conn
}

func TestRoutePortRefusesAPlainConnection(t *testing.T) {
	startCluster(t)
	conn := dialRoutePort(t, sharedNodes[0].listen)
	connect := `CONNECT {"user":"miaobu","pass":"a guess","name":"intruder","cluster":"miaobu"}` + "\r\nPING\r\n"
	if _, err := io.WriteString(conn, connect); err != nil {
		t.Fatal(err)
	}
	// The node expects a TLS handshake before it says anything: it closes the connection, and
	// reading ends with EOF or a reset before the deadline.
	answer, err := io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the connection was kept open after a CONNECT in clear, having sent %q", answer)
	}
	if bytes.Contains(answer, []byte("INFO")) || bytes.Contains(answer, []byte("PONG")) {
		t.Fatalf("the route port answered a connection in clear: %q", answer)
	}
}

// routeGreeting makes a TLS connection to the route port at address as a node with config would,
// and returns the INFO line the node then sends or the error that ended the connection: the node
// checks the client's certificate once the client has finished its handshake, and refuses it on
// the first read.
func routeGreeting(t *testing.T, address string, config *tls.Config) (string, error) {
	t.Helper()
	conn := tls.Client(dialRoutePort(t, address), config)
	if err := conn.Handshake(); err != nil {
		return "", err
	}
	return bufio.NewReader(conn).ReadString('\n')
}

func TestRoutePortAcceptsOnlyCertificatesOfItsSecret(t *testing.T) {
	startCluster(t)
	address := sharedNodes[0].listen
	right, err := routeTLSConfig("visitor", "test-secret")
	if err != nil {
		t.Fatal(err)
	}
	info, err := routeGreeting(t, address, right)
	if err != nil || !strings.HasPrefix(info, "INFO ") || !strings.Contains(info, `"tls_required":true`) {
		t.Fatalf("a certificate of the cluster's secret got %q, %v; want an INFO requiring TLS", info, err)
	}
	wrong, err := routeTLSConfig("intruder", "another-secret")
	if err != nil {
		t.Fatal(err)
	}
	var unknown x509.UnknownAuthorityError
	if info, err := routeGreeting(t, address, wrong); err == nil || !strings.Contains(err.Error(), unknown.Error()) {
		t.Fatalf("a node of another secret accepted the node's certificate: %q, %v", info, err)
	}
	// Trusting the node, but presenting a certificate of another secret.
	wrongButTrusting := wrong.Clone()
	wrongButTrusting.RootCAs = right.RootCAs
	if info, err := routeGreeting(t, address, wrongButTrusting); err == nil || !strings.Contains(err.Error(), "unknown certificate authority") {
		t.Fatalf("the node accepted a certificate of another secret: %q, %v", info, err)
	}
}

func TestNodeWithAnotherSecretCannotJoin(t *testing.T) {
	startCluster(t)
	addrs := []string{freeAddrs(t, 1)[0]}
	for _, n := range sharedNodes {
		addrs = append(addrs, n.listen)
	}
	var log logtest.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	started := make(chan error, 1)
	go func() {
		n, err := StartNode(ctx, NodeOptions{Name: "intruder", Listen: addrs[0], Peers: peersOf(addrs), Secret: "another-secret",
			Dir: t.TempDir(), Log: slog.New(slog.NewTextHandler(&log, nil))})
		if n != nil {
			n.Close()
		}
		started <- err
	}()
	for {
		for _, n := range sharedNodes {
			h := n.Health()
			if slices.ContainsFunc(h.Members, func(m Member) bool { return m.Node == "intruder" }) {
				t.Fatalf("%s counts the node of another secret as a member: %+v", n.name, h)
			}
			routes, err := n.server.Routez(&server.RoutezOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range routes.Routes {
				if r.RemoteName == "intruder" {
					t.Fatalf("%s has a route to the node of another secret", n.name)
				}
			}
		}
		select {
		case err := <-started:
			if err == nil || !strings.Contains(err.Error(), "quorum") {
				t.Fatalf("the node of another secret started: %v", err)
			}
			if !strings.Contains(log.String(), "cluster.secret does not match") {
				t.Fatalf("the node of another secret did not log that its secret does not match:\n%s", log.String())
			}
			for _, n := range sharedNodes {
				problemWithin(t, n, "")
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}
