package cli

import (
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

// versionString is the version, commit and build date, from ldflags or else from Go's build information.
func versionString() string {
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
	return fmt.Sprintf("%s (commit %s, built %s)", v, orDash(c), orDash(d))
}

func newVersionCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show miaobu's version",
		Args:  exactArgs(0),
		Run: func(*cobra.Command, []string) {
			fmt.Fprintln(a.out, "miaobu "+versionString())
		},
	}
}
