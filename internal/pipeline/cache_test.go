package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/gittest"
)

// lockedSite is a project with a lockfile whose one dependency, greet, is a directory of the
// repository at version: npm installs it offline. The install stamps node_modules, and the build
// publishes the greeting and the stamp, so a page tells which install it was built with.
func lockedSite(version string) map[string]string {
	return map[string]string{
		".gitignore":   "node_modules\ndist\n",
		"package.json": `{"name":"site","version":"1.0.0","private":true,"scripts":{"build":"node build.js"},"dependencies":{"greet":"file:vendor/greet"}}`,
		"package-lock.json": `{"name":"site","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{` +
			`"":{"name":"site","version":"1.0.0","dependencies":{"greet":"file:vendor/greet"}},` +
			`"node_modules/greet":{"resolved":"vendor/greet","link":true},"vendor/greet":{"version":"` + version + `"}}}`,
		"vendor/greet/package.json": `{"name":"greet","version":"` + version + `","main":"index.js"}`,
		"vendor/greet/index.js":     `module.exports = "hello from greet ` + version + `";`,
		"build.js": `const fs = require("fs");
fs.mkdirSync("dist", {recursive: true});
fs.writeFileSync("dist/index.html", require("greet") + " " + fs.readFileSync("node_modules/.stamp", "utf8").trim());
`,
	}
}

// stampedInstall installs lockedSite and stamps what it installed with the time.
const stampedInstall = "npm ci --offline && date +%s%N > node_modules/.stamp"

// skipped matches the log line of a build that skipped its install.
var skipped = regexp.MustCompile(`==> Installing: skipped, dependencies unchanged \(cache [0-9a-f]{7}\)\n`)

// cacheBuild builds sha of r as deployment id with the stamped install and returns the published
// page and the log.
func cacheBuild(t *testing.T, b *Builder, data string, r *gittest.Repo, sha string, id int64, change func(*Job)) (string, string) {
	t.Helper()
	job := testJob(data, r, sha, id)
	job.InstallCommand = stampedInstall
	if change != nil {
		change(&job)
	}
	_, log, err := build(t, context.Background(), b, data, job)
	if err != nil {
		t.Fatalf("build %d: %v\n%s", id, err, log)
	}
	return readFile(t, filepath.Join(job.PublishDir, "index.html")), log
}

func TestUnchangedDependenciesAreNotInstalledAgain(t *testing.T) {
	b, data := testBuilder(t)
	r := gittest.New(t)
	v1 := r.Commit("first", lockedSite("1.0.0"))
	page, log := cacheBuild(t, b, data, r, v1, 1, nil)
	if !strings.Contains(log, "==> Installing: "+stampedInstall) || skipped.MatchString(log) {
		t.Fatalf("the first build did not install:\n%s", log)
	}
	steps := []struct {
		name string
		// commit changes the repository and returns the commit to build, the same one when nil.
		commit func() string
		// clear clears the cache before the build; clearCache and noCache are the job's.
		clear, clearCache, noCache bool
		installs                   bool
		greeting                   string
	}{
		{name: "a commit that changes only the source", commit: func() string {
			return r.Commit("source", map[string]string{"build.js": lockedSite("1.0.0")["build.js"] + "// changed\n"})
		}, greeting: "1.0.0"},
		{name: "the same commit again", greeting: "1.0.0"},
		{name: "deploy --no-cache", clearCache: true, installs: true, greeting: "1.0.0"},
		{name: "the build after --no-cache", greeting: "1.0.0"},
		{name: "a new lockfile", commit: func() string { return r.Commit("bump", lockedSite("1.0.1")) }, installs: true, greeting: "1.0.1"},
		{name: "cache clear", clear: true, installs: true, greeting: "1.0.1"},
		{name: "a build that must not touch the cache", noCache: true, installs: true, greeting: "1.0.1"},
		{name: "the build after it finds the cache as it was", greeting: "1.0.1"},
	}
	sha, wantStamp := v1, strings.TrimPrefix(page, "hello from greet 1.0.0 ")
	for i, step := range steps {
		if step.commit != nil {
			sha = step.commit()
		}
		if step.clear {
			if freed, err := b.Caches.Clear(1); err != nil || freed == 0 {
				t.Fatalf("%s: Clear = %d, %v", step.name, freed, err)
			}
		}
		page, log := cacheBuild(t, b, data, r, sha, int64(i+2), func(j *Job) { j.ClearCache, j.NoCache = step.clearCache, step.noCache })
		if installed := strings.Contains(log, "==> Installing: "+stampedInstall); installed != step.installs || installed == skipped.MatchString(log) {
			t.Errorf("%s: installed = %v, want %v:\n%s", step.name, installed, step.installs, log)
		}
		greeting, stamp, _ := strings.Cut(strings.TrimPrefix(page, "hello from greet "), " ")
		if greeting != step.greeting {
			t.Errorf("%s: built with greet %s, want %s", step.name, greeting, step.greeting)
		}
		switch {
		case !step.installs && stamp != wantStamp:
			t.Errorf("%s: built with the node_modules of install %s, want those of the last kept install %s", step.name, stamp, wantStamp)
		case step.installs && !step.noCache:
			wantStamp = stamp
		}
	}
}

