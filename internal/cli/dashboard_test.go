package cli

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/httpstub"
)

func TestDashboardPrintsAndOpensTheLink(t *testing.T) {
	t.Parallel()
	const link = "https://miaobu.example.com/login?code=abc"
	answer := api.LoginCode{Code: "abc", URL: link, ExpiresAt: time.Now().Add(5 * time.Minute)}
	for _, tc := range []struct {
		name       string
		args       []string
		openErr    error
		wantOpened bool
		wantErr    string
	}{
		{"opens the browser", nil, nil, true, "works once"},
		{"--no-browser", []string{"--no-browser"}, nil, false, "works once"},
		{"no browser to open", nil, errors.New("xdg-open not found"), true, "could not open a browser"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli := newStubCLI(t)
			cli.reg.Register("code", httpstub.REST("POST", api.PathLoginCodes), httpstub.StatusJSONResponse(201, answer))
			var opened []string
			cli.f.OpenBrowser = func(url string) error {
				opened = append(opened, url)
				return tc.openErr
			}
			code := cli.run(t.Context(), append([]string{"dashboard"}, tc.args...)...)
			if code != 0 || cli.stdout.String() != link+"\n" || !strings.Contains(cli.stderr.String(), tc.wantErr) {
				t.Errorf("exit %d, stdout %q, stderr %q", code, cli.stdout, cli.stderr)
			}
			if (len(opened) == 1 && opened[0] == link) != tc.wantOpened || len(opened) > 1 {
				t.Errorf("opened %q", opened)
			}
		})
	}
}

func TestDashboardJSON(t *testing.T) {
	t.Parallel()
	cli := newStubCLI(t)
	cli.reg.Register("code", httpstub.REST("POST", api.PathLoginCodes), httpstub.StatusJSONResponse(201, api.LoginCode{Code: "abc", URL: "http://x/login?code=abc"}))
	cli.f.OpenBrowser = func(string) error { t.Error("--json opened a browser"); return nil }
	if code := cli.run(t.Context(), "dashboard", "--json"); code != 0 || !strings.Contains(cli.stdout.String(), `"url": "http://x/login?code=abc"`) {
		t.Errorf("exit %d, stdout %q", code, cli.stdout)
	}
}
