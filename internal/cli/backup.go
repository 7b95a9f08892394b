package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/config"
)

// backupOptions are the inputs of `miaobu backup`.
type backupOptions struct {
	app  *app
	file string // "-" for stdout
}

func newBackupCommand(a *app) *cobra.Command {
	opts := &backupOptions{app: a}
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Copy the agent's store while it runs (- for stdout)",
		Long: "Write a consistent copy of the agent's store (projects, deployments, secrets: keep it private) to\n" +
			"FILE, with mode 0600, or to stdout with -. To restore it, stop the agent, put the file in place of\n" +
			"<data_dir>/miaobu.db and start the agent again.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.file = args[0]
			return opts.run(cmd.Context())
		},
	}
}

func (o *backupOptions) run(ctx context.Context) error {
	if o.file == "-" && o.app.term.isTTY {
		return usageError{errors.New("the backup is a binary file: redirect stdout to a file, or give FILE instead of -")}
	}
	c, err := o.app.client()
	if err != nil {
		return err
	}
	body, err := c.stream(ctx, api.PathBackup)
	if err != nil {
		return err
	}
	defer body.Close()
	if o.file == "-" {
		if _, err := io.Copy(o.app.out, body); err != nil {
			return fmt.Errorf("backup cut short: %w", err)
		}
		return nil
	}
	// Through a temporary file: a backup cut short leaves no file that looks like a backup.
	if err := config.WriteFileAtomic(o.file, body); err != nil {
		return fmt.Errorf("backup to %s failed, nothing written: %w", o.file, err)
	}
	info, err := os.Stat(o.file)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.app.errOut, "%s Backed up the store to %s (%d bytes)\n", o.app.errTerm.green("✓"), o.file, info.Size())
	fmt.Fprintln(o.app.errOut, "To restore it: stop the agent, put the file in place of <data_dir>/miaobu.db and start the agent again.")
	return nil
}