func TestFailedOrKilledInstallsLeaveNothingToSkipTo(t *testing.T) {
	b, data := testBuilder(t)
	r := gittest.New(t)
	sha := r.Commit("first", lockedSite("1.0.0"))
	deps := filepath.Join(data, "cache", "1", "deps")

	job := testJob(data, r, sha, 1)
	job.InstallCommand = stampedInstall + " && echo disk full >&2 && exit 28"
	if _, log, err := build(t, context.Background(), b, data, job); err == nil {
		t.Fatalf("the failing install succeeded:\n%s", log)
	}
	if entries, _ := os.ReadDir(deps); len(entries) != 0 {
		t.Errorf("a failed install left %d dependency entries", len(entries))
	}

	// Killed once node_modules is complete, before the install command returns.
	ready := filepath.Join(data, "builds", "1", "src", "node_modules", ".stamp")
	job = testJob(data, r, sha, 2)
	job.InstallCommand = stampedInstall + " && sleep 60"
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(ready); err == nil {
				break
			}
		}
		cancel()
	}()
	if _, log, err := build(t, ctx, b, data, job); err == nil {
		t.Fatalf("the killed install succeeded:\n%s", log)
	}
	if entries, _ := os.ReadDir(deps); len(entries) != 0 {
		t.Errorf("a killed install left %d dependency entries", len(entries))
	}

	_, log := cacheBuild(t, b, data, r, sha, 3, nil)
	if !strings.Contains(log, "==> Installing: "+stampedInstall) {
		t.Errorf("the build after a failed and a killed install did not install:\n%s", log)
	}
}

func TestCacheClearedDuringTheInstallWaitsForTheBuild(t *testing.T) {
	b, data := testBuilder(t)
	r := gittest.New(t)
	job := testJob(data, r, r.Commit("first", lockedSite("1.0.0")), 1)
	job.InstallCommand = "sleep 1 && " + stampedInstall
	cleared := make(chan error, 1)
	go func() {
		checkedOut := filepath.Join(data, "builds", "1", "src", "package-lock.json")
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(checkedOut); err == nil {
				break
			}
		}
		_, err := b.Caches.Clear(1)
		cleared <- err
	}()
	_, log, err := build(t, context.Background(), b, data, job)
	if err != nil {
		t.Fatalf("the build whose cache was cleared failed: %v\n%s", err, log)
	}
	if err := <-cleared; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log, "the build cache was cleared during the build: nothing is kept") {
		t.Errorf("the log does not say the build kept nothing:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(data, "cache", "1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the cache cleared during the build is still there after it: %v", err)
	}
}

func TestAnEntryLeftIncompleteIsDiscarded(t *testing.T) {
	b, data := testBuilder(t)
	r := gittest.New(t)
	sha := r.Commit("first", lockedSite("1.0.0"))
	cacheBuild(t, b, data, r, sha, 1, nil)
	entries, err := filepath.Glob(filepath.Join(data, "cache", "1", "deps", "*", "manifest.json"))
	if err != nil || len(entries) != 1 {
		t.Fatalf("dependency entries: %q, %v", entries, err)
	}
	// As if the agent had died in a build that had taken the dependencies out.
	if err := os.RemoveAll(filepath.Join(filepath.Dir(entries[0]), "tree", "node_modules")); err != nil {
		t.Fatal(err)
	}
	page, log := cacheBuild(t, b, data, r, sha, 2, nil)
	if !strings.Contains(log, "dependencies not used: dependency entry") || !strings.Contains(log, "==> Installing: "+stampedInstall) {
		t.Errorf("the incomplete entry was not discarded:\n%s", log)
	}
	if !strings.HasPrefix(page, "hello from greet 1.0.0 ") {
		t.Errorf("page = %q", page)
	}
	if _, log := cacheBuild(t, b, data, r, sha, 3, nil); !skipped.MatchString(log) {
		t.Errorf("the reinstall was not kept:\n%s", log)
	}
}

