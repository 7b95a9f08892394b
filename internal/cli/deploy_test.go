package cli

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/httpstub"
)

const deploySHA = "6dcb09b5b57875f334f61aebed695e2e4193db5e"

// queued is deployment 7 of project 1 as the agent answers a deploy.
var queued = api.Deployment{ID: 7, ProjectID: 1, CommitSHA: deploySHA, Branch: "main", Trigger: api.TriggerManual, Status: api.StatusQueued}

// ended returns deployment 7 once it has ended with status.
func ended(status string, live bool, errorMessage string) api.Deployment {
	d := queued
	d.Status, d.Live, d.ErrorMessage, d.URL = status, live, errorMessage, "http://site--7.localhost:8000/"
	return d
}

func TestDeployWaitStreamsTheLogAndSucceeds(t *testing.T) {
	t.Parallel()
	cli := newStubCLI(t)
	cli.reg.Register("deploy", httpstub.REST("POST", "/api/v1/projects/site/deploy"), httpstub.JSONResponse(queued))
	cli.reg.Register("log", httpstub.REST("GET", "/api/v1/deployments/7/logs?follow=1"), httpstub.StringResponse("==> Building\nbuilt in 2s\n"))
	cli.reg.Register("deployment", httpstub.REST("GET", "/api/v1/deployments/7"), httpstub.JSONResponse(ended(api.StatusDeployed, true, "")))
	cli.reg.Register("project", httpstub.REST("GET", "/api/v1/projects/1"), httpstub.JSONResponse(api.Project{ID: 1, Slug: "site", SiteURL: "http://site.localhost:8000/"}))

	code := cli.run(t.Context(), "deploy", "site", "--commit", deploySHA, "--wait")
	want := "Queued deployment #7 of 6dcb09b (main)\n==> Building\nbuilt in 2s\n" +
		"✓ Live at http://site.localhost:8000/\n  This deployment stays at http://site--7.localhost:8000/\n"
	if code != 0 || cli.stdout.String() != "" || cli.stderr.String() != want {
		t.Fatalf("exit %d, stdout %q, stderr %q, want exit 0 and stderr %q", code, cli.stdout, cli.stderr, want)
	}
	deploy := cli.reg.Requests[0]
	body, _ := deploy.GetBody()
	sent, _ := io.ReadAll(body)
	if string(sent) != `{"commit_sha":"`+deploySHA+`"}` || deploy.Header.Get("Authorization") != "Bearer admin-token" {
		t.Errorf("deploy sent %s with Authorization %q", sent, deploy.Header.Get("Authorization"))
	}
}

func TestDeployWaitOfAPreviewShowsThePreviewURL(t *testing.T) {
	t.Parallel()
	cli := newStubCLI(t)
	preview := ended(api.StatusDeployed, true, "")
	preview.Branch, preview.Environment, preview.Alias, preview.URL = "feat-x", "preview", "git-feat-x", "http://site--git-feat-x.localhost:8000/"
	cli.reg.Register("deploy", httpstub.REST("POST", "/api/v1/projects/site/deploy"), httpstub.JSONResponse(queued))
	cli.reg.Register("log", httpstub.REST("GET", "/api/v1/deployments/7/logs?follow=1"), httpstub.StringResponse("built\n"))
	cli.reg.Register("deployment", httpstub.REST("GET", "/api/v1/deployments/7"), httpstub.JSONResponse(preview))

	code := cli.run(t.Context(), "deploy", "site", "--branch", "feat-x", "--wait")
	if want := "built\n✓ Live at http://site--git-feat-x.localhost:8000/\n"; code != 0 || !strings.HasSuffix(cli.stderr.String(), want) {
		t.Fatalf("exit %d, stderr %q, want it to end with %q", code, cli.stderr, want)
	}
}

