//go:build !linux

package agent

// protectEnvironment does nothing where /proc does not expose a process's environment.
func protectEnvironment() error { return nil }
