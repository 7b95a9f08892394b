package agent_test

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/gittest"
)

// ask asks the public TLS ask endpoint of ta about host and returns the status.
func ask(t *testing.T, ta *agenttest.Agent, host string) int {
	t.Helper()
	resp, err := http.Get(ta.URL + api.PathTLSAsk + "?domain=" + url.QueryEscape(host))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestCustomDomainsAndTheAskEndpoint(t *testing.T) {
	cfg := agenttest.Config(t)
	cfg.PublicURL = "https://deploy.example.net"
	ta := startWithHosts(t, cfg)
	repo := gittest.New(t)
	p := ta.AddProject(t, localProject("blog", repo.Dir))
	d := ta.Deployed(t, ta.Push(t, p, repo.Commit("site", map[string]string{"index.html": "home"})))
	other := ta.AddProject(t, localProject("docs", repo.Dir))

	var added api.DomainAdded
	ta.Call(t, "POST", api.DomainsPath(p.Slug), api.DomainCreate{Domain: "WWW.Example.com"}, http.StatusCreated, &added)
	want := api.DomainAdded{Domain: api.Domain{Domain: "www.example.com", ProjectID: p.ID, Project: "blog"},
		DNSRecords: []api.DNSRecord{{Type: "CNAME", Name: "www.example.com", Value: "blog.localhost"}},
		Addresses:  []string{"127.0.0.1"}, PointsHere: true}
	if !slices.Equal(added.DNSRecords, want.DNSRecords) || added.Domain != want.Domain || !added.PointsHere {
		t.Fatalf("POST domains: %+v, want %+v", added, want)
	}
	ta.Call(t, "POST", api.DomainsPath(p.Slug), api.DomainCreate{Domain: "example.org"}, http.StatusCreated, &added)
	if want := []api.DNSRecord{{Type: "A", Name: "example.org", Value: "127.0.0.1"}}; !slices.Equal(added.DNSRecords, want) || added.PointsHere {
		t.Fatalf("an apex: %+v, want records %v and not pointing here", added, want)
	}
	ta.Call(t, "POST", api.DomainsPath(other.Slug), api.DomainCreate{Domain: "www.example.com"}, http.StatusConflict, nil)
	ta.Call(t, "POST", api.DomainsPath(p.Slug), api.DomainCreate{Domain: "example.org:80"}, http.StatusBadRequest, nil)
	ta.Call(t, "POST", api.DomainsPath("nope"), api.DomainCreate{Domain: "a.example.org"}, http.StatusNotFound, nil)
	var list []api.Domain
	ta.Call(t, "GET", api.DomainsPath(p.Slug), nil, http.StatusOK, &list)
	if len(list) != 2 || list[0].Domain != "www.example.com" || list[1].Domain != "example.org" {
		t.Fatalf("GET domains: %+v", list)
	}

	req, _ := http.NewRequest("GET", ta.URL+"/", nil)
	req.Host = "www.example.com:" + port(ta)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "home" {
		t.Fatalf("the site at its custom domain: %d %q", resp.StatusCode, body)
	}

	for host, code := range map[string]int{
		"deploy.example.net": 200, "blog.localhost": 200, "docs.localhost": 200, "www.example.com": 200, "example.org": 200,
		"blog--" + strconv.FormatInt(d.ID, 10) + ".localhost": 200, "docs--" + strconv.FormatInt(d.ID, 10) + ".localhost": 404,
		"shop.localhost": 404, "example.com": 404, "": 404, "127.0.0.1": 404,
	} {
		if got := ask(t, ta, host); got != code {
			t.Errorf("ask %q: %d, want %d", host, got, code)
		}
	}

	ta.Call(t, "DELETE", api.DomainsPath(p.Slug)+"/www.example.com", nil, http.StatusOK, &list)
	if len(list) != 1 || ask(t, ta, "www.example.com") != http.StatusNotFound {
		t.Fatalf("after DELETE: %+v, ask %d", list, ask(t, ta, "www.example.com"))
	}
	ta.Call(t, "DELETE", api.DomainsPath(p.Slug)+"/www.example.com", nil, http.StatusNotFound, nil)
	ta.Call(t, "DELETE", api.PathProjects+"/"+p.Slug, nil, http.StatusOK, nil)
	if got := ask(t, ta, "example.org"); got != http.StatusNotFound {
		t.Fatalf("the domain of a deleted project: ask %d", got)
	}
	ta.Call(t, "POST", api.DomainsPath(other.Slug), api.DomainCreate{Domain: "example.org"}, http.StatusCreated, nil)
}