func TestFrameworkCachesOutliveTheBuild(t *testing.T) {
	b, data := testBuilder(t)
	r := gittest.New(t)
	files := lockedSite("1.0.0")
	// The build counts its runs in a framework cache and publishes the count.
	files["build.js"] = `const fs = require("fs");
for (const dir of ["node_modules/.cache/tool", ".next/cache"]) {
  fs.mkdirSync(dir, {recursive: true});
  const n = fs.existsSync(dir + "/runs") ? Number(fs.readFileSync(dir + "/runs", "utf8")) + 1 : 1;
  fs.writeFileSync(dir + "/runs", String(n));
}
fs.mkdirSync("dist", {recursive: true});
fs.writeFileSync("dist/index.html", fs.readFileSync("node_modules/.cache/tool/runs", "utf8") + " " + fs.readFileSync(".next/cache/runs", "utf8"));
if (process.env.FAIL) process.exit(1);
`
	sha := r.Commit("first", files)
	for i, want := range []string{"1 1", "2 2", "", "1 1"} {
		id := int64(i + 1)
		job := testJob(data, r, sha, id)
		job.InstallCommand = stampedInstall
		if want == "" {
			job.Env = map[string]string{"FAIL": "yes"}
		}
		_, log, err := build(t, context.Background(), b, data, job)
		if want == "" {
			if err == nil {
				t.Fatalf("build %d succeeded", id)
			}
			continue
		}
		if err != nil {
			t.Fatalf("build %d: %v\n%s", id, err, log)
		}
		if got := readFile(t, filepath.Join(job.PublishDir, "index.html")); got != want {
			t.Errorf("build %d counted %q runs, want %q (a failed build's caches are dropped)\n%s", id, got, want, log)
		}
	}
}

func TestWhatABuildDoesToItsDependenciesIsNotReused(t *testing.T) {
	b, data := testBuilder(t)
	r := gittest.New(t)
	// Every build plants a framework cache; some also write into the dependencies, or fail.
	site := func(version, extra string) map[string]string {
		files := lockedSite(version)
		files["build.js"] += `fs.mkdirSync("node_modules/.cache", {recursive: true});
fs.writeFileSync("node_modules/.cache/planted", "x");
` + extra
		return files
	}
	steps := []struct {
		name            string
		files           map[string]string
		fails, installs bool
		logs            string
	}{
		{name: "the first build", files: site("1.0.0", ""), installs: true},
		{name: "a build that writes into its dependencies", files: site("1.0.0", `fs.appendFileSync("node_modules/.stamp", " POISONED");`),
			logs: "Build cache: dependencies changed during the build; not kept"},
		{name: "the revert", files: site("1.0.0", ""), installs: true},
		{name: "a failed build", files: site("1.0.0", "process.exit(1);"), fails: true},
		{name: "the build after it", files: site("1.0.0", ""), installs: true},
		{name: "new dependencies", files: site("1.0.1", ""), installs: true},
		{name: "the same dependencies", files: site("1.0.1", "// changed"), installs: false},
	}
	for i, step := range steps {
		id := int64(i + 1)
		job := testJob(data, r, r.Commit(step.name, step.files), id)
		job.InstallCommand = stampedInstall
		if step.installs {
			// A framework cache is put into the dependencies it was made with only.
			job.BuildCommand = "test ! -e node_modules/.cache/planted && npm run build"
		}
		_, log, err := build(t, context.Background(), b, data, job)
		if (err != nil) != step.fails {
			t.Fatalf("%s: %v\n%s", step.name, err, log)
		}
		if installed := strings.Contains(log, "==> Installing: "+stampedInstall); installed != step.installs {
			t.Errorf("%s: installed = %v, want %v:\n%s", step.name, installed, step.installs, log)
		}
		if !strings.Contains(log, step.logs) {
			t.Errorf("%s: the log does not say %q:\n%s", step.name, step.logs, log)
		}
		if !step.fails && strings.Contains(readFile(t, filepath.Join(job.PublishDir, "index.html")), "POISONED") {
			t.Errorf("%s: built with dependencies an earlier build wrote into", step.name)
		}
	}
}

