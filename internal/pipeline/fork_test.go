package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/gittest"
)

// forkRepo is a project repository holding a fork's pull request 7 only as refs/pull/7/head, the
// way GitHub keeps it: the commit is on no branch. It returns the repository and the head commit.
func forkRepo(t *testing.T, script string) (*gittest.Repo, string) {
	t.Helper()
	r := gittest.New(t)
	r.Commit("base", map[string]string{"index.html": "base"})
	r.Git("checkout", "--quiet", "-b", "fork-head")
	head := r.Commit("fork's change", map[string]string{
		"package.json": `{"name":"site","private":true,"scripts":{"build":"node build.js"}}`,
		"build.js":     script,
	})
	r.Git("update-ref", "refs/pull/7/head", head)
	r.Git("checkout", "--quiet", "main")
	r.Git("branch", "--quiet", "-D", "fork-head")
	return r, head
}

// forkJob is the job of pull request 7's head from a fork, with a project variable.
func forkJob(data string, r *gittest.Repo, sha string) Job {
	job := testJob(data, r, sha, 1)
	job.Branch, job.Trigger, job.PullRequest, job.Fork = "patch-1", "pull_request", 7, true
	job.Env = map[string]string{"API_KEY": "project-secret-value"}
	return job
}

func TestForkBuildGetsNoVariablesNoCacheAndItsRecordedHead(t *testing.T) {
	data := hostTempDir(t)
	b := sandboxedBuilder(t, data)
	r, head := forkRepo(t, `const fs = require("fs");
fs.mkdirSync("dist", {recursive: true});
fs.writeFileSync("dist/index.html", "key=" + process.env.API_KEY);
`)
	job := forkJob(data, r, head)
	_, log, err := build(t, context.Background(), b, data, job)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	if got := readFile(t, filepath.Join(job.PublishDir, "index.html")); got != "key=undefined" {
		t.Errorf("the fork's build saw the project's variable: %q", got)
	}
	if !strings.Contains(log, "Pull request #7 comes from a fork: built in the sandbox, without the project's variables, token or cache") {
		t.Errorf("the log does not say how a fork is built:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(data, "cache", "1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the fork's build made or used the project's cache: %v", err)
	}

	// refs/pull/7/head moved on since the head was approved: the approved commit is not built in its place.
	r.Git("update-ref", "refs/pull/7/head", r.Git("rev-parse", "main"))
	job.PublishDir += "-moved"
	_, log, err = build(t, context.Background(), b, data, job)
	if err == nil || !strings.Contains(err.Error(), "the head of pull request #7 is now "+r.Git("rev-parse", "--short=7", "main")+
		", not the recorded commit "+head[:7]) {
		t.Fatalf("build of a moved pull request: %v\n%s", err, log)
	}
	r.Git("update-ref", "-d", "refs/pull/7/head")
	if _, _, err = build(t, context.Background(), b, data, job); err == nil || !strings.Contains(err.Error(), "refs/pull/7/head is not in the repository") {
		t.Fatalf("build of a closed pull request: %v", err)
	}
}

func TestForkBuildRefusedWithoutSandbox(t *testing.T) {
	b, data := testBuilder(t)
	b.Bwrap = ""
	r, head := forkRepo(t, `require("fs").mkdirSync("dist")`)
	if _, log, err := build(t, context.Background(), b, data, forkJob(data, r, head)); !errors.Is(err, ErrForkNeedsSandbox) {
		t.Fatalf("an unsandboxed fork build: %v\n%s", err, log)
	}
	if !strings.Contains(ErrForkNeedsSandbox.Error(), "install bubblewrap") {
		t.Errorf("the refusal does not say what to do: %v", ErrForkNeedsSandbox)
	}
}

func TestForkCloneSendsNoToken(t *testing.T) {
	b := &Builder{GitHubToken: "ghp_agentsecrettoken"}
	job := Job{RepoURL: "https://github.com/acme/site.git", GitHub: true}
	hasToken := func(env []string) bool {
		return slices.ContainsFunc(env, func(v string) bool { return strings.HasPrefix(v, "GIT_CONFIG_VALUE_0=Authorization") })
	}
	if !hasToken(b.gitEnv(job)) {
		t.Fatal("a project's own clone does not send the token: the check below proves nothing")
	}
	job.Fork = true
	if env := b.gitEnv(job); hasToken(env) {
		t.Fatalf("a fork's clone sends the token: %q", env)
	}
}
