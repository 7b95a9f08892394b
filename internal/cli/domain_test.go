package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/store"
)

func TestDomainListAndRemove(t *testing.T) {
	t.Parallel()
	cli := startAgentCLI(t, nil, agenttest.Options{APIOnly: true})
	run, st := cli.run, cli.Store
	for _, p := range []*store.Project{{Name: "blog", Slug: "blog", RepoURL: "/r", Target: "local"}, {Name: "docs", Slug: "docs", RepoURL: "/r", Target: "local"}} {
		if err := st.CreateProject(p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.AddDomain(1, "www.example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddDomain(2, "docs.example.org"); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := run("domain", "list"); code != 0 || out != "www.example.com\tblog\ndocs.example.org\tdocs\n" {
		t.Fatalf("domain list: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ := run("domain", "list", "docs", "--json")
	var got []api.Domain
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || len(got) != 1 || got[0] != (api.Domain{Domain: "docs.example.org", ProjectID: 2, Project: "docs"}) {
		t.Fatalf("domain list docs --json: exit %d, %q", code, out)
	}
	if code, _, errOut := run("domain", "remove", "blog", "WWW.example.com"); code != 0 || !strings.Contains(errOut, "Removed www.example.com from blog") {
		t.Fatalf("domain remove: exit %d, stderr %q", code, errOut)
	}
	if code, out, errOut := run("domain", "list", "blog"); code != 0 || out != "" || errOut != "No custom domains.\n" {
		t.Fatalf("after remove: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, _, errOut := run("domain", "remove", "blog", "www.example.com"); code != 1 || !strings.Contains(errOut, "www.example.com is not a domain of blog") {
		t.Fatalf("removing it again: exit %d, stderr %q", code, errOut)
	}
}

func TestDomainAddPrintsTheRecord(t *testing.T) {
	tests := []struct {
		name   string
		answer api.DomainAdded
		out    string
		errOut string
	}{
		{"a subdomain that points here", api.DomainAdded{Domain: api.Domain{Domain: "www.example.com", Project: "blog"},
			DNSRecords: []api.DNSRecord{{Type: "CNAME", Name: "www.example.com", Value: "blog.sites.example.net"}},
			Addresses:  []string{"203.0.113.7"}, PointsHere: true},
			"Create this DNS record:\n  www.example.com\tCNAME\tblog.sites.example.net\n",
			"✓ www.example.com now serves blog\n✓ www.example.com already points at this server.\n"},
		{"an apex that points elsewhere", api.DomainAdded{Domain: api.Domain{Domain: "example.com", Project: "blog"},
			DNSRecords: []api.DNSRecord{{Type: "A", Name: "example.com", Value: "203.0.113.7"}}, Addresses: []string{"198.51.100.1"}},
			"Create this DNS record:\n  example.com\tA\t203.0.113.7\n",
			"✓ example.com now serves blog\n! example.com resolves to [198.51.100.1], not to this server.\n"},
		{"an apex of an agent that does not know its address", api.DomainAdded{Domain: api.Domain{Domain: "example.com", Project: "blog"}},
			"Create an A (and AAAA) record for example.com with this server's public address.\n",
			"✓ example.com now serves blog\nexample.com does not resolve yet.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cliEnv(t)
			var body string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				body = r.Method + " " + r.URL.Path + " " + string(b)
				w.WriteHeader(http.StatusCreated)
				_ = json.NewEncoder(w).Encode(tt.answer)
			}))
			t.Cleanup(srv.Close)
			t.Setenv("MIAOBU_AGENT_URL", srv.URL)
			t.Setenv("MIAOBU_TOKEN", "t")
			code, out, errOut := run("domain", "add", "blog", "www.example.com")
			if code != 0 || out != tt.out || errOut != tt.errOut {
				t.Errorf("exit %d\nstdout %q, want %q\nstderr %q, want %q", code, out, tt.out, errOut, tt.errOut)
			}
			if want := `POST /api/v1/projects/blog/domains {"domain":"www.example.com"}`; body != want {
				t.Errorf("request %q, want %q", body, want)
			}
		})
	}
}

func TestStatusShowsCertificates(t *testing.T) {
	cliEnv(t)
	expires := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	reason := "validating blog.example.com: connection refused\nmore detail"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(api.Status{Status: "ok", Projects: []api.ProjectStatus{{ID: 1, Slug: "blog"}},
			Certificates: []api.Certificate{{Name: "blog.sites.example.com", ExpiresAt: &expires},
				{Name: "www.example.com", LastError: &reason}}})
	}))
	t.Cleanup(srv.Close)
	t.Setenv("MIAOBU_AGENT_URL", srv.URL)
	t.Setenv("MIAOBU_TOKEN", "t")
	code, out, errOut := run("status")
	want := "\nblog.sites.example.com\t" + expires.Local().Format("2006-01-02 15:04") + "\t-\nwww.example.com\t-\tvalidating blog.example.com: connection refused\n"
	if code != 0 || !strings.HasSuffix(out, want) {
		t.Fatalf("exit %d, stdout %q, want it to end with %q; stderr %q", code, out, want, errOut)
	}
}

func TestStatusShowsFailedReconciliation(t *testing.T) {
	cliEnv(t)
	reason := "reading the branches of the repository: repository not found"
	retryAt := time.Now().Add(time.Minute + 30*time.Second)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(api.Status{Status: "ok", Projects: []api.ProjectStatus{{ID: 1, Slug: "blog",
			LastReconcileError: &reason, ReconcileRetryAt: &retryAt}}})
	}))
	t.Cleanup(srv.Close)
	t.Setenv("MIAOBU_AGENT_URL", srv.URL)
	t.Setenv("MIAOBU_TOKEN", "t")
	code, out, errOut := run("status")
	if want := "blog: reconciliation failed, tried again in 1m: " + reason + "\n"; code != 0 || !strings.Contains(errOut, want) {
		t.Fatalf("exit %d, stderr %q, want %q; stdout %q", code, errOut, want, out)
	}
}
