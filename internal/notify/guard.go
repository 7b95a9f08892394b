package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// Resolver looks up the addresses of a host name; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// PrivateError refuses a target whose host resolves to an address notifications may not reach.
type PrivateError struct {
	Host string
	Addr netip.Addr
}

func (e *PrivateError) Error() string {
	return fmt.Sprintf("%s resolves to %s, a loopback, private, link-local or otherwise internal address: notifications are not sent there unless notifications.allow_private_networks is set", e.Host, e.Addr)
}

// internalPrefixes are ranges that net/netip's predicates do not cover but that reach no public
// receiver: "this network", carrier-grade NAT, IETF protocol assignments, benchmarking, reserved
// and broadcast; local-use NAT64, whose translator is the operator's own; Teredo, whose relays
// carry a connection on to an IPv4 address hidden in the address; and the deprecated IPv6
// site-local range.
var internalPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001::/32"),
	netip.MustParsePrefix("fec0::/10"),
}

// embeddings are the IPv6 ranges whose addresses carry an IPv4 address, which reaches the host
// it names, and the offset of its four bytes: well-known NAT64, SIIT, IPv4-compatible and 6to4.
var embeddings = []struct {
	prefix netip.Prefix
	at     int
}{
	{netip.MustParsePrefix("64:ff9b::/96"), 12},
	{netip.MustParsePrefix("::ffff:0:0:0/96"), 12},
	{netip.MustParsePrefix("::/96"), 12},
	{netip.MustParsePrefix("2002::/16"), 2},
}

// internal reports whether addr is one notifications may not reach: loopback, private,
// link-local, multicast, unspecified, or another range that is no public host, also when it is
// embedded in an IPv6 address.
func internal(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, e := range embeddings {
		if e.prefix.Contains(addr) {
			b := addr.As16()
			addr = netip.AddrFrom4([4]byte(b[e.at : e.at+4]))
			break
		}
	}
	if addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast() ||
		addr.IsInterfaceLocalMulticast() || addr.IsMulticast() || addr.IsUnspecified() {
		return true
	}
	for _, p := range internalPrefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// resolve returns the addresses of host (itself when it is an address), refusing them all when
// any is internal and private networks are not allowed: a name with one public and one private
// address must not reach the private one by chance.
func (n *Notifier) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	addrs := []netip.Addr{}
	if addr, err := netip.ParseAddr(host); err == nil {
		addrs = append(addrs, addr)
	} else {
		var r Resolver = net.DefaultResolver
		if n.opts.Resolver != nil {
			r = n.opts.Resolver
		}
		if addrs, err = r.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, err
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("%s has no address", host)
		}
	}
	if n.opts.AllowPrivateNetworks {
		return addrs, nil
	}
	for _, addr := range addrs {
		if internal(addr) {
			return nil, &PrivateError{Host: host, Addr: addr.Unmap()}
		}
	}
	return addrs, nil
}

// dialTimeout bounds connecting to one address of a receiver.
const dialTimeout = 10 * time.Second

// dial connects to a receiver: it resolves the host once, refuses internal addresses, and dials
// the addresses it checked, which the dialer checks again as it connects, so that a name that
// resolves differently a second time (DNS rebinding) reaches nothing it should not.
func (n *Notifier) dial(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	addrs, err := n.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: dialTimeout, Control: n.control}
	var errs []error
	for _, addr := range addrs {
		conn, err := d.DialContext(ctx, network, net.JoinHostPort(addr.String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// control refuses, just before a connection is made, an internal address that slipped past resolve.
func (n *Notifier) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return err
	}
	if !n.opts.AllowPrivateNetworks && internal(ap.Addr()) {
		return &PrivateError{Host: ap.Addr().String(), Addr: ap.Addr().Unmap()}
	}
	return nil
}

// httpClient returns the client receivers are posted with: dialing through dial, with no proxy
// from the environment and no redirect followed (a redirect could lead to an internal address).
func (n *Notifier) httpClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:           n.dial,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 15 * time.Second,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
