package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miaobu/miaobu/internal/publish"
)

// Sandbox modes of build.sandbox.
const (
	SandboxAuto  = "auto"
	SandboxBwrap = "bwrap"
	SandboxNone  = "none"
)

// ResolveSandbox turns build.sandbox into the bwrap binary to run builds under, "" for none; with
// auto, a missing or unusable bubblewrap is a warning (returned) that says why, with bwrap it is an
// error. An agent running as root is warned about too.
func ResolveSandbox(mode string) (bwrap, warning string, err error) {
	return resolveSandbox(mode, probeTimeout)
}

// probeTimeout bounds how long bubblewrap may take to create the trial sandbox: a bwrap that hangs
// would otherwise stall the agent's start without a word.
const probeTimeout = 10 * time.Second

// resolveSandbox is ResolveSandbox with the trial sandbox bounded by timeout.
func resolveSandbox(mode string, timeout time.Duration) (bwrap, warning string, err error) {
	if mode == SandboxNone {
		return "", "builds run WITHOUT a sandbox (build.sandbox is none): " + unsandboxedRisk(), nil
	}
	bwrap, unusable := probeBubblewrap(timeout)
	switch {
	case unusable == "" && asRoot():
		return bwrap, "the agent runs as root: builds run in the sandbox as uid " + strconv.Itoa(buildUser) +
			" without capabilities, but everything else the agent runs is root's; run it as an unprivileged user", nil
	case unusable == "":
		return bwrap, "", nil
	case mode == SandboxBwrap:
		return "", "", fmt.Errorf("build.sandbox is bwrap but %s", unusable)
	}
	return "", "builds run WITHOUT a sandbox because " + unusable + ": " + unsandboxedRisk(), nil
}

// unsandboxedRisk says what install and build commands can reach without a sandbox.
func unsandboxedRisk() string {
	reach := "the agent's data dir (the admin token, the store with every project's secrets, every project's live site, " +
		"the build caches), its config, the keys in its home, and the files and environment of other running builds"
	if asRoot() {
		return "the agent runs as root, so code from repositories can read and modify anything on this machine: " + reach +
			", and everything else; run the agent as an unprivileged user"
	}
	return "code from repositories runs as the agent's user and can read and modify everything that user can: " + reach
}

// buildUser is the uid and gid a root agent's sandboxed builds run as: nobody and nogroup on Debian,
// Ubuntu, Fedora and Alpine.
const buildUser = 65534

// asRoot reports whether the agent runs as root.
func asRoot() bool { return os.Geteuid() == 0 }

// probeBubblewrap finds bwrap and creates one sandbox with it within timeout, since namespaces can be
// forbidden (an unprivileged container); unusable says why there is no bwrap to use, "" when there is.
func probeBubblewrap(timeout time.Duration) (bwrap, unusable string) {
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		return "", "bubblewrap is not installed (apt-get install bubblewrap)"
	}
	drop, err := dropPrivileges()
	if err != nil {
		return "", err.Error()
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bwrap, slices.Concat(sandboxBase(bwrap)[1:], []string{"--"}, drop, []string{"true"})...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = startTracked(cmd)
	if err == nil {
		err = waitTracked(cmd)
	}
	if ctx.Err() != nil {
		return "", fmt.Sprintf("bubblewrap (%s) did not answer within %s", bwrap, timeout)
	}
	if err != nil {
		why := strings.ReplaceAll(strings.TrimSpace(out.String()), "\n", "; ")
		if why == "" {
			why = err.Error()
		}
		return "", fmt.Sprintf("bubblewrap (%s) cannot create a sandbox here: %s", bwrap, why)
	}
	return bwrap, ""
}

// command is one install or build command of a job.
type command struct {
	name  string // for messages: "install", "build"
	shell string // the command line, run by sh -c
	dir   string
	env   []string
}

// stepError is a command that ran and failed; its message carries the first lines of the failure.
type stepError struct {
	name, shell string
	err         error
	excerpt     string
}

func (e *stepError) Error() string {
	msg := fmt.Sprintf("%s command `%s` failed: %v", e.name, e.shell, e.err)
	if e.excerpt != "" {
		msg += "\n" + e.excerpt
	}
	return msg
}

// waitDelay bounds how long a killed step's output pipes may stay open.
const waitDelay = 2 * time.Second

// run runs c in a session of its own, under the sandbox when there is one and under a reaper when
// not, logging its output line by line; cancelling ctx kills the whole process group, and nothing the
// step started survives it.
func (b *Builder) run(ctx context.Context, ws *workspace, c command, log *Log) error {
	cmd, err := b.stepCommand(ctx, ws, c)
	if err != nil {
		return fmt.Errorf("starting the %s command: %w", c.name, err)
	}
	cmd.Env = c.env
	cmd.Stdin = nil
	var mu sync.Mutex
	var kept []string
	stdout := newLineWriter(log, &mu, &kept)
	stderr := newLineWriter(log, &mu, &kept)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = waitDelay
	if err := startTracked(cmd); err != nil {
		return fmt.Errorf("starting the %s command: %w", c.name, err)
	}
	err = waitTracked(cmd)
	stdout.flush()
	stderr.flush()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if err != nil {
		return &stepError{name: c.name, shell: c.shell, err: err, excerpt: failureExcerpt(kept)}
	}
	return nil
}

