package detect

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// readFile reads one file of the repository.
func (r *repo) readFile(name string) ([]byte, error) {
	data, err := fs.ReadFile(r.fsys, name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return data, nil
}

// nodeVersion returns the Node version that the project asks for: .nvmrc or .node-version in
// dir, then in the repository root, then engines.node of pkg (which may be nil).
func (r *repo) nodeVersion(dir string, pkg *packageJSON) (string, error) {
	dirs := []string{dir}
	if dir != "." {
		dirs = append(dirs, ".")
	}
	for _, d := range dirs {
		for _, name := range []string{".nvmrc", ".node-version"} {
			ok, err := r.has(d, name)
			if err != nil {
				return "", err
			}
			if !ok {
				continue
			}
			data, err := r.readFile(path.Join(d, name))
			if err != nil {
				return "", err
			}
			if v := firstValue(string(data)); v != "" {
				return v, nil
			}
		}
	}
	if pkg != nil {
		return strings.TrimSpace(pkg.Engines["node"]), nil
	}
	return "", nil
}

// firstValue returns the first line of a version file that is neither blank nor a comment.
func firstValue(text string) string {
	for _, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}

// ltsCodenames maps the codenames of Node's long-term-support lines to their major versions.
var ltsCodenames = map[string]int{
	"argon": 4, "boron": 6, "carbon": 8, "dubnium": 10, "erbium": 12, "fermium": 14,
	"gallium": 16, "hydrogen": 18, "iron": 20, "jod": 22, "krypton": 24,
}

// NodeMajor returns the Node major version that a version as written in .nvmrc, .node-version
// or engines.node asks for (v20.11.1, 20, lts/iron, >=18, ^20.0.0), and false when it names
// none (lts/*, node, latest, <20).
func NodeMajor(version string) (int, bool) {
	v := strings.ToLower(strings.TrimSpace(version))
	if name, ok := strings.CutPrefix(v, "lts/"); ok {
		major, ok := ltsCodenames[name]
		return major, ok
	}
	if major, ok := ltsCodenames[v]; ok {
		return major, true
	}
	return parseMajor(v)
}

// parseMajor returns the major version that a version or semver range starts at: the first
// alternative of ||, the first comparator, without its operator. An upper bound alone names no
// version.
func parseMajor(v string) (int, bool) {
	v, _, _ = strings.Cut(v, "||")
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "<") {
		return 0, false
	}
	v = strings.TrimLeft(v, ">=^~v \t")
	v, _, _ = strings.Cut(v, " ")
	end := 0
	for end < len(v) && end < 4 && v[end] >= '0' && v[end] <= '9' {
		end++
	}
	if end == 0 || (end < len(v) && v[end] != '.') {
		return 0, false
	}
	major, err := strconv.Atoi(v[:end])
	return major, err == nil
}
