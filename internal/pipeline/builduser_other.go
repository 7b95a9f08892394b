//go:build !linux

package pipeline

// dropPrivileges is nothing: bubblewrap, and so a sandbox to drop them in, is Linux only.
func dropPrivileges() ([]string, error) { return nil, nil }

// handToBuildUser does nothing: without a sandbox builds run as the agent's user.
func (b *Builder) handToBuildUser(*workspace) error { return nil }

// handDirsToBuildUser does nothing: without a sandbox builds run as the agent's user.
func (b *Builder) handDirsToBuildUser([]string) error { return nil }
