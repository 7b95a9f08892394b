package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/api"
)

// newCmdCache builds `miaobu cache`.
func newCmdCache(f *factory) *cobra.Command {
	cmd := &cobra.Command{Use: "cache", Short: "Manage a project's build cache (kept repository, dependencies, framework caches)"}
	cmd.AddCommand(newCmdCacheClear(f, nil))
	return cmd
}

// newCmdCacheClear builds `miaobu cache clear`; a test's runF runs instead of cacheClearRun.
func newCmdCacheClear(f *factory, runF func(context.Context, *projectOptions) error) *cobra.Command {
	return newProjectCommand(f, "clear PROJECT", "Remove a project's build cache: its next build starts from nothing", runOr(runF, cacheClearRun))
}

// cacheClearRun removes the project's build cache.
func cacheClearRun(ctx context.Context, opts *projectOptions) error {
	var out api.CacheCleared
	if err := call(ctx, opts.Client, "DELETE", projectPath(opts.Project)+"/cache", nil, &out); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, out)
	}
	fmt.Fprintf(opts.IO.ErrOut, "%s Cleared the build cache of %s (%s freed)\n", opts.IO.ErrTerm.green("✓"), opts.Project, formatSize(out.FreedBytes))
	return nil
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
