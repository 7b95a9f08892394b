package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/api"
)

// newCacheCommand builds `miaobu cache`.
func newCacheCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "cache", Short: "Manage a project's build cache (kept repository, dependencies, framework caches)"}
	cmd.AddCommand(newCacheClearCommand(a))
	return cmd
}

func newCacheClearCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "clear PROJECT",
		Short: "Remove a project's build cache: its next build starts from nothing",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out api.CacheCleared
			if err := a.call(cmd.Context(), "DELETE", projectPath(args[0])+"/cache", nil, &out); err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.out, out)
			}
			fmt.Fprintf(a.errOut, "%s Cleared the build cache of %s (%s freed)\n", a.errTerm.green("✓"), args[0], formatSize(out.FreedBytes))
			return nil
		},
	}
	cmd.ValidArgsFunction = completeProject(a)
	jsonFlag(cmd, &asJSON)
	return cmd
}

// formatSize shows a number of bytes in binary units.
func formatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	value, prefix := float64(n)/unit, 0
	for value >= unit && prefix < 3 {
		value /= unit
		prefix++
	}
	return fmt.Sprintf("%.1f %ciB", value, "KMGT"[prefix])
}
