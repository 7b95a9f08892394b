package agent

import (
	"context"
	"fmt"
	"net/http"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/domain"
	"github.com/miaobu/miaobu/internal/store"
)

// domainsView lists the custom domains of p.
func domainsView(p *store.Project) []api.Domain {
	out := make([]api.Domain, 0, len(p.Domains))
	for _, name := range p.Domains {
		out = append(out, api.Domain{Domain: name, ProjectID: p.ID, Project: p.Slug})
	}
	return out
}

func (a *Agent) listDomains(w http.ResponseWriter, r *http.Request) error {
	p, err := a.domain.Project(r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, domainsView(p))
}

func (a *Agent) addDomain(w http.ResponseWriter, r *http.Request) error {
	var req api.DomainCreate
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	added, err := a.domain.AddDomain(r.Context(), r.PathValue("id"), req.Domain)
	if err != nil {
		return err
	}
	out := api.DomainAdded{Domain: api.Domain{Domain: added.Domain, ProjectID: added.Project.ID, Project: added.Project.Slug},
		DNSRecords: []api.DNSRecord{}, Addresses: added.Addresses, PointsHere: added.PointsHere}
	for _, rec := range added.Records {
		out.DNSRecords = append(out.DNSRecords, api.DNSRecord{Type: rec.Type, Name: rec.Name, Value: rec.Value})
	}
	if out.Addresses == nil {
		out.Addresses = []string{}
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (a *Agent) removeDomain(w http.ResponseWriter, r *http.Request) error {
	p, name, err := a.domain.RemoveDomain(r.PathValue("id"), r.PathValue("domain"))
	if err != nil {
		return err
	}
	a.forgetCertificate(r.Context(), p, name)
	return writeJSON(w, http.StatusOK, domainsView(p))
}

// forgetCertificate deletes the certificate of name, a custom domain p no longer has, when the agent
// serves HTTPS itself.
func (a *Agent) forgetCertificate(ctx context.Context, p *store.Project, name string) {
	if certs := a.certs.Load(); certs != nil {
		if err := certs.forget(ctx, name); err != nil {
			a.log.Warn("deleting the certificate of a removed domain", "project", p.ID, "domain", name, "err", err)
		}
	}
}

// tlsAsk answers whether the agent serves ?domain=HOST: 200 or 404, for a TLS server in front that
// asks before it gets a certificate; HOST must be a plain host name, as the agent's own TLS sees it.
func (a *Agent) tlsAsk(w http.ResponseWriter, r *http.Request) error {
	host := r.URL.Query().Get("domain")
	ok, err := a.sites.Serves(host)
	if err != nil {
		return err
	}
	if !ok {
		return domain.Errorf(domain.NotFound, "%s is not served here", host)
	}
	_, err = fmt.Fprintln(w, "ok")
	return err
}
