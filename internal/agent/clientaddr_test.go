package agent

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

// TestClientAddr is the spec of which address stands for the client: the peer unless it is a
// trusted proxy, then the right-most X-Forwarded-For hop that is not one.
func TestClientAddr(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		name, peer string
		forwarded  []string
		want       string
	}{
		{"untrusted peer, no header", "203.0.113.9:5555", nil, "203.0.113.9"},
		{"untrusted peer, header ignored", "203.0.113.9:5555", []string{"198.51.100.1"}, "203.0.113.9"},
		{"trusted peer, no header", "127.0.0.1:5555", nil, "127.0.0.1"},
		{"trusted peer, one hop", "127.0.0.1:5555", []string{"198.51.100.1"}, "198.51.100.1"},
		{"right-most untrusted hop wins", "127.0.0.1:5555", []string{"192.0.2.66, 198.51.100.1, 10.1.2.3"}, "198.51.100.1"},
		{"hops over several header lines", "127.0.0.1:5555", []string{"192.0.2.66", "198.51.100.1, 10.1.2.3", "10.9.9.9"}, "198.51.100.1"},
		{"every hop trusted", "127.0.0.1:5555", []string{"10.1.2.3, 10.2.3.4"}, "10.1.2.3"},
		{"garbage stops the walk", "127.0.0.1:5555", []string{"198.51.100.1, not-an-address, 10.1.2.3"}, "10.1.2.3"},
		{"hop with a port", "127.0.0.1:5555", []string{"198.51.100.1:4711"}, "198.51.100.1"},
		{"IPv6 hop with a port", "127.0.0.1:5555", []string{"[2001:db8::1]:4711"}, "2001:db8::1"},
		{"IPv6 peer", "[::1]:5555", []string{"2001:db8::7"}, "2001:db8::7"},
		{"IPv4-mapped peer", "[::ffff:127.0.0.1]:5555", []string{"198.51.100.1"}, "198.51.100.1"},
		{"IPv4-mapped hop", "127.0.0.1:5555", []string{"::ffff:198.51.100.1"}, "198.51.100.1"},
		{"empty header", "127.0.0.1:5555", []string{""}, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.forwarded {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientAddr(r, trusted); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// FuzzClientAddr checks that whatever a client writes in X-Forwarded-For, the answer is an address
// from the peer or the header, and an untrusted peer is never overridden.
func FuzzClientAddr(f *testing.F) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	f.Add("127.0.0.1:1", "198.51.100.1, 127.0.0.2")
	f.Add("198.51.100.1:1", "127.0.0.1")
	f.Add("[::ffff:127.0.0.1]:1", "[::1]:80,,, x")
	f.Fuzz(func(t *testing.T, peer, forwarded string) {
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-For", forwarded)
		got := clientAddr(r, trusted)
		addrPort, err := netip.ParseAddrPort(peer)
		if err != nil {
			if got != peer {
				t.Fatalf("unparsable peer %q gave %q", peer, got)
			}
			return
		}
		if !isTrusted(addrPort.Addr().Unmap(), trusted) {
			if got != addrPort.Addr().Unmap().String() {
				t.Fatalf("untrusted peer %q overridden by %q", peer, got)
			}
			return
		}
		if _, err := netip.ParseAddr(got); err != nil {
			t.Fatalf("client %q is not an address", got)
		}
	})
}