func TestDeployWaitFailureExitsOne(t *testing.T) {
	t.Parallel()
	cli := newStubCLI(t)
	cli.reg.Register("deploy", httpstub.REST("POST", "/api/v1/projects/site/deploy"), httpstub.JSONResponse(queued))
	cli.reg.Register("log", httpstub.REST("GET", "/api/v1/deployments/7/logs?follow=1"), httpstub.StringResponse("==> Building\nnpm ERR! missing script: build\n"))
	cli.reg.Register("deployment", httpstub.REST("GET", "/api/v1/deployments/7"),
		httpstub.JSONResponse(ended(api.StatusFailed, false, "Build failed: npm run build exited with status 1")))

	code := cli.run(t.Context(), "deploy", "site", "--wait")
	want := "Queued deployment #7 of 6dcb09b (main)\n==> Building\nnpm ERR! missing script: build\n" +
		"✗ Deployment #7 failed: Build failed: npm run build exited with status 1\n" +
		"See the build log with: miaobu deployment logs 7\n"
	if code != 1 || cli.stdout.String() != "" || cli.stderr.String() != want {
		t.Fatalf("exit %d, stdout %q, stderr %q, want exit 1 and stderr %q", code, cli.stdout, cli.stderr, want)
	}
}

func TestDeployWithoutWaitOnlyQueues(t *testing.T) {
	t.Parallel()
	cli := newStubCLI(t)
	cli.reg.Register("deploy", httpstub.REST("POST", "/api/v1/projects/site/deploy"), httpstub.JSONResponse(queued))

	code := cli.run(t.Context(), "deploy", "site", "--branch", "main")
	if code != 0 || cli.stdout.String() != "" || cli.stderr.String() != "Queued deployment #7 of 6dcb09b (main)\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, cli.stdout, cli.stderr)
	}
	body, _ := cli.reg.Requests[0].GetBody()
	if sent, _ := io.ReadAll(body); string(sent) != `{"branch":"main"}` {
		t.Errorf("deploy sent %s", sent)
	}
}

func TestDeployJSONIsOneValue(t *testing.T) {
	t.Parallel()
	for _, wait := range []bool{false, true} {
		cli := newStubCLI(t)
		cli.reg.Register("deploy", httpstub.REST("POST", "/api/v1/projects/site/deploy"), httpstub.JSONResponse(queued))
		args, want := []string{"deploy", "site", "--json"}, queued
		if wait {
			args = append(args, "--wait")
			want = ended(api.StatusDeployed, false, "")
			cli.reg.Register("log", httpstub.REST("GET", "/api/v1/deployments/7/logs?follow=1"), httpstub.StringResponse("==> Building\n"))
			cli.reg.Register("deployment", httpstub.REST("GET", "/api/v1/deployments/7"), httpstub.JSONResponse(want))
		}
		if code := cli.run(t.Context(), args...); code != 0 {
			t.Fatalf("%q: exit %d, stderr %q", args, code, cli.stderr)
		}
		dec := json.NewDecoder(strings.NewReader(cli.stdout.String()))
		var got api.Deployment
		if err := dec.Decode(&got); err != nil || got.ID != want.ID || got.Status != want.Status {
			t.Fatalf("%q: stdout %q is not the deployment (%v)", args, cli.stdout, err)
		}
		if err := dec.Decode(new(any)); !errors.Is(err, io.EOF) {
			t.Errorf("%q: stdout has more than one JSON value: %q", args, cli.stdout)
		}
		if strings.Contains(cli.stdout.String(), "Queued") || !strings.Contains(cli.stderr.String(), "Queued deployment #7") {
			t.Errorf("%q: messages are not on stderr: stdout %q, stderr %q", args, cli.stdout, cli.stderr)
		}
	}
}

func TestUnreachableAgentSaysWhereAndHow(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	agentURL := "http://" + ln.Addr().String()
	ln.Close()
	cli := newStubCLI(t)
	cfg, _ := cli.f.Config()
	cfg.AgentURL = agentURL
	cli.f.HTTPClient = newFactory(io.Discard, io.Discard).HTTPClient

	code := cli.run(t.Context(), "deploy", "site", "--wait")
	want := "error: agent not reachable at " + agentURL + " (connection refused): start it with `miaobu agent`, " +
		"or point the CLI at a running one with --agent or MIAOBU_AGENT_URL\n"
	if code != 1 || cli.stdout.String() != "" || cli.stderr.String() != want {
		t.Fatalf("exit %d, stdout %q, stderr %q, want exit 1 and stderr %q", code, cli.stdout, cli.stderr, want)
	}
}

// hangingLog registers deployment 7's followed log as a stub that shows its first line and then
// never ends, and returns a channel closed when the command asks for it.
func hangingLog(cli *stubCLI) <-chan struct{} {
	asked := make(chan struct{})
	cli.reg.Register("log", httpstub.REST("GET", "/api/v1/deployments/7/logs?follow=1"), func(req *http.Request) (*http.Response, error) {
		close(asked)
		return httpstub.HangingResponse("==> Building\n")(req)
	})
	return asked
}

