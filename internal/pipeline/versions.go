package pipeline

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miaobu/miaobu/internal/detect"
)

// binary names one version of an installed tool: its real path, size and modification time.
type binary struct {
	path  string
	size  int64
	mtime time.Time
}

// versions remembers what each binary said its version was: asking npm takes half a second.
var versions sync.Map

// toolVersion returns the version of the tool name on PATH, found once per binary: in the
// package.json of the npm package it is a script of (npm, pnpm, Yarn), else what `name --version`
// prints; "" when there is no such tool or it did not answer.
func toolVersion(name string) string {
	path, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return ""
	}
	info, err := os.Stat(real)
	if err != nil {
		return ""
	}
	id := binary{path: real, size: info.Size(), mtime: info.ModTime()}
	if v, ok := versions.Load(id); ok {
		return v.(string)
	}
	if v := packageVersion(real, name); v != "" {
		versions.Store(id, v)
		return v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Outside any repository and with no configuration of the agent's: only the binary answers.
	cmd := exec.CommandContext(ctx, path, "--version")
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "COREPACK_ENABLE_DOWNLOAD_PROMPT=0"}
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	v := strings.TrimSpace(string(out))
	versions.Store(id, v)
	return v
}

// packageVersion returns the version in the nearest package.json above the file real when it is
// that of the package name, "" otherwise.
func packageVersion(real, name string) string {
	for dir := filepath.Dir(real); ; dir = filepath.Dir(dir) {
		data, err := os.ReadFile(filepath.Join(dir, "package.json"))
		if err == nil {
			var pkg struct{ Name, Version string }
			if json.Unmarshal(data, &pkg) != nil || pkg.Name != name {
				return ""
			}
			return pkg.Version
		}
		if dir == filepath.Dir(dir) {
			return ""
		}
	}
}

// packageManagerVersion names the package manager pm and its version, or corepack's version when
// corepack provides pm (the version it runs is then the packageManager field of package.json).
func packageManagerVersion(pm string) string {
	path, err := exec.LookPath(pm)
	if err == nil {
		real, err := filepath.EvalSymlinks(path)
		if err == nil && !slices.Contains(strings.Split(filepath.ToSlash(real), "/"), "corepack") {
			return pm + " " + toolVersion(pm)
		}
	}
	return pm + " through corepack " + toolVersion("corepack")
}

// NodeVersion returns the major version of the node on PATH, 0 when there is none.
func NodeVersion() int {
	major, _ := detect.NodeMajor(toolVersion("node"))
	return major
}
