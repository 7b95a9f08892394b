//go:build unix && !linux

package pipeline

import (
	"os"
	"syscall"
)

// ownProcessGroup starts a command in a session of its own: a process group to kill as a whole and
// no controlling terminal to type into.
func ownProcessGroup() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true}
}

// killProcessGroup kills the process group a command started with ownProcessGroup leads.
func killProcessGroup(p *os.Process) {
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
}