// interrupt runs args on cli, cancels the run as Ctrl-C does once the command asks for the log,
// and returns the exit status.
func interrupt(t *testing.T, cli *stubCLI, asked <-chan struct{}, args ...string) int {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	exit := make(chan int, 1)
	go func() { exit <- cli.run(ctx, args...) }()
	select {
	case <-asked:
	case code := <-exit:
		t.Fatalf("%q ended with %d before it asked for the log", args, code)
	case <-time.After(10 * time.Second):
		t.Fatalf("%q did not ask for the log within 10s", args)
	}
	cancel()
	select {
	case code := <-exit:
		return code
	case <-time.After(5 * time.Second):
		t.Fatalf("%q still runs 5s after it was interrupted", args)
		return 0
	}
}

func TestInterruptedDeployWaitSaysTheDeploymentGoesOn(t *testing.T) {
	t.Parallel()
	cli := newStubCLI(t)
	cli.reg.Register("deploy", httpstub.REST("POST", "/api/v1/projects/site/deploy"), httpstub.JSONResponse(queued))

	code := interrupt(t, cli, hangingLog(cli), "deploy", "site", "--wait")
	want := "Queued deployment #7 of 6dcb09b (main)\n==> Building\n" +
		"error: interrupted: deployment #7 goes on in the agent; follow it with: miaobu deployment logs 7 -f\n"
	if code != exitFailure || cli.stderr.String() != want {
		t.Fatalf("exit %d, stderr %q, want exit %d and stderr %q", code, cli.stderr, exitFailure, want)
	}
}

func TestInterruptedLogFollowExitsOne(t *testing.T) {
	t.Parallel()
	cli := newStubCLI(t)

	code := interrupt(t, cli, hangingLog(cli), "deployment", "logs", "7", "-f")
	if code != exitFailure || cli.stdout.String() != "==> Building\n" || cli.stderr.String() != "error: interrupted\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, cli.stdout, cli.stderr)
	}
}

func TestNewCmdDeploy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args    []string
		want    deployOptions
		wantErr string
	}{
		{args: []string{"site"}, want: deployOptions{Project: "site"}},
		{args: []string{"site", "--commit", deploySHA, "--wait", "--json"}, want: deployOptions{Project: "site", Commit: deploySHA, Wait: true, JSON: true}},
		{args: []string{"7", "--branch", "dev"}, want: deployOptions{Project: "7", Branch: "dev"}},
		{args: []string{"site", "--commit", "a", "--branch", "b"}, wantErr: "give --commit or --branch, not both"},
		{args: []string{}, wantErr: "accepts 1 arg(s), received 0"},
		{args: []string{"a", "b"}, wantErr: "accepts 1 arg(s), received 2"},
	} {
		got, err := parse(t, newCmdDeploy, tc.args...)
		if tc.wantErr != "" {
			if got != nil || !errors.As(err, new(usageError)) || err.Error() != tc.wantErr {
				t.Errorf("%q: ran %v, error %v, want the usage error %q", tc.args, got != nil, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got == nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if got.Project != tc.want.Project || got.Commit != tc.want.Commit || got.Branch != tc.want.Branch ||
			got.Wait != tc.want.Wait || got.JSON != tc.want.JSON || got.Client == nil || got.IO == nil {
			t.Errorf("%q: options %+v, want %+v", tc.args, *got, tc.want)
		}
	}
}

func TestNewCmdRollback(t *testing.T) {
	t.Parallel()
	got, err := parse(t, newCmdRollback, "site", "12", "--json")
	if err != nil || got.Project != "site" || got.DeploymentID != 12 || !got.JSON {
		t.Fatalf("rollback site 12 --json: %+v %v", got, err)
	}
	if got, err = parse(t, newCmdRollback, "site"); err != nil || got.DeploymentID != 0 {
		t.Fatalf("rollback site: %+v %v", got, err)
	}
	if got, err = parse(t, newCmdRollback, "site", "latest"); got != nil || !errors.As(err, new(usageError)) ||
		err.Error() != `deployment id must be a number, not "latest"` {
		t.Fatalf("rollback site latest: ran %v, error %v", got != nil, err)
	}
}
