package cli

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/api"
)

// dashboardOptions are the inputs of `miaobu dashboard`.
type dashboardOptions struct {
	IO        *ioStreams
	Client    func() (*client, error)
	JSON      bool
	NoBrowser bool
	// OpenBrowser shows a URL in the user's browser.
	OpenBrowser func(url string) error
}

// newCmdDashboard builds `miaobu dashboard`; a test's runF runs instead of dashboardRun.
func newCmdDashboard(f *factory, runF func(context.Context, *dashboardOptions) error) *cobra.Command {
	runF = runOr(runF, dashboardRun)
	opts := &dashboardOptions{IO: f.IO, Client: f.Client, OpenBrowser: f.OpenBrowser}
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Print and open a one-time link that signs in to the web dashboard",
		Long: "dashboard asks the agent for a login code and prints the link that carries it, then opens it in\n" +
			"the browser. The link signs in once, within 5 minutes; the session lasts 12 hours.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error { return runF(cmd.Context(), opts) },
	}
	cmd.Flags().BoolVar(&opts.NoBrowser, "no-browser", false, "only print the link")
	jsonFlag(cmd, &opts.JSON)
	return cmd
}

// dashboardRun prints a one-time sign-in link and opens it unless told not to.
func dashboardRun(ctx context.Context, opts *dashboardOptions) error {
	var code api.LoginCode
	if err := call(ctx, opts.Client, "POST", api.PathLoginCodes, nil, &code); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, code)
	}
	fmt.Fprintf(opts.IO.ErrOut, "Sign in to the dashboard with this link; it works once, until %s:\n",
		code.ExpiresAt.Local().Format(time.Kitchen))
	fmt.Fprintln(opts.IO.Out, code.URL)
	if opts.NoBrowser {
		return nil
	}
	if err := opts.OpenBrowser(code.URL); err != nil {
		fmt.Fprintf(opts.IO.ErrOut, "%s could not open a browser (%v): open the link yourself\n", opts.IO.ErrTerm.yellow("!"), err)
	}
	return nil
}

// openBrowser starts the system's handler of URLs on url, without waiting for it.
func openBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}