// countObjects is the number of objects in the git repository dir, loose and packed.
func countObjects(t *testing.T, dir string) int {
	t.Helper()
	out, err := exec.Command("git", "-C", dir, "count-objects", "-v").Output()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		name, value, _ := strings.Cut(line, ": ")
		if name == "count" || name == "in-pack" {
			v, _ := strconv.Atoi(value)
			n += v
		}
	}
	return n
}

func TestKeptRepositoryIsFetchedIntoIncrementally(t *testing.T) {
	b, data := testBuilder(t)
	kept := filepath.Join(data, "cache", "1", "git")
	r := gittest.New(t)
	site := map[string]string{"index.html": "v1"}
	for i := range 40 {
		site[fmt.Sprintf("pages/%d.html", i)] = fmt.Sprint(i)
	}
	first := r.Commit("first", site)
	job := testJob(data, r, first, 1)
	// Git in the build works in the checkout, whose objects are the kept repository's.
	job.BuildCommand = "git log -1 --format=%s; mkdir out && cp index.html out/"
	job.OutputDirectory = "out"
	if _, log, err := build(t, context.Background(), b, data, job); err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	before := countObjects(t, kept)

	second := r.Commit("second", map[string]string{"index.html": "v2"})
	job = testJob(data, r, second, 2)
	job.BuildCommand = "git log -1 --format=%s; mkdir out && cp index.html out/"
	job.OutputDirectory = "out"
	_, log, err := build(t, context.Background(), b, data, job)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	if !strings.Contains(log, "Fetching into the kept repository") || strings.Contains(log, "cloning afresh") {
		t.Errorf("the second build did not fetch into the kept repository:\n%s", log)
	}
	// A commit, its tree and the one changed file: nothing else was fetched again.
	if after := countObjects(t, kept); after != before+3 {
		t.Errorf("the kept repository went from %d to %d objects, want %d", before, after, before+3)
	}
	if !regexp.MustCompile(`\] second\n`).MatchString(log) {
		t.Errorf("git in the build did not see the commit:\n%s", log)
	}
	if got := readFile(t, filepath.Join(job.PublishDir, "index.html")); got != "v2" {
		t.Errorf("index.html = %q", got)
	}
	config := readFile(t, filepath.Join(kept, "config"))
	if strings.Contains(config, r.Dir) || strings.Contains(config, "remote") {
		t.Errorf("the kept repository remembers where it was fetched from:\n%s", config)
	}
}

