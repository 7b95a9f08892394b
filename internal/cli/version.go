package cli

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Build information, set with -ldflags "-X github.com/miaobu/miaobu/internal/cli.version=...".
var (
	version = ""
	commit  = ""
	date    = ""
)

// buildInfo is the version, commit and build date, from ldflags or else from Go's build information.
type buildInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
}

// String is the version, commit and build date as one line.
func (b buildInfo) String() string {
	return fmt.Sprintf("%s (commit %s, built %s)", b.Version, orDash(b.Commit), orDash(b.Date))
}

// currentBuild reads the build information.
func currentBuild() buildInfo {
	v, c, d := version, commit, date
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch {
			case s.Key == "vcs.revision" && c == "":
				c = s.Value
			case s.Key == "vcs.time" && d == "":
				d = s.Value
			}
		}
	}
	if v == "" {
		v = "dev"
	}
	if len(c) > 12 {
		c = c[:12]
	}
	return buildInfo{Version: v, Commit: c, Date: d}
}

// versionOptions are the inputs of `miaobu version`.
type versionOptions struct {
	IO    *ioStreams
	Build buildInfo
	JSON  bool
}

// newCmdVersion builds `miaobu version`; a test's runF runs instead of versionRun.
func newCmdVersion(f *factory, runF func(context.Context, *versionOptions) error) *cobra.Command {
	runF = runOr(runF, versionRun)
	opts := &versionOptions{IO: f.IO, Build: f.Build}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show miaobu's version",
		Args:  exactArgs(0),
		RunE:  func(cmd *cobra.Command, _ []string) error { return runF(cmd.Context(), opts) },
	}
	jsonFlag(cmd, &opts.JSON)
	return cmd
}

// versionRun shows the version.
func versionRun(_ context.Context, opts *versionOptions) error {
	if opts.JSON {
		return printJSON(opts.IO.Out, opts.Build)
	}
	_, err := fmt.Fprintln(opts.IO.Out, "miaobu "+opts.Build.String())
	return err
}
