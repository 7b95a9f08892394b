package agent

import "golang.org/x/sys/unix"

// protectEnvironment makes the agent process non-dumpable, so processes of the same user (a build
// running without a sandbox among them) cannot read its environment, with the GitHub token and
// cloud keys, through /proc/<pid>/environ, nor attach to it.
func protectEnvironment() error {
	return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}
