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

// buildInfo is the version, commit and build date, from ldflags or else from Go's build information.
type buildInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
}

// versionString is the version, commit and build date as one line.
func versionString() string {
	b := currentBuild()
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

func newVersionCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show miaobu's version",
		Args:  exactArgs(0),
		RunE: func(*cobra.Command, []string) error {
			if asJSON {
				return printJSON(a.out, currentBuild())
			}
			_, err := fmt.Fprintln(a.out, "miaobu "+versionString())
			return err
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}
