package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/api"
)

func TestStatusShowsTheCluster(t *testing.T) {
	cliEnv(t)
	for _, tc := range []struct {
		name   string
		quorum bool
		want   []string
	}{
		{"quorum", true, []string{"node b, 3 members, quorum\n", "No projects yet.", "a\t10.8.0.1:6222\tleader\tcurrent\n",
			"b (this node)\t10.8.0.2:6222\t\tcurrent\n", "c\t10.8.0.3:6222\t\tunreachable or behind\n"}},
		{"no quorum", false, []string{"node b, 3 members, no quorum: webhooks get 503 until a majority of nodes is back\n",
			"Projects unknown: they cannot be read without a quorum.\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = json.NewEncoder(w).Encode(api.Status{Status: "ok", Projects: []api.ProjectStatus{},
					Cluster: &api.Cluster{Node: "b", Quorum: tc.quorum, Members: []api.ClusterMember{
						{Node: "a", Address: "10.8.0.1:6222", Leader: true, Current: true},
						{Node: "b", Address: "10.8.0.2:6222", Current: true},
						{Node: "c", Address: "10.8.0.3:6222"}}}})
			}))
			t.Cleanup(srv.Close)
			t.Setenv("MIAOBU_AGENT_URL", srv.URL)
			t.Setenv("MIAOBU_TOKEN", "t")
			code, out, errOut := run("status")
			for _, want := range tc.want {
				if code != 0 || !strings.Contains(out, want) {
					t.Fatalf("exit %d, stdout %q, want it to contain %q; stderr %q", code, out, want, errOut)
				}
			}
		})
	}
}
