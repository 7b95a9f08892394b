package pipeline

import (
	"os"
	"syscall"
)

// ownProcessGroup starts a command in a session of its own: a process group to kill as a whole, no
// controlling terminal to type into, and killed if the agent dies first.
func ownProcessGroup() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
}

// killProcessGroup kills the process group a command started with ownProcessGroup leads.
func killProcessGroup(p *os.Process) {
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
}