// stepCommand is the command that runs c: sh in bubblewrap, or sh under a reaper, since without the
// sandbox's PID namespace a process that left the step's session would otherwise outlive it.
func (b *Builder) stepCommand(ctx context.Context, ws *workspace, c command) (*exec.Cmd, error) {
	if b.Bwrap != "" {
		drop, err := dropPrivileges()
		if err != nil {
			return nil, err
		}
		argv := slices.Concat(b.sandboxArgs(ws, c.dir), drop, []string{"sh", "-c", c.shell})
		return exec.CommandContext(ctx, argv[0], argv[1:]...), nil
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		sh = "/bin/sh"
	}
	cmd := reaped(ctx, []string{sh, "-c", c.shell})
	cmd.Dir = c.dir
	return cmd, nil
}

// started holds the processes the pipeline started and has not waited for yet, the steps and git
// commands of every build, which a sweep for orphans must spare.
var started = struct {
	mu   sync.Mutex
	pids map[int]bool
}{pids: map[int]bool{}}

// startTracked starts cmd, made with exec.CommandContext, in a session of its own that is killed whole
// when its context ends, and records it in started.
func startTracked(cmd *exec.Cmd) error {
	cmd.SysProcAttr = ownProcessGroup()
	cmd.Cancel = func() error {
		killProcessGroup(cmd.Process)
		return nil
	}
	started.mu.Lock()
	defer started.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	started.pids[cmd.Process.Pid] = true
	return nil
}

// waitTracked waits for a command started by startTracked, then kills what is left of its session and
// the orphans it left.
func waitTracked(cmd *exec.Cmd) error {
	err := cmd.Wait()
	killProcessGroup(cmd.Process)
	started.mu.Lock()
	defer started.mu.Unlock()
	delete(started.pids, cmd.Process.Pid)
	sweepOrphans()
	return err
}

// sandboxBase starts every bwrap command line: no capabilities, so a build can neither unmount what
// hides the agent's files nor remount the file system writable; the whole file system read-only; and
// a PID namespace, so killing bwrap kills everything the build started. Run by root, bwrap makes no
// user namespace, which would map the build to root on the host, the owner of /etc/shadow and most of
// the system: it keeps only what dropPrivileges needs to make the build buildUser (and to enter the
// build's directory, which is buildUser's), and buildUser must be able to write its temporary directories.
func sandboxBase(bwrap string) []string {
	args := []string{bwrap, "--unshare-user", "--cap-drop", "ALL"}
	tmp := []string{"--tmpfs", "/tmp"}
	if asRoot() {
		args = []string{bwrap, "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_DAC_READ_SEARCH"}
		tmp = []string{"--perms", "1777", "--tmpfs", "/tmp", "--perms", "1777", "--tmpfs", "/dev/shm"}
	}
	return slices.Concat(args, []string{"--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
		"--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"}, tmp)
}

// systemHidden are host paths no build needs and none may reach: the login sessions' sockets
// (ssh-agent), container engines and the service manager (root on the host to whoever talks to
// them), and the agent service's environment file.
var systemHidden = []string{"/run/user", "/run/docker.sock", "/var/run/docker.sock", "/run/containerd", "/run/podman",
	"/run/dbus", "/run/systemd", "/etc/miaobu"}

// resolverDir holds the resolv.conf that /etc/resolv.conf often links to: builds need DNS.
const resolverDir = "/run/systemd/resolve"

// sandboxArgs is the bwrap command line that runs a command in dir: sandboxBase, the agent's data,
// config and home and systemHidden hidden, and only the workspace and the package managers' stores
// of the project's cache writable.
func (b *Builder) sandboxArgs(ws *workspace, dir string) []string {
	args := sandboxBase(b.Bwrap)
	var hidden []string
	for _, p := range b.hiddenPaths() {
		// A path in a directory already hidden is gone with it.
		if slices.ContainsFunc(hidden, func(d string) bool { return publish.Within(d, p) }) {
			continue
		}
		info, err := os.Stat(p)
		switch {
		case err != nil:
			continue
		case info.IsDir():
			args = append(args, "--tmpfs", p)
			hidden = append(hidden, p)
		default:
			args = append(args, "--ro-bind", "/dev/null", p)
		}
	}
	if info, err := os.Stat(resolverDir); err == nil && info.IsDir() && slices.ContainsFunc(hidden, func(d string) bool { return publish.Within(d, resolverDir) }) {
		args = append(args, "--ro-bind", resolverDir, resolverDir)
	}
	if asRoot() {
		args = append(args, traversableParents(hidden, []string{ws.root, ws.stores, ws.git})...)
	}
	args = append(args, "--bind", ws.root, ws.root)
	if ws.cache != nil {
		// Of the project's cache, the build writes only to the package managers' stores, and reads
		// the kept repository its checkout borrows objects from.
		args = append(args, "--bind", ws.stores, ws.stores, "--ro-bind", ws.git, ws.git)
	}
	// The empty directories that hide the agent's are made read-only once the workspace is mounted in them.
	for _, dir := range hidden {
		args = append(args, "--remount-ro", dir)
	}
	return append(args, "--chdir", dir, "--")
}

