package buildcache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io/fs"
	"maps"
	"path"
	"runtime"
	"slices"
	"strings"
)

// keyVersion changes whenever what a key covers, or how the pipeline installs, changes.
const keyVersion = "miaobu dependencies 1"

// Inputs are what decides an install besides the files of the commit.
type Inputs struct {
	// PackageManager names the package manager and its exact version, such as "npm 11.19.1".
	PackageManager string
	// Node is the exact version of Node.js, such as "v20.20.2".
	Node string
	// InstallCommand is the command that installs.
	InstallCommand string
	// Root is the project directory, slash-separated and relative to the checkout ("." for its root).
	Root string
	// Env holds the project's build variables.
	Env map[string]string
}

// lockfiles are the package managers' lockfiles; the nearest directory at or above the project's
// that holds one is where the install's files are looked for.
var lockfiles = []string{"package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lock", "bun.lockb"}

// installFiles are, besides the lockfiles, the files whose bytes decide what an install puts in
// place: the manifests and the package managers' configuration.
var installFiles = []string{"package.json", ".npmrc", ".yarnrc", ".yarnrc.yml", "pnpm-workspace.yaml", ".pnpmfile.cjs", "bunfig.toml"}

// installDirs are directories all of whose files decide an install: patches applied to
// dependencies, and the Yarn release and plugins a repository carries.
var installDirs = []string{"patches", ".yarn/releases", ".yarn/plugins"}

// Key returns the dependency key of a build in the checkout fsys: the hex SHA-256 of in, the OS and
// architecture, and the paths and bytes of the install's files, that is the lockfiles, manifests,
// configuration files and patches in the install root (the nearest directory at or above in.Root
// that holds a lockfile) and below it outside node_modules and .git, and the manifests and
// configuration files of the directories above it.
func Key(fsys fs.FS, in Inputs) (string, error) {
	h := sha256.New()
	field := func(s string) {
		var n [binary.MaxVarintLen64]byte
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	for _, s := range []string{keyVersion, in.PackageManager, in.Node, runtime.GOOS + "/" + runtime.GOARCH, in.InstallCommand, in.Root} {
		field(s)
	}
	for _, name := range slices.Sorted(maps.Keys(in.Env)) {
		field(name)
		field(in.Env[name])
	}
	field("files")
	root, err := installRoot(fsys, in.Root)
	if err != nil {
		return "", err
	}
	for dir := root; dir != "."; {
		dir = path.Dir(dir)
		for _, name := range slices.Concat(installFiles, lockfiles) {
			if err := hashFile(fsys, field, path.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return "", err
			}
		}
	}
	err = fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == modulesDir || d.Name() == ".git" {
				return fs.SkipDir
			}
			return nil
		}
		if !decidesInstall(p) {
			return nil
		}
		return hashFile(fsys, field, p)
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// decidesInstall reports whether the file at p, slash-separated, is one of the install's files.
func decidesInstall(p string) bool {
	name := path.Base(p)
	if slices.Contains(installFiles, name) || slices.Contains(lockfiles, name) {
		return true
	}
	return slices.ContainsFunc(installDirs, func(dir string) bool {
		return strings.HasPrefix(p, dir+"/") || strings.Contains(p, "/"+dir+"/")
	})
}

// installRoot returns the nearest directory at or above root that holds a lockfile, root itself
// when none does.
func installRoot(fsys fs.FS, root string) (string, error) {
	for dir := root; ; dir = path.Dir(dir) {
		for _, name := range lockfiles {
			if _, err := fs.Stat(fsys, path.Join(dir, name)); err == nil {
				return dir, nil
			} else if !errors.Is(err, fs.ErrNotExist) {
				return "", err
			}
		}
		if dir == "." {
			return root, nil
		}
	}
}

// hashFile adds a file's path and the SHA-256 of its bytes to the key with field.
func hashFile(fsys fs.FS, field func(string), p string) error {
	data, err := fs.ReadFile(fsys, p)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	field(p)
	field(string(sum[:]))
	return nil
}
