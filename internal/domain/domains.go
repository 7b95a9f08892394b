package domain

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/publicsuffix"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/serving"
	"github.com/miaobu/miaobu/internal/store"
)

// Resolver looks up the addresses of a host name; *net.Resolver is the real one.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// DNSRecord is a DNS record to create: Type CNAME, A or AAAA, at Name, pointing to Value.
type DNSRecord struct {
	Type, Name, Value string
}

// DomainAdded is a custom domain just attached, with how to point it at the agent.
type DomainAdded struct {
	Project *store.Project
	Domain  string
	// Records are the records to create: a CNAME to the project's site host, or for an apex A and
	// AAAA records to the site host's addresses (none when those are not known).
	Records []DNSRecord
	// Addresses are what the domain resolves to now, none when it does not resolve; PointsHere
	// says whether one of them is an address of the project's site host.
	Addresses  []string
	PointsHere bool
}

// normalizeDomain returns the lower-case ASCII form of a custom domain, or an Invalid error saying
// why raw cannot be one.
func (s *Service) normalizeDomain(raw string) (string, error) {
	name := strings.TrimSuffix(strings.TrimSpace(raw), ".")
	if name == "" {
		return "", Errorf(Invalid, "A domain is required")
	}
	if !utf8.ValidString(name) {
		return "", Errorf(Invalid, "%q is not a host name: it is not valid UTF-8", raw)
	}
	if strings.ContainsAny(name, ":/*@?#[]\\ ") {
		return "", Errorf(Invalid, "%q is not a host name: give the name alone, without a scheme, port, path or wildcard", raw)
	}
	ascii, err := api.DomainName(name)
	if err != nil {
		return "", Errorf(Invalid, "%q is not a valid host name: %v", raw, err)
	}
	switch {
	case net.ParseIP(ascii) != nil:
		return "", Errorf(Invalid, "%s is an IP address; a custom domain is a host name", ascii)
	case serving.EndsInNumber(ascii):
		return "", Errorf(Invalid, "%s ends in a number, so browsers read it as an IP address; a custom domain is a host name", ascii)
	case !serving.IsHostName(ascii):
		return "", Errorf(Invalid, "%q is not a valid host name: it has an empty label", raw)
	case s.agentsOwn(ascii) != "":
		return "", Errorf(Invalid, "%s is %s", ascii, s.agentsOwn(ascii))
	case ascii == "localhost" || strings.HasSuffix(ascii, ".localhost"):
		return "", Errorf(Invalid, "%s is a name every machine keeps for itself; a custom domain is a public host name", ascii)
	case !strings.Contains(ascii, "."):
		return "", Errorf(Invalid, "%s is not a fully qualified domain name", ascii)
	}
	return ascii, nil
}

// agentsOwn says which of the agent's own names name is, "" when none: the public URL's host, or
// a name under sites.domain.
func (s *Service) agentsOwn(name string) string {
	sites := strings.ToLower(strings.Trim(s.cfg.Sites.Domain, "."))
	switch {
	case name == serving.PublicHost(s.cfg.PublicURL):
		return "the host of the agent's public URL"
	case name == sites || strings.HasSuffix(name, "."+sites):
		return fmt.Sprintf("under sites.domain (%s), whose names are the sites' own hosts", sites)
	}
	return ""
}

// checkSlug refuses a project name whose slug would be the label of the public URL's host under
// sites.domain: that site's host is the dashboard's, which answers it instead.
func (s *Service) checkSlug(name string) error {
	host := serving.PublicHost(s.cfg.PublicURL)
	if label, ok := serving.SiteLabel(host, s.cfg.Sites.Domain); ok && store.Slugify(name) == label {
		return Errorf(Invalid, "Project %s would be served at %s, the host of the agent's public URL, where the dashboard answers: choose another name", label, host)
	}
	return nil
}

// DomainConflicts describes each custom domain that the configuration has made one of the agent's
// own names since it was added (a changed sites.domain or public_url), naming it and its project.
func (s *Service) DomainConflicts() ([]string, error) {
	projects, err := s.store.Projects()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range projects {
		for _, name := range p.Domains {
			if taken := s.agentsOwn(name); taken != "" {
				out = append(out, fmt.Sprintf("custom domain %s of project %s is now %s, where the project's site is not served: "+
					"remove it with 'miaobu domain remove %s %s', or change the configuration back", name, p.Slug, taken, p.Slug, name))
			}
		}
	}
	return out, nil
}

// AddDomain attaches a custom domain to the project ref names: its live site is served at that host
// from now on. A name that is not a host name, or one the agent uses for itself, is Invalid; one
// that a project already has is a Conflict. It then looks up where the name points, which is
// advice only: a failed lookup is no failure.
func (s *Service) AddDomain(ctx context.Context, ref, raw string) (*DomainAdded, error) {
	p, err := s.Project(ref)
	if err != nil {
		return nil, err
	}
	name, err := s.normalizeDomain(raw)
	if err != nil {
		return nil, err
	}
	if p, err = s.store.AddDomain(p.ID, name); err != nil {
		return nil, storeError(err, fmt.Sprintf("Project %s not found", ref))
	}
	s.log.Info("custom domain added", "project", p.ID, "domain", name)
	siteHost := p.Slug + "." + strings.Trim(s.cfg.Sites.Domain, ".")
	here := s.lookup(ctx, siteHost)
	added := &DomainAdded{Project: p, Domain: name, Addresses: s.lookup(ctx, name)}
	if apex, err := publicsuffix.EffectiveTLDPlusOne(name); err == nil && apex == name {
		for _, addr := range here {
			kind := "A"
			if ip := net.ParseIP(addr); ip.To4() == nil {
				kind = "AAAA"
			}
			added.Records = append(added.Records, DNSRecord{Type: kind, Name: name, Value: addr})
		}
	} else {
		added.Records = []DNSRecord{{Type: "CNAME", Name: name, Value: siteHost}}
	}
	added.PointsHere = slices.ContainsFunc(added.Addresses, func(a string) bool { return slices.Contains(here, a) })
	return added, nil
}

// lookup returns the addresses host resolves to, none when it does not resolve.
func (s *Service) lookup(ctx context.Context, host string) []string {
	addrs, err := s.resolver.LookupHost(ctx, host)
	if err != nil {
		s.log.Debug("looking up a host", "host", host, "err", err)
		return nil
	}
	return addrs
}

// RemoveDomain detaches a custom domain from the project ref names and returns the project and the
// domain's normal form.
func (s *Service) RemoveDomain(ref, raw string) (*store.Project, string, error) {
	p, err := s.Project(ref)
	if err != nil {
		return nil, "", err
	}
	name, err := api.DomainName(raw)
	if err != nil {
		name = raw
	}
	left, err := s.store.RemoveDomain(p.ID, name)
	if err != nil {
		return nil, "", storeError(err, fmt.Sprintf("%s is not a domain of %s", name, p.Slug))
	}
	s.log.Info("custom domain removed", "project", p.ID, "domain", name)
	return left, name, nil
}
