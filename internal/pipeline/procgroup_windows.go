package pipeline

import (
	"os"
	"syscall"
)

// ownProcessGroup starts a command in a new process group, so that console signals meant for the
// agent do not reach it.
func ownProcessGroup() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// killProcessGroup kills the command; Windows has no process-group kill, so its children may outlive
// it (the agent is built for Linux servers; this keeps the CLI building everywhere).
func killProcessGroup(p *os.Process) {
	_ = p.Kill()
}
