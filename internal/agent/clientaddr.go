package agent

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// clientAddr returns the address of the client that sent r: the TCP peer, or, when the peer is a
// trusted proxy, the right-most address of X-Forwarded-For that is not a trusted proxy itself.
// Addresses left of the first untrusted one were written by the client and prove nothing.
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	addr := peer.Addr().Unmap()
	if !isTrusted(addr, trusted) {
		return addr.String()
	}
	forwarded := r.Header.Values("X-Forwarded-For")
	for i := len(forwarded) - 1; i >= 0; i-- {
		hops := strings.Split(forwarded[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			hop, ok := parseHop(hops[j])
			if !ok {
				return addr.String() // nothing left of a hop that is not an address can be believed
			}
			if addr = hop; !isTrusted(addr, trusted) {
				return addr.String()
			}
		}
	}
	return addr.String()
}

// isTrusted reports whether addr is inside one of the trusted prefixes.
func isTrusted(addr netip.Addr, trusted []netip.Prefix) bool {
	addr = addr.WithZone("") // a prefix never contains an address with a zone
	return slices.ContainsFunc(trusted, func(p netip.Prefix) bool { return p.Contains(addr) })
}

// parseHop parses one X-Forwarded-For entry: an address, possibly with a port as some proxies write it.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if addr, err := netip.ParseAddr(s); err == nil {
		return addr.Unmap(), true
	}
	if addrPort, err := netip.ParseAddrPort(s); err == nil {
		return addrPort.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}
