package pipeline

import (
	"fmt"
	"os"
	"testing"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		stat string
		want process
		ok   bool
	}{
		{"4242 (node) S 17 4242 4242 0 -1 4194560 123", process{pid: 4242, ppid: 17, pgid: 4242}, true},
		{"99 (a) b) (c) R 1 98 98 0", process{pid: 99, ppid: 1, pgid: 98}, true},
		{"7 (sh) Z", process{}, false},
		{"7 sh S 1 7 7", process{}, false},
		{"", process{}, false},
	} {
		got, ok := parseStat(tc.stat)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseStat(%q) = %+v, %v; want %+v, %v", tc.stat, got, ok, tc.want, tc.ok)
		}
	}
}

func TestProcessTableHasThisProcess(t *testing.T) {
	for _, p := range processTable() {
		if p.pid == os.Getpid() {
			if p.ppid != os.Getppid() {
				t.Errorf("this process's parent is %d, want %d", p.ppid, os.Getppid())
			}
			return
		}
	}
	t.Error("this process is not in the process table")
}

func FuzzParseStat(f *testing.F) {
	f.Add("node", 4242, 17, 4242)
	f.Add("a) b) (c", 1, 0, 1)
	f.Add("", 0, 0, 0)
	f.Fuzz(func(t *testing.T, comm string, pid, ppid, pgid int) {
		if pid < 0 {
			pid = -pid
		}
		want := process{pid: pid, ppid: ppid, pgid: pgid}
		got, ok := parseStat(fmt.Sprintf("%d (%s) S %d %d %d 0 -1", pid, comm, ppid, pgid, pgid))
		if !ok || got != want {
			t.Errorf("comm %q: parseStat = %+v, %v; want %+v", comm, got, ok, want)
		}
		parseStat(comm) // anything else must not panic
	})
}
