package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/store"
)

// backupOptions are the inputs of `miaobu backup`.
type backupOptions struct {
	IO     *ioStreams
	Config func() (*config.Config, error)
	Client func() (*client, error)
	File   string // "-" for stdout
}

// newCmdBackup builds `miaobu backup`; a test's runF runs instead of backupRun.
func newCmdBackup(f *factory, runF func(context.Context, *backupOptions) error) *cobra.Command {
	runF = runOr(runF, backupRun)
	opts := &backupOptions{IO: f.IO, Config: f.Config, Client: f.Client}
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Copy the agent's store while it runs (- for stdout)",
		Long: "Write a consistent copy of the agent's store (projects, deployments, secrets: keep it private) to\n" +
			"FILE, with mode 0600, or to stdout with -. To restore it, stop the agent, put the file in place of\n" +
			"<data_dir>/miaobu.db and start the agent again.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			if opts.File == "-" && opts.IO.Term.isTTY {
				return usageError{errors.New("the backup is a binary file: redirect stdout to a file, or give FILE instead of -")}
			}
			return runF(cmd.Context(), opts)
		},
	}
}

// backupRun copies the store to the file or to stdout.
func backupRun(ctx context.Context, opts *backupOptions) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	if opts.File != "-" {
		if err := checkBackupFile(opts.File, filepath.Join(cfg.DataDir, store.FileName)); err != nil {
			return err
		}
	}
	c, err := opts.Client()
	if err != nil {
		return err
	}
	body, err := c.stream(ctx, api.PathBackup)
	if err != nil {
		return err
	}
	defer body.Close()
	if opts.File == "-" {
		if _, err := io.Copy(opts.IO.Out, body); err != nil {
			return fmt.Errorf("backup cut short: %w", err)
		}
		return nil
	}
	// Through a temporary file: a backup cut short leaves no file that looks like a backup.
	if err := config.WriteFileAtomic(opts.File, body); err != nil {
		return fmt.Errorf("backup to %s failed, nothing written: %w", opts.File, err)
	}
	info, err := os.Stat(opts.File)
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "%s Backed up the store to %s (%d bytes)\n", opts.IO.ErrTerm.green("✓"), opts.File, info.Size())
	fmt.Fprintln(opts.IO.ErrOut, "To restore it: stop the agent, put the file in place of <data_dir>/miaobu.db and start the agent again.")
	return nil
}

// checkBackupFile refuses a backup file that would take the place of a store, storeFile's or that
// of an agent running on another data dir (renaming a file over it would leave its agent writing
// to a deleted file), and one in a directory that does not exist.
func checkBackupFile(file, storeFile string) error {
	dir := filepath.Dir(file)
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		return fmt.Errorf("backup to %s failed, nothing written: %s is not a directory: create it or choose another file", file, dir)
	}
	info, err := os.Stat(file)
	if err != nil {
		return nil
	}
	if live, err := os.Stat(storeFile); err == nil && os.SameFile(info, live) || info.Mode().IsRegular() && lockedByAnother(file) {
		return fmt.Errorf("%s is the store of a running agent: choose another file", file)
	}
	return nil
}
