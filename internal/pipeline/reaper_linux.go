package pipeline

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Without a sandbox a step's processes share the host's PID namespace, and one that clears its
// environment and calls setsid keeps nothing that ties it to its build. So a step runs under a copy of
// the agent's own binary started as reaperName: the step's child subreaper, to which every process the
// step orphans is reparented, and which kills them all when the step's shell exits, when it is told to
// stop, or when the agent dies (its parent-death signal). If the step kills the reaper, its orphans go
// to the agent, a subreaper too (AdoptOrphans), which kills them when it has waited for the reaper.

// reaperName is the argv[0] that makes this binary a step's reaper instead of what it usually is.
const reaperName = "miaobu-step-reaper"

func init() {
	if len(os.Args) > 1 && os.Args[0] == reaperName {
		os.Exit(runReaper(os.Args[1:]))
	}
}

// reaped is the command that runs argv, whose first element is an absolute path, under a reaper.
func reaped(ctx context.Context, argv []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "/proc/self/exe", argv...)
	cmd.Args[0] = reaperName
	return cmd
}

// runReaper runs argv as a step and returns its exit status once nothing the step started is left.
func runReaper(argv []string) int {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", reaperName, err)
		return 126
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", reaperName, err)
		return 127
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case <-exited:
	case <-stop:
		_ = cmd.Process.Kill()
		<-exited
	}
	killOrphans(func(process) bool { return false })
	if status, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && status.Signaled() {
		return 128 + int(status.Signal())
	}
	return cmd.ProcessState.ExitCode()
}

// AdoptOrphans makes this process a child subreaper: a process orphaned below it is reparented to it
// rather than to init, so that what a step leaves when its reaper is killed can still be found.
func AdoptOrphans() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// sweepOrphans kills and reaps the children of this process, and what is below them, that are neither
// in its own process group nor started by the pipeline and still running: orphans of a step or a git
// command, reparented here because this process adopts orphans. The caller holds started.mu.
func sweepOrphans() {
	group := unix.Getpgrp()
	killOrphans(func(p process) bool { return p.pgid == group || started.pids[p.pid] })
}

// process is a line of the process table.
type process struct {
	pid, ppid, pgid int
}

// maxKillRounds bounds how often killOrphans looks again for processes forked while it was killing.
const maxKillRounds = 100

// killOrphans kills every child of this process that spare does not spare, with all its descendants,
// and reaps it; it looks again until none is left, since a process may fork while the others are killed.
func killOrphans(spare func(process) bool) {
	self := os.Getpid()
	for range maxKillRounds {
		table := processTable()
		var doomed []int
		for _, p := range table {
			if p.ppid == self && !spare(p) {
				doomed = append(doomed, p.pid)
			}
		}
		if len(doomed) == 0 {
			return
		}
		for _, pid := range withDescendants(table, doomed) {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		for _, pid := range doomed {
			var status unix.WaitStatus
			_, _ = unix.Wait4(pid, &status, 0, nil)
		}
	}
}

// withDescendants returns pids and the pids of every process below them in table.
func withDescendants(table []process, pids []int) []int {
	children := map[int][]int{}
	for _, p := range table {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	all := pids
	for i := 0; i < len(all); i++ {
		all = append(all, children[all[i]]...)
	}
	return all
}

// processTable reads every process's parent and process group from /proc.
func processTable() []process {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	table := make([]process, 0, len(stats))
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // gone since the glob
		}
		if p, ok := parseStat(string(data)); ok {
			table = append(table, p)
		}
	}
	return table
}

// parseStat reads pid, parent and process group from /proc/<pid>/stat: "pid (comm) state ppid pgrp …",
// where comm may hold spaces and parentheses, so the fields are counted from its last ")".
func parseStat(stat string) (process, bool) {
	commStart, commEnd := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
	if commStart < 0 || commEnd < commStart {
		return process{}, false
	}
	fields := strings.Fields(stat[commEnd+1:])
	if len(fields) < 3 {
		return process{}, false
	}
	pid, err1 := strconv.Atoi(strings.TrimSpace(stat[:commStart]))
	ppid, err2 := strconv.Atoi(fields[1])
	pgid, err3 := strconv.Atoi(fields[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return process{}, false
	}
	return process{pid: pid, ppid: ppid, pgid: pgid}, true
}
