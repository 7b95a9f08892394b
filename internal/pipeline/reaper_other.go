//go:build !linux

package pipeline

import (
	"context"
	"os/exec"
)

// reaped is the command that runs argv: only Linux has child subreapers, so elsewhere a step's process
// group is all there is to stop.
func reaped(ctx context.Context, argv []string) *exec.Cmd {
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}

// AdoptOrphans does nothing: only Linux lets a process adopt orphans.
func AdoptOrphans() error { return nil }

// sweepOrphans does nothing: without AdoptOrphans no orphan is reparented to the agent.
func sweepOrphans() {}
