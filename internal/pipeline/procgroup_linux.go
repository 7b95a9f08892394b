package pipeline

import (
	"os"
	"syscall"
)

// ownProcessGroup starts a command in a session of its own: a process group to kill as a whole, no
// controlling terminal to type into, and stopped if the agent dies first. The signal is SIGTERM, not
// SIGKILL, so that a step's reaper can kill what the step started before it exits.
func ownProcessGroup() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGTERM}
}

// killProcessGroup kills the process group a command started with ownProcessGroup leads.
func killProcessGroup(p *os.Process) {
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
}
