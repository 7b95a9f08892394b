package pipeline

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
)

// dropPrivileges is what a sandboxed command line runs its command through when the agent is root:
// setpriv, named by its absolute path since a build can put programs of its own on its PATH, making the
// command buildUser with no capabilities and no way to gain any. It is nothing for any other agent.
func dropPrivileges() ([]string, error) {
	if !asRoot() {
		return nil, nil
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		return nil, errors.New("setpriv (util-linux) is not installed: an agent running as root needs it to run builds as an unprivileged user")
	}
	id := strconv.Itoa(buildUser)
	return []string{setpriv, "--reuid=" + id, "--regid=" + id, "--clear-groups", "--inh-caps=-all", "--no-new-privs", "--"}, nil
}

// handToBuildUser gives the workspace and the package managers' stores of the project's cache to
// buildUser when a root agent's builds run as it; nothing of the project runs meanwhile, so nothing
// can swap a file for a link under it.
func (b *Builder) handToBuildUser(ws *workspace) error {
	if b.Bwrap == "" || !asRoot() {
		return nil
	}
	if err := chownTree(ws.root); err != nil {
		return err
	}
	info, err := os.Lstat(ws.stores)
	if err != nil {
		return err
	}
	// From then on the builds create what is in the stores: one from before is handed over once.
	if stat, ok := info.Sys().(*syscall.Stat_t); ok && stat.Uid != buildUser {
		return chownTree(ws.stores)
	}
	return nil
}

// handDirsToBuildUser gives directories the agent made in a workspace already handed over to
// buildUser, themselves and not what is in them.
func (b *Builder) handDirsToBuildUser(dirs []string) error {
	if b.Bwrap == "" || !asRoot() {
		return nil
	}
	for _, d := range dirs {
		if err := os.Lchown(d, buildUser, buildUser); err != nil {
			return err
		}
	}
	return nil
}

// chownTree gives root and everything in it, links themselves and not what they point to, to
// buildUser; root itself last, so a tree whose top is buildUser's was handed over whole.
func chownTree(root string) error {
	err := filepath.WalkDir(root, func(path string, _ fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		return os.Lchown(path, buildUser, buildUser)
	})
	if err != nil {
		return err
	}
	return os.Lchown(root, buildUser, buildUser)
}
