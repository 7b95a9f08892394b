package pipeline

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Sandbox modes of build.sandbox.
const (
	SandboxAuto  = "auto"
	SandboxBwrap = "bwrap"
	SandboxNone  = "none"
)

// ResolveSandbox turns build.sandbox into the bwrap binary to run builds under, "" for none; with
// auto, a missing or unusable bubblewrap is a warning (returned), with bwrap it is an error.
func ResolveSandbox(mode string) (bwrap, warning string, err error) {
	if mode == SandboxNone {
		return "", "", nil
	}
	path, lookErr := exec.LookPath("bwrap")
	if lookErr == nil {
		// Namespaces can be forbidden (an unprivileged container): try one before trusting it.
		out, runErr := exec.Command(path, append(sandboxBase(path)[1:], "true")...).CombinedOutput()
		if runErr == nil {
			return path, "", nil
		}
		lookErr = fmt.Errorf("bubblewrap cannot create a sandbox here: %s", strings.TrimSpace(string(out)))
	}
	if mode == SandboxBwrap {
		return "", "", fmt.Errorf("build.sandbox is bwrap but %v: install bubblewrap (apt-get install bubblewrap)", lookErr)
	}
	return "", "builds run WITHOUT a sandbox: code from repositories can read every file this agent can (its data dir, config, " +
		"tokens and the keys in its home) and the agent's environment, secrets included; install bubblewrap (apt-get install bubblewrap) to isolate builds", nil
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

// run runs c in a session of its own, under the sandbox when there is one, logging its output
// line by line; cancelling ctx kills the whole process group, and the group is killed when the
// step ends so nothing a build started in the background survives it.
func (b *Builder) run(ctx context.Context, ws *workspace, c command, log *Log) error {
	argv := []string{"sh", "-c", c.shell}
	if b.Bwrap != "" {
		argv = append(b.sandboxArgs(ws, c.dir), argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	if b.Bwrap == "" {
		cmd.Dir = c.dir
	}
	cmd.Env = c.env
	cmd.Stdin = nil
	var mu sync.Mutex
	var kept []string
	stdout := &lineWriter{log: log, mu: &mu, kept: &kept}
	stderr := &lineWriter{log: log, mu: &mu, kept: &kept}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = ownProcessGroup()
	cmd.WaitDelay = waitDelay
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the %s command: %w", c.name, err)
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			killProcessGroup(cmd.Process)
		case <-done:
		}
	}()
	err := cmd.Wait()
	close(done)
	killProcessGroup(cmd.Process)
	if b.Bwrap == "" {
		// Without the sandbox's PID namespace, a process that called setsid has left the group.
		killMarked(ws.marker)
	}
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

// sandboxBase starts every bwrap command line: a user namespace without capabilities, so a build run
// by root can neither unmount what hides the agent's files nor remount the file system writable; the
// whole file system read-only; and a PID namespace so killing bwrap kills everything the build started.
func sandboxBase(bwrap string) []string {
	return []string{bwrap, "--unshare-user", "--cap-drop", "ALL", "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
		"--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"}
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
		if slices.ContainsFunc(hidden, func(d string) bool { return within(d, p) }) {
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
	if info, err := os.Stat(resolverDir); err == nil && info.IsDir() && slices.ContainsFunc(hidden, func(d string) bool { return within(d, resolverDir) }) {
		args = append(args, "--ro-bind", resolverDir, resolverDir)
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
		buildMarkerVar:                    ws.marker,
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

// buildMarkerVar is the variable that carries a build's marker; it names no secret.
const buildMarkerVar = "BUILD_MARKER"

// ReservedEnv reports whether a build variable name is one the pipeline sets itself and a project
// cannot override.
func ReservedEnv(name string) bool {
	switch name {
	case "PATH", "HOME", "TMPDIR", "NODE_ENV", buildMarkerVar:
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
