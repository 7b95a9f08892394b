package pipeline

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
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

// killMarked kills every process whose environment carries the build marker: those a build started
// that left its process group. It looks again while it finds some, since they may be forking.
func killMarked(marker string) {
	tag := []byte("\x00" + buildMarkerVar + "=" + marker + "\x00")
	for range 5 {
		environs, _ := filepath.Glob("/proc/[0-9]*/environ")
		found := false
		for _, path := range environs {
			env, err := os.ReadFile(path)
			if err != nil || !bytes.Contains(append([]byte{0}, append(env, 0)...), tag) {
				continue
			}
			if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path))); err == nil && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				found = true
			}
		}
		if !found {
			return
		}
	}
}