func TestBrokenKeptRepositoryIsClonedAfresh(t *testing.T) {
	b, data := testBuilder(t)
	kept := filepath.Join(data, "cache", "1", "git")
	r := gittest.New(t)
	first := r.Commit("first", map[string]string{"index.html": "v1", "style.css": "body{}"})
	_, log, err := build(t, context.Background(), b, data, testJob(data, r, first, 1))
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	// A disk that damaged the object of a file the next commit keeps: the repository is still
	// there, and the next checkout cannot use it.
	blob := r.Git("rev-parse", first+":style.css")
	object := filepath.Join(kept, "objects", blob[:2], blob[2:])
	if err := os.Chmod(object, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(object, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	second := r.Commit("second", map[string]string{"index.html": "v2"})
	job := testJob(data, r, second, 2)
	_, log, err = build(t, context.Background(), b, data, job)
	if err != nil {
		t.Fatalf("build after the damage: %v\n%s", err, log)
	}
	if !strings.Contains(log, "The kept repository failed") || !strings.Contains(log, "cloning afresh") {
		t.Errorf("no fresh clone after the damage:\n%s", log)
	}
	if got := readFile(t, filepath.Join(job.PublishDir, "index.html")); got != "v2" {
		t.Errorf("index.html = %q", got)
	}
	if out, err := exec.Command("git", "-C", kept, "fsck", "--no-dangling").CombinedOutput(); err != nil {
		t.Errorf("the kept repository was not replaced: %v\n%s", err, out)
	}
}

func TestACommitTheRemoteLacksKeepsTheKeptRepository(t *testing.T) {
	b, data := testBuilder(t)
	kept := filepath.Join(data, "cache", "1", "git")
	r := gittest.New(t)
	if _, log, err := build(t, context.Background(), b, data, testJob(data, r, r.Commit("first", map[string]string{"index.html": "v1"}), 1)); err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	before, err := os.Stat(filepath.Join(kept, "config"))
	if err != nil {
		t.Fatal(err)
	}
	objects := countObjects(t, kept)
	_, log, err := build(t, context.Background(), b, data, testJob(data, r, "1111111111111111111111111111111111111111", 2))
	if err == nil || !strings.Contains(err.Error(), "commit 1111111 is not in the repository") {
		t.Fatalf("err = %v, want the missing commit\n%s", err, log)
	}
	after, err := os.Stat(filepath.Join(kept, "config"))
	if err != nil || !os.SameFile(before, after) || countObjects(t, kept) != objects {
		t.Errorf("a commit missing from the remote cost the kept repository (%v)\n%s", err, log)
	}
}

func TestACommitForcePushedAwayIsNotBuiltFromTheKeptRepository(t *testing.T) {
	b, data := testBuilder(t)
	r := gittest.New(t)
	first := r.Commit("first", map[string]string{"index.html": "v1"})
	leaked := r.Commit("leak", map[string]string{"index.html": "leaked"})
	if _, log, err := build(t, context.Background(), b, data, testJob(data, r, leaked, 1)); err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	r.Git("reset", "--quiet", "--hard", first)
	rewritten := r.Commit("rewrite", map[string]string{"index.html": "v2"})
	r.Git("reflog", "expire", "--expire=now", "--all")
	r.Git("gc", "--quiet", "--prune=now")
	if _, log, err := build(t, context.Background(), b, data, testJob(data, r, rewritten, 2)); err != nil {
		t.Fatalf("build of the new tip: %v\n%s", err, log)
	}
	for id, noCache := range map[int64]bool{3: false, 4: true} {
		job := testJob(data, r, leaked, id)
		job.NoCache = noCache
		_, log, err := build(t, context.Background(), b, data, job)
		if err == nil || !strings.Contains(err.Error(), "commit "+leaked[:7]+" is not in the repository (force-pushed away?)") {
			t.Errorf("build of the commit force-pushed away (no cache: %v): err = %v, want it not in the repository\n%s", noCache, err, log)
		}
	}
}

func TestCredentialsInTheURLAreNotKept(t *testing.T) {
	r := gittest.New(t)
	sha := r.Commit("first", map[string]string{"index.html": "private"})
	// A real smart-HTTP git server over the test repository.
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&cgi.Handler{Path: git, Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + filepath.Dir(r.Dir), "GIT_HTTP_EXPORT_ALL=1"}})
	defer srv.Close()
	const secret = "s3cret-password-in-url"
	b, data := testBuilder(t)
	job := testJob(data, r, sha, 1)
	job.RepoURL = strings.Replace(srv.URL, "http://", "http://deploy:"+secret+"@", 1) + "/" + filepath.Base(r.Dir)
	if _, log, err := build(t, context.Background(), b, data, job); err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	err = filepath.WalkDir(filepath.Join(data, "cache"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if content, _ := os.ReadFile(path); strings.Contains(string(content), secret) || strings.Contains(string(content), srv.URL[len("http://"):]) {
			t.Errorf("%s holds the repository's URL or its password", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(job.PublishDir, "index.html")); got != "private" {
		t.Errorf("index.html = %q", got)
	}
}

func TestSandboxShowsABuildOnlyItsOwnCache(t *testing.T) {
	data := hostTempDir(t)
	b := sandboxedBuilder(t, data)
	r := gittest.New(t)
	sha := r.Commit("first", nodeSite("built"))
	if _, log, err := build(t, context.Background(), b, data, testJob(data, r, sha, 1)); err != nil {
		t.Fatalf("project 1: %v\n%s", err, log)
	}
	other := filepath.Join(data, "cache", "1")
	own := filepath.Join(data, "cache", "2")
	job := testJob(data, r, sha, 2)
	job.ProjectID = 2
	job.BuildCommand = "ls " + other + " && echo SAW-OTHER; touch " + own + "/git/x && echo WROTE-GIT; " +
		`touch "$npm_config_cache/x" && echo WROTE-STORE; npm run build`
	_, log, err := build(t, context.Background(), b, data, job)
	if err != nil {
		t.Fatalf("project 2: %v\n%s", err, log)
	}
	for _, bad := range []string{"SAW-OTHER", "WROTE-GIT"} {
		if strings.Contains(log, bad+"\n") {
			t.Errorf("the build of project 2 could do %s:\n%s", bad, log)
		}
	}
	if !strings.Contains(log, "WROTE-STORE\n") {
		t.Errorf("the build could not write its package managers' store:\n%s", log)
	}
}
