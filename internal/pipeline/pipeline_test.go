package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/buildcache"
	"github.com/miaobu/miaobu/internal/gittest"
	"github.com/miaobu/miaobu/internal/proctest"
	"github.com/miaobu/miaobu/internal/store"
)

// nodeSite is a project whose build script writes dist/index.html with body.
func nodeSite(body string) map[string]string {
	return map[string]string{
		"package.json": `{"name":"site","version":"1.0.0","private":true,"scripts":{"build":"node build.js"}}`,
		"build.js": `const fs = require("fs");
fs.mkdirSync("dist", {recursive: true});
fs.writeFileSync("dist/index.html", ` + "`" + body + "`" + `);
console.log("built");
`,
	}
}

// hostTempDir is a temporary directory outside /tmp, which the sandbox replaces with an empty one
// anyway: a file hidden there proves nothing.
func hostTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/tmp", "miaobu-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// testBuilder returns a builder whose data dir holds an admin token and a store file, sandboxed
// when bubblewrap works here.
func testBuilder(t *testing.T) (*Builder, string) {
	t.Helper()
	return testBuilderIn(t, hostTempDir(t))
}

// testBuilderIn is testBuilder with the data dir data.
func testBuilderIn(t *testing.T, data string) (*Builder, string) {
	t.Helper()
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"admin-token": "admin-token-secret-value", "miaobu.db": "bbolt-file-secret-value"} {
		if err := os.WriteFile(filepath.Join(data, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	bwrap, _, err := ResolveSandbox(SandboxAuto)
	if err != nil {
		t.Fatal(err)
	}
	return &Builder{WorkRoot: filepath.Join(data, "builds"), Caches: buildcache.New(filepath.Join(data, "cache")), Bwrap: bwrap,
		Hide: []string{data}, CloneTimeout: time.Minute}, data
}

// testJob is a job for the repository's commit, publishing into the data dir.
func testJob(data string, r *gittest.Repo, sha string, id int64) Job {
	var steps []store.Status
	return Job{DeploymentID: id, ProjectID: 1, RepoURL: r.Dir, CommitSHA: sha, Branch: "main", Trigger: "webhook",
		PublishDir: filepath.Join(data, "sites", "site", strings.Repeat("x", int(id))),
		Step:       func(s store.Status) error { steps = append(steps, s); return nil }}
}

// build runs a job and returns its result, error and log.
func build(t *testing.T, ctx context.Context, b *Builder, data string, job Job) (*Result, string, error) {
	t.Helper()
	logPath := filepath.Join(data, "logs", "build.log")
	_ = os.Remove(logPath)
	var secrets []string
	for _, v := range job.Env {
		secrets = append(secrets, v)
	}
	log, err := OpenLog(logPath, secrets)
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.Build(ctx, job, log)
	log.Close()
	text, _ := os.ReadFile(logPath)
	return res, string(text), err
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStaticSitePublishesRootWithoutGit(t *testing.T) {
	b, data := testBuilder(t)
	r := gittest.New(t)
	sha := r.Commit("static", map[string]string{"index.html": "<h1>hi</h1>", "css/site.css": "body{}"})
	job := testJob(data, r, sha, 1)
	res, log, err := build(t, context.Background(), b, data, job)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	if res.Settings.Framework != "static" || res.Files != 2 {
		t.Errorf("settings %+v, %d files; want static, 2 files", res.Settings, res.Files)
	}
	if got := readFile(t, filepath.Join(job.PublishDir, "index.html")); got != "<h1>hi</h1>" {
		t.Errorf("index.html = %q", got)
	}
	if _, err := os.Stat(filepath.Join(job.PublishDir, ".git")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf(".git was published: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, "builds", "1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("workspace left behind: %v", err)
	}
	for _, want := range []string{"Deployment #1 of commit " + sha, "Commit: static — Ada", "Framework: static"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestBuildsTheRecordedCommitNotTheTip(t *testing.T) {
	b, data := testBuilder(t)
	r := gittest.New(t)
	first := r.Commit("first", nodeSite("first"))
	r.Commit("second", nodeSite("second"))
	var message, author string
	job := testJob(data, r, first, 1)
	job.Commit = func(m, a string) { message, author = m, a }
	_, log, err := build(t, context.Background(), b, data, job)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	if got := readFile(t, filepath.Join(job.PublishDir, "index.html")); got != "first" {
		t.Errorf("published %q, want the recorded commit's %q", got, "first")
	}
	if message != "first" || author != "Ada" {
		t.Errorf("commit info %q by %q", message, author)
	}
	if !regexpMatch(`(?m)^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] built$`, log) {
		t.Errorf("build output not timestamped in the log:\n%s", log)
	}
}

func TestFailedBuildReportsTheFailure(t *testing.T) {
	b, data := testBuilder(t)
	r := gittest.New(t)
	sha := r.Commit("broken", map[string]string{
		"package.json": `{"name":"x","scripts":{"build":"node build.js"}}`,
		"build.js":     `console.log("compiling"); console.error("Error: cannot find module ./missing"); process.exit(3)`,
	})
	job := testJob(data, r, sha, 1)
	_, log, err := build(t, context.Background(), b, data, job)
	if err == nil {
		t.Fatal("a failing build succeeded")
	}
	for _, want := range []string{"build command `npm run build` failed", "exit status 3", "Error: cannot find module ./missing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if !strings.Contains(log, "Error: cannot find module ./missing") {
		t.Errorf("log lacks the failure:\n%s", log)
	}
	if _, statErr := os.Stat(job.PublishDir); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("a failed build published files")
	}
}

func TestOutputMustStayInsideTheBuild(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"symlink to /etc/passwd": {"index.html": "x", "passwd": "->/etc/passwd"},
		"symlinked directory":    {"index.html": "x", "etc": "->/etc"},
		"dangling symlink":       {"index.html": "x", "gone": "->/nonexistent/file"},
	} {
		t.Run(name, func(t *testing.T) {
			b, data := testBuilder(t)
			r := gittest.New(t)
			job := testJob(data, r, r.Commit("evil", files), 1)
			_, _, err := build(t, context.Background(), b, data, job)
			if err == nil || !strings.Contains(err.Error(), "outside the output directory") {
				t.Fatalf("err = %v, want a symlink refused", err)
			}
			if _, statErr := os.Stat(job.PublishDir); !errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("files were published")
			}
		})
	}
	t.Run("output directory outside the checkout", func(t *testing.T) {
		b, data := testBuilder(t)
		r := gittest.New(t)
		job := testJob(data, r, r.Commit("out", map[string]string{"index.html": "x", "out": "->/etc"}), 1)
		job.OutputDirectory = "out"
		_, _, err := build(t, context.Background(), b, data, job)
		if err == nil || !strings.Contains(err.Error(), "outside the checkout") {
			t.Fatalf("err = %v, want the output refused", err)
		}
	})
	t.Run("symlink inside the output is published as a copy", func(t *testing.T) {
		b, data := testBuilder(t)
		r := gittest.New(t)
		job := testJob(data, r, r.Commit("ok", map[string]string{"index.html": "home", "alias.html": "->index.html"}), 1)
		if _, log, err := build(t, context.Background(), b, data, job); err != nil {
			t.Fatalf("build: %v\n%s", err, log)
		}
		info, err := os.Lstat(filepath.Join(job.PublishDir, "alias.html"))
		if err != nil || !info.Mode().IsRegular() {
			t.Fatalf("alias.html: %v %v", info, err)
		}
	})
}

func TestBuildOutputIsPublishedWithoutSetuid(t *testing.T) {
	b, data := testBuilder(t)
	r := gittest.New(t)
	sha := r.Commit("modes", map[string]string{
		"package.json": `{"name":"x","scripts":{"build":"node build.js"}}`,
		"build.js": `const fs = require("fs"); fs.mkdirSync("dist", {recursive: true});
fs.writeFileSync("dist/index.html", "home");
fs.writeFileSync("dist/tool", "#!/bin/sh\n"); fs.chmodSync("dist/tool", 0o4755);
fs.writeFileSync("dist/open.js", "1"); fs.chmodSync("dist/open.js", 0o777);`,
	})
	job := testJob(data, r, sha, 1)
	if _, log, err := build(t, context.Background(), b, data, job); err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	for name, want := range map[string]os.FileMode{"tool": 0o755, "open.js": 0o755} {
		info, err := os.Stat(filepath.Join(job.PublishDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode() != want {
			t.Errorf("published %s has mode %v, want %v", name, info.Mode(), want)
		}
	}
}

func TestOutputNeverLeadsIntoGit(t *testing.T) {
	for name, tc := range map[string]struct {
		files  map[string]string
		output string
	}{
		"symlink to .git":                {files: map[string]string{"index.html": "x", "gitdir": "->.git"}},
		"symlink to .git/config":         {files: map[string]string{"index.html": "x", "x": "->.git/config"}},
		"symlink through a directory":    {files: map[string]string{"index.html": "x", "a/b": "->../.git/refs"}},
		"symlink out of dist into .git":  {files: map[string]string{"dist/index.html": "x", "dist/x": "->../.git/config"}, output: "dist"},
		"output directory is .git":       {files: map[string]string{"index.html": "x"}, output: ".git"},
		"output directory links to .git": {files: map[string]string{"index.html": "x", "out": "->.git"}, output: "out"},
	} {
		t.Run(name, func(t *testing.T) {
			b, data := testBuilder(t)
			r := gittest.New(t)
			job := testJob(data, r, r.Commit("evil", tc.files), 1)
			job.OutputDirectory = tc.output
			_, log, err := build(t, context.Background(), b, data, job)
			if err == nil {
				t.Fatalf("published:\n%s", log)
			}
			if !strings.Contains(err.Error(), ".git") {
				t.Errorf("err = %v, want the link into .git refused", err)
			}
			if _, statErr := os.Stat(job.PublishDir); !errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("files were published")
			}
		})
	}
}

func TestBuildEnvironmentIsClean(t *testing.T) {
	t.Setenv("MIAOBU_GITHUB_TOKEN", "ghp_agentsecrettoken")
	t.Setenv("MIAOBU_OSS_ACCESS_KEY_SECRET", "oss-agent-secret")
	t.Setenv("GITHUB_TOKEN", "ghp_othersecret")
	b, data := testBuilder(t)
	b.GitHubToken = "ghp_agentsecrettoken"
	r := gittest.New(t)
	sha := r.Commit("env", map[string]string{
		"package.json": `{"name":"x","scripts":{"build":"node build.js"}}`,
		"build.js": `const fs = require("fs"); fs.mkdirSync("dist", {recursive: true});
const env = Object.entries(process.env).map(([k, v]) => k + "=" + v).join("\n");
console.log(env);
fs.writeFileSync("dist/env.txt", env);
fs.writeFileSync("dist/install-node-env.txt", fs.readFileSync("install-node-env.txt"));`,
	})
	job := testJob(data, r, sha, 1)
	job.InstallCommand = `echo "NODE_ENV=${NODE_ENV:-unset}" > install-node-env.txt`
	job.Env = map[string]string{"API_KEY": "project-secret-value", "PATH": "/evil"}
	_, log, err := build(t, context.Background(), b, data, job)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	env := readFile(t, filepath.Join(job.PublishDir, "env.txt"))
	for _, secret := range []string{"ghp_agentsecrettoken", "oss-agent-secret", "ghp_othersecret", "MIAOBU_"} {
		if strings.Contains(env, secret) || strings.Contains(log, secret) {
			t.Errorf("the build saw the agent's %q", secret)
		}
	}
	for _, want := range []string{"CI=true", "NODE_ENV=production", "API_KEY=project-secret-value", "HOME=" + filepath.Join(data, "builds")} {
		if !strings.Contains(env, want) {
			t.Errorf("build env lacks %q:\n%s", want, env)
		}
	}
	if strings.Contains(env, "PATH=/evil") {
		t.Errorf("a project variable replaced PATH")
	}
	if got := readFile(t, filepath.Join(job.PublishDir, "install-node-env.txt")); got != "NODE_ENV=unset\n" {
		t.Errorf("install saw %q, want NODE_ENV unset", got)
	}
	if strings.Contains(log, "project-secret-value") || !strings.Contains(log, "API_KEY="+mask) {
		t.Errorf("the project's variable is not masked in the log:\n%s", log)
	}
}

func TestSandboxHidesTheDataDir(t *testing.T) {
	b, data := testBuilder(t)
	if b.Bwrap == "" {
		t.Skip("bubblewrap is not usable here")
	}
	r := gittest.New(t)
	sha := r.Commit("thief", map[string]string{
		"package.json": `{"name":"x","scripts":{"build":"node build.js"}}`,
		"build.js": `const fs = require("fs"); fs.mkdirSync("dist", {recursive: true});
let out = "";
for (const f of process.argv.slice(2)) {
  try { out += f + ": " + fs.readFileSync(f, "utf8") + "\n"; } catch (e) { out += f + ": " + e.code + "\n"; }
}
try { fs.writeFileSync(process.argv[2] + ".planted", "x"); out += "wrote into the data dir\n"; } catch (e) { out += "write: " + e.code + "\n"; }
console.log(out);
fs.writeFileSync("dist/index.html", out);`,
	})
	job := testJob(data, r, sha, 1)
	job.BuildCommand = "node build.js " + filepath.Join(data, "admin-token") + " " + filepath.Join(data, "miaobu.db")
	_, log, err := build(t, context.Background(), b, data, job)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	got := readFile(t, filepath.Join(job.PublishDir, "index.html"))
	if strings.Contains(got, "secret-value") || strings.Contains(log, "secret-value") {
		t.Fatalf("the build read the agent's files:\n%s", got)
	}
	if strings.Count(got, "ENOENT") != 2 || strings.Contains(got, "wrote into") {
		t.Errorf("unexpected sandbox view:\n%s", got)
	}
	if _, err := os.Stat(filepath.Join(data, "admin-token.planted")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the build wrote into the data dir")
	}
	// The same files are readable outside the sandbox: the test proves the sandbox, not permissions.
	if readFile(t, filepath.Join(data, "admin-token")) != "admin-token-secret-value" {
		t.Fatal("admin token unreadable outside the sandbox")
	}
}

func TestDevDependenciesAreInstalled(t *testing.T) {
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("npm is not installed")
	}
	b, data := testBuilder(t)
	r := gittest.New(t)
	sha := r.Commit("vite-style", map[string]string{
		"package.json":                    `{"name":"app","version":"1.0.0","private":true,"scripts":{"build":"node build.js"},"devDependencies":{"fake-bundler":"file:./tools/fake-bundler"}}`,
		"tools/fake-bundler/package.json": `{"name":"fake-bundler","version":"1.0.0","main":"index.js"}`,
		"tools/fake-bundler/index.js":     `module.exports = (s) => "<!doctype html>" + s;`,
		"build.js": `const bundle = require("fake-bundler"); const fs = require("fs");
fs.mkdirSync("dist", {recursive: true}); fs.writeFileSync("dist/index.html", bundle("bundled"));`,
	})
	job := testJob(data, r, sha, 1)
	_, log, err := build(t, context.Background(), b, data, job)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	if got := readFile(t, filepath.Join(job.PublishDir, "index.html")); got != "<!doctype html>bundled" {
		t.Errorf("index.html = %q", got)
	}
	if !strings.Contains(log, "Installing: npm install") {
		t.Errorf("log lacks the install:\n%s", log)
	}
}

func TestTimeoutAndCancelKillEveryProcess(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cause     error
		sandboxed bool
	}{{"timeout", errors.New("build timed out after 1s"), true}, {"cancel", errors.New("cancelled by user"), true},
		{"cancel without sandbox", errors.New("cancelled by user"), false}} {
		t.Run(tc.name, func(t *testing.T) {
			b, data := testBuilder(t)
			if !tc.sandboxed {
				b.Bwrap = ""
			}
			r := gittest.New(t)
			marker := fmt.Sprintf("miaobu-test-marker-%d", time.Now().UnixNano())
			sha := r.Commit("hang", map[string]string{"index.html": "x"})
			job := testJob(data, r, sha, 1)
			// A background child and a foreground one, both meant to outlive the build.
			job.BuildCommand = `(sleep 300; echo ` + marker + `) & node -e 'setTimeout(() => {}, 300000)' ` + marker + `; wait`
			job.InstallCommand = "true"
			ctx, cancel := context.WithCancelCause(context.Background())
			go func() {
				deadline := time.Now().Add(10 * time.Second)
				for len(proctest.WithMarker(marker)) == 0 && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				cancel(tc.cause)
			}()
			start := time.Now()
			_, log, err := build(t, ctx, b, data, job)
			if !errors.Is(err, tc.cause) {
				t.Fatalf("err = %v, want %v\n%s", err, tc.cause, log)
			}
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Errorf("stopping took %s", elapsed)
			}
			time.Sleep(100 * time.Millisecond)
			if left := proctest.WithMarker(marker); len(left) > 0 {
				t.Errorf("processes left behind: %v", left)
			}
		})
	}
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }

// TestStrayProcessesDieWithTheStep runs builds without the sandbox whose background processes try to
// outlive them: leaving the build's session, clearing their environment, double forking, and killing
// the process that watches the step, once the stray process has left the step's session. None may
// survive the step, nor make it wait: they sleep far longer than the bound on the build's time.
func TestStrayProcessesDieWithTheStep(t *testing.T) {
	if err := AdoptOrphans(); err != nil {
		t.Fatal(err)
	}
	// %[1]s is the marker that the stray processes' command lines hold, %[2]s the file a stray
	// process creates once it has left the step's session.
	const stray = `sh -c 'touch %[2]s; exec sleep %[1]s' > /dev/null 2>&1 < /dev/null`
	const settled = `until [ -e %[2]s ]; do sleep 0.01; done`
	for name, command := range map[string]string{
		"setsid":            `setsid ` + stray + ` & ` + settled,
		"env -i and setsid": `env -i setsid ` + stray + ` & ` + settled,
		"double fork":       `(env -i setsid ` + stray + ` &); ` + settled,
		// Were the step to outlive its watcher, its own marked sleep would survive it.
		"the step's watcher killed": `env -i setsid ` + stray + ` & ` + settled + `; [ $PPID = ` + strconv.Itoa(os.Getpid()) +
			` ] || kill -9 $PPID; sleep %[1]s`,
	} {
		t.Run(name, func(t *testing.T) {
			b, data := testBuilder(t)
			b.Bwrap = ""
			marker := fmt.Sprintf("300.%d", time.Now().UnixNano()%1e9)
			t.Cleanup(func() { proctest.KillWithMarker(marker) })
			r := gittest.New(t)
			job := testJob(data, r, r.Commit("daemon", map[string]string{"index.html": "x"}), 1)
			job.InstallCommand = "true"
			job.BuildCommand = fmt.Sprintf(command, marker, filepath.Join(t.TempDir(), "settled"))
			start := time.Now()
			_, log, _ := build(t, context.Background(), b, data, job)
			if time.Since(start) > time.Minute {
				t.Errorf("the step waited for its stray processes:\n%s", log)
			}
			if left := proctest.WithMarker(marker); len(left) > 0 {
				t.Errorf("a process survived its step: %v\n%s", left, log)
			}
		})
	}
}

func TestBuildLogHidesCredentialsInRepoURLs(t *testing.T) {
	for raw, want := range map[string]string{
		"https://user:s3cret@git.example.com/a/b.git": "https://***@git.example.com/a/b.git",
		"https://ghp_token@github.com/a/b.git":        "https://***@github.com/a/b.git",
		"https://github.com/a/b.git":                  "https://github.com/a/b.git",
		"git@github.com:a/b.git":                      "git@github.com:a/b.git",
		"/srv/repos/site":                             "/srv/repos/site",
	} {
		if got := withoutPassword(raw); got != want {
			t.Errorf("withoutPassword(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestHugeCommitMessageIsCutInTheLog(t *testing.T) {
	b, data := testBuilder(t)
	r := gittest.New(t)
	r.Commit("static", map[string]string{"index.html": "<h1>hi</h1>"})
	huge := strings.Repeat("a commit message that goes on ", 700_000) // about 20 MB, on one line
	messageFile := filepath.Join(t.TempDir(), "message")
	if err := os.WriteFile(messageFile, []byte(huge), 0o600); err != nil {
		t.Fatal(err)
	}
	r.Git("commit", "--quiet", "--amend", "-F", messageFile)
	// A manual deploy: the message is read from git.
	_, log, err := build(t, context.Background(), b, data, testJob(data, r, r.Git("rev-parse", "HEAD"), 1))
	if err != nil {
		t.Fatalf("build: %v\n%.2000s", err, log)
	}
	if want := "Commit: " + store.LimitCommitMessage(huge) + " — Ada\n"; len(log) > 2*store.MaxCommitMessage+2000 || !strings.Contains(log, want) {
		t.Fatalf("a log of %d bytes, without the cut message:\n%.2000s", len(log), log)
	}
}
