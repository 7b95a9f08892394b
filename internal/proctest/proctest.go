// Package proctest finds processes for tests that check nothing a build started outlives it.
package proctest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// WithMarker returns "pid: command line" of every process whose command line contains marker.
func WithMarker(marker string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), marker) {
			found = append(found, e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return found
}

// KillWithMarker kills every process whose command line contains marker, so a failed test leaves none behind.
func KillWithMarker(marker string) {
	for _, found := range WithMarker(marker) {
		pid, _, _ := strings.Cut(found, ":")
		if n, err := strconv.Atoi(pid); err == nil {
			if p, err := os.FindProcess(n); err == nil {
				_ = p.Kill()
			}
		}
	}
}