// traversableParents are the bwrap arguments that create the directories between a hidden directory
// and each of paths, mount points in it, open to buildUser: bwrap would create them with mode 0700.
func traversableParents(hidden, paths []string) []string {
	var dirs []string
	for _, p := range paths {
		for d := filepath.Dir(p); slices.ContainsFunc(hidden, func(h string) bool { return d != h && publish.Within(h, d) }); d = filepath.Dir(d) {
			dirs = append(dirs, d)
		}
	}
	slices.Sort(dirs) // a directory before what is in it
	var args []string
	for _, d := range slices.Compact(dirs) {
		args = append(args, "--perms", "0711", "--dir", d)
	}
	return args
}

// hiddenPaths are the real paths of b.Hide, systemHidden and the agent's home, sorted so a
// directory comes before what is in it; the home is left out when it is the root directory.
func (b *Builder) hiddenPaths() []string {
	paths := slices.Concat(b.Hide, systemHidden)
	if home, err := os.UserHomeDir(); err == nil {
		paths = append(paths, home)
	}
	var real []string
	for _, p := range paths {
		r, err := filepath.EvalSymlinks(p)
		if err != nil || r == "/" {
			continue // nothing there to hide, or nothing left to build with
		}
		real = append(real, r)
	}
	slices.Sort(real)
	return slices.Compact(real)
}

// baseEnv is the environment of install and build: nothing of the agent's own but PATH, a home and
// temporary directory in the workspace, the package managers' stores of the project's cache,
// CI=true and the project's variables.
func (b *Builder) baseEnv(ws *workspace, packageManager string, projectEnv map[string]string) []string {
	env := map[string]string{
		"PATH":                            ws.bin + string(os.PathListSeparator) + b.path(),
		"HOME":                            ws.home,
		"TMPDIR":                          ws.tmp,
		"CI":                              "true",
		"LANG":                            "C.UTF-8",
		"npm_config_cache":                filepath.Join(ws.stores, "npm"),
		"npm_config_update_notifier":      "false",
		"npm_config_fund":                 "false",
		"npm_config_audit":                "false",
		"YARN_CACHE_FOLDER":               filepath.Join(ws.stores, "yarn"),
		"YARN_GLOBAL_FOLDER":              filepath.Join(ws.stores, "yarn-global"),
		"BUN_INSTALL_CACHE_DIR":           filepath.Join(ws.stores, "bun"),
		"COREPACK_HOME":                   filepath.Join(ws.stores, "corepack"),
		"COREPACK_ENABLE_DOWNLOAD_PROMPT": "0",
	}
	if packageManager == "pnpm" {
		// Only for pnpm: npm warns about a setting it does not know on every run. pnpm 10 reads the
		// first, later versions the second.
		env["npm_config_store_dir"] = filepath.Join(ws.stores, "pnpm")
		env["pnpm_config_store_dir"] = filepath.Join(ws.stores, "pnpm")
	}
	for k, v := range projectEnv {
		if !ReservedEnv(k) {
			env[k] = v
		}
	}
	return envList(env)
}

// ReservedEnv reports whether a build variable name is one the pipeline sets itself and a project
// cannot override.
func ReservedEnv(name string) bool {
	switch name {
	case "PATH", "HOME", "TMPDIR", "NODE_ENV":
		return true
	}
	return false
}

// path is the PATH builds get: the agent's own, which names no secret.
func (b *Builder) path() string {
	if p := os.Getenv("PATH"); p != "" {
		return p
	}
	return "/usr/local/bin:/usr/bin:/bin"
}

// envList turns a map into a sorted KEY=VALUE list.
func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// writeShims makes pnpm and yarn run through corepack when they are not installed.
func writeShims(bin string) error {
	if _, err := exec.LookPath("corepack"); err != nil {
		return nil
	}
	for _, pm := range []string{"pnpm", "yarn"} {
		if _, err := exec.LookPath(pm); err == nil {
			continue
		}
		script := "#!/bin/sh\nexec corepack " + pm + " \"$@\"\n"
		if err := os.WriteFile(filepath.Join(bin, pm), []byte(script), 0o755); err != nil {
			return err
		}
	}
	return nil
}
