package domain

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/serving"
)

// hosts is a resolver of fixed answers; any other name does not resolve.
type hosts map[string][]string

func (h hosts) LookupHost(_ context.Context, host string) ([]string, error) {
	if addrs, ok := h[host]; ok {
		return addrs, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func TestAddDomainChecksTheName(t *testing.T) {
	f := newFixture(t, nil)
	p := f.addProject(t, "blog")
	f.addProject(t, "docs")
	f.svc.resolver = hosts{}
	tests := []struct {
		raw, want, invalid string
	}{
		{raw: "Blog.Example.COM.", want: "blog.example.com"},
		{raw: "bücher.example", want: "xn--bcher-kva.example"},
		{raw: "xn--bcher-kva.example", invalid: "xn--bcher-kva.example is already a domain of blog"},
		{raw: "", invalid: "A domain is required"},
		{raw: "example.com:8443", invalid: `"example.com:8443" is not a host name: give the name alone, without a scheme, port, path or wildcard`},
		{raw: "https://example.com/", invalid: `"https://example.com/" is not a host name: give the name alone, without a scheme, port, path or wildcard`},
		{raw: "*.example.com", invalid: `"*.example.com" is not a host name: give the name alone, without a scheme, port, path or wildcard`},
		{raw: "under_score.example.com", invalid: `"under_score.example.com" is not a valid host name: idna: disallowed rune U+005F`},
		{raw: "10.0.0.1", invalid: "10.0.0.1 is an IP address; a custom domain is a host name"},
		{raw: "127.1", invalid: "127.1 ends in a number, so browsers read it as an IP address; a custom domain is a host name"},
		{raw: "0x7f.1", invalid: "0x7f.1 ends in a number, so browsers read it as an IP address; a custom domain is a host name"},
		{raw: "www.example.0x1F", invalid: "www.example.0x1f ends in a number, so browsers read it as an IP address; a custom domain is a host name"},
		{raw: "1.2.3.4.5", invalid: "1.2.3.4.5 ends in a number, so browsers read it as an IP address; a custom domain is a host name"},
		{raw: "intranet", invalid: "intranet is not a fully qualified domain name"},
		{raw: "Blog...", invalid: `"Blog..." is not a valid host name: it has an empty label`},
		{raw: "0.\x91", invalid: `"0.\x91" is not a host name: it is not valid UTF-8`},
		{raw: "Deploy.example.com", invalid: "deploy.example.com is the host of the agent's public URL"},
		{raw: "docs.localhost", invalid: "docs.localhost is under sites.domain (localhost), whose names are the sites' own hosts"},
	}
	for _, tt := range tests {
		added, err := f.svc.AddDomain(context.Background(), "blog", tt.raw)
		if tt.invalid != "" {
			var e *Error
			if !errors.As(err, &e) || e.Detail != tt.invalid {
				t.Errorf("AddDomain(%q): %v, want %q", tt.raw, err, tt.invalid)
			}
			continue
		}
		if err != nil || added.Domain != tt.want || added.Project.ID != p.ID {
			t.Errorf("AddDomain(%q): %+v, %v; want %s", tt.raw, added, err, tt.want)
		}
	}
	_, err := f.svc.AddDomain(context.Background(), "docs", "BLOG.example.com")
	checkError(t, err, Conflict, "blog.example.com is already a domain of project 1")
	_, err = f.svc.AddDomain(context.Background(), "shop", "shop.example.com")
	checkError(t, err, NotFound, "Project shop not found")
	_, _, err = f.svc.RemoveDomain("2", "Blog.example.com")
	checkError(t, err, NotFound, "blog.example.com is not a domain of docs")
	got, name, err := f.svc.RemoveDomain("blog", "Bücher.example")
	if err != nil || name != "xn--bcher-kva.example" || !slices.Equal(got.Domains, []string{"blog.example.com"}) {
		t.Fatalf("RemoveDomain by its Unicode form: %v, %q, domains %v", err, name, got)
	}
	f.svc.cfg.Sites.Domain = "sites.example.net"
	for _, raw := range []string{"app.localhost", "LOCALHOST"} {
		_, err := f.svc.AddDomain(context.Background(), "blog", raw)
		checkError(t, err, Invalid, strings.ToLower(raw)+" is a name every machine keeps for itself; a custom domain is a public host name")
	}
}

func TestAddDomainSaysWhichRecord(t *testing.T) {
	f := newFixture(t, nil)
	f.addProject(t, "blog")
	f.svc.resolver = hosts{
		"blog.localhost":   {"203.0.113.7", "2001:db8::7"},
		"www.example.com":  {"203.0.113.7"},
		"example.co.uk":    {"198.51.100.1"},
		"docs.example.com": {"198.51.100.1"},
	}
	tests := []struct {
		domain     string
		records    []DNSRecord
		pointsHere bool
	}{
		{"www.example.com", []DNSRecord{{"CNAME", "www.example.com", "blog.localhost"}}, true},
		{"docs.example.com", []DNSRecord{{"CNAME", "docs.example.com", "blog.localhost"}}, false},
		{"new.example.com", []DNSRecord{{"CNAME", "new.example.com", "blog.localhost"}}, false},
		{"example.co.uk", []DNSRecord{{"A", "example.co.uk", "203.0.113.7"}, {"AAAA", "example.co.uk", "2001:db8::7"}}, false},
	}
	for _, tt := range tests {
		added, err := f.svc.AddDomain(context.Background(), "blog", tt.domain)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(added.Records, tt.records) || added.PointsHere != tt.pointsHere ||
			!slices.Equal(added.Addresses, f.svc.resolver.(hosts)[tt.domain]) {
			t.Errorf("%s: records %v, addresses %v, points here %v; want %v, %v", tt.domain, added.Records, added.Addresses,
				added.PointsHere, tt.records, tt.pointsHere)
		}
	}
}

func TestDomainConflictsAfterAConfigurationChange(t *testing.T) {
	f := newFixture(t, nil)
	f.addProject(t, "blog")
	f.svc.resolver = hosts{}
	for _, name := range []string{"www.example.org", "deploy.example.net", "shop.example.net"} {
		if _, err := f.svc.AddDomain(context.Background(), "blog", name); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := f.svc.DomainConflicts(); err != nil || len(got) != 0 {
		t.Fatalf("before the change: %q, %v", got, err)
	}
	f.svc.cfg.Sites.Domain = "example.org"
	f.svc.cfg.PublicURL = "https://deploy.example.net:8443"
	got, err := f.svc.DomainConflicts()
	want := []string{
		"custom domain www.example.org of project blog is now under sites.domain (example.org), whose names are the sites' own hosts, " +
			"where the project's site is not served: remove it with 'miaobu domain remove blog www.example.org', or change the configuration back",
		"custom domain deploy.example.net of project blog is now the host of the agent's public URL, " +
			"where the project's site is not served: remove it with 'miaobu domain remove blog deploy.example.net', or change the configuration back",
	}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("DomainConflicts:\n%q, %v\nwant\n%q", got, err, want)
	}
}

// FuzzNormalizeDomain: a custom domain accepted is a plain host name, the one the TLS decision and
// the ask endpoint accept, and normalizing it again changes nothing.
func FuzzNormalizeDomain(f *testing.F) {
	for _, seed := range []string{"WWW.Example.com.", "bücher.example", "127.1", "0x7f.1", "a.localhost", "-a.example.com", "example.com:443", "ａｂｃ.example"} {
		f.Add(seed)
	}
	svc := &Service{cfg: &config.Config{PublicURL: "https://deploy.example.com", Sites: config.Sites{Domain: "sites.example.com"}}}
	f.Fuzz(func(t *testing.T, raw string) {
		name, err := svc.normalizeDomain(raw)
		if err != nil {
			return
		}
		if !serving.IsHostName(name) {
			t.Fatalf("normalizeDomain(%q) = %q, which is not a plain host name", raw, name)
		}
		if again, err := svc.normalizeDomain(name); err != nil || again != name {
			t.Fatalf("normalizeDomain(%q) = %q, then %q, %v", raw, name, again, err)
		}
	})
}
