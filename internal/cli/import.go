package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/api"
)

// importOptions are the inputs of `miaobu import`.
type importOptions struct {
	IO          *ioStreams
	Client      func() (*client, error)
	Owner, Repo string
	Branch      string
	Name        string
	Build       buildFlags
	Triggers    api.TriggerSettings
	NoWebhook   bool
	NoDeploy    bool
	JSON        bool
}

// newCmdImport builds `miaobu import`; a test's runF runs instead of importRun.
func newCmdImport(f *factory, runF func(context.Context, *importOptions) error) *cobra.Command {
	runF = runOr(runF, importRun)
	opts := &importOptions{IO: f.IO, Client: f.Client}
	var triggers triggerFlags
	cmd := &cobra.Command{
		Use:   "import OWNER/REPO [--branch B] [--name N] [--no-webhook] [--no-deploy]",
		Short: "Import a GitHub repository: detect its build, create its webhook and deploy it",
		Long: "Import a GitHub repository as a project. The agent reads the repository with its GitHub token,\n" +
			"detects the build settings at the tip of the branch, creates the webhook (push, pull_request and\n" +
			"deployment events) and queues the first deployment. Every deployment is reported back to GitHub as\n" +
			"a commit status and a GitHub Deployment. Build settings given as flags are stored and win over\n" +
			"detection; the others are detected again from each commit at build time.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			owner, repo, ok := strings.Cut(strings.TrimSuffix(args[0], ".git"), "/")
			if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
				return usageError{fmt.Errorf("%q is not OWNER/REPO, such as octocat/hello-world", args[0])}
			}
			if opts.Triggers, err = triggers.settings(cmd.Flags()); err != nil {
				return err
			}
			opts.Owner, opts.Repo = owner, repo
			return runF(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Branch, "branch", "", "branch whose pushes deploy (default: the repository's default branch)")
	cmd.Flags().StringVar(&opts.Name, "name", "", "project name, from which the slug is made (default: the repository's name)")
	cmd.Flags().BoolVar(&opts.NoWebhook, "no-webhook", false, "do not create the GitHub webhook")
	cmd.Flags().BoolVar(&opts.NoDeploy, "no-deploy", false, "do not queue the first deployment")
	opts.Build.register(cmd)
	triggers.register(cmd)
	jsonFlag(cmd, &opts.JSON)
	return cmd
}

// importRun imports the repository and shows the project it became.
func importRun(ctx context.Context, opts *importOptions) error {
	req := api.ImportRequest{Branch: opts.Branch, Name: opts.Name, Target: opts.Build.target,
		BuildCommand: opts.Build.buildCommand, InstallCommand: opts.Build.installCommand,
		OutputDirectory: opts.Build.outputDir, RootDirectory: opts.Build.rootDir,
		NoWebhook: opts.NoWebhook, NoDeploy: opts.NoDeploy, TriggerSettings: opts.Triggers}
	var res api.ImportResult
	if err := call(ctx, opts.Client, "POST", api.ImportPath(opts.Owner, opts.Repo), req, &res); err != nil {
		return err
	}
	t, et := opts.IO.Term, opts.IO.ErrTerm
	for _, w := range res.Warnings {
		fmt.Fprintf(opts.IO.ErrOut, "%s %s\n", et.yellow("!"), clean(w))
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, res)
	}
	cleanStrings(&res)
	p, d := res.Project, res.Detected
	fmt.Fprintf(opts.IO.ErrOut, "%s Imported %s as project %s (id %d)\n", et.green("✓"), *p.Repo, et.bold(p.Slug), p.ID)
	// A setting given as a flag is the project's; the others are what detection found at the tip.
	setting := func(own, detected string) string {
		switch {
		case own != "":
			return own
		case detected == "":
			return t.faint("none (detected)")
		}
		return detected + t.faint(" (detected)")
	}
	webhook := t.webhookBadge(p.WebhookConfigured) + "  " + t.faint(p.WebhookURL)
	if res.Webhook.Status == api.HookSkipped {
		webhook = t.webhookBadge(false) + t.faint("  (--no-webhook: create it with `miaobu webhook setup "+p.Slug+"`)")
	}
	deployment := t.faint("not queued (--no-deploy)")
	if res.Deployment != nil {
		deployment = fmt.Sprintf("#%d %s (%s)", res.Deployment.ID, t.status(res.Deployment.Status), shortSHA(res.Deployment.CommitSHA))
	}
	pairs := [][2]string{
		{"Project", fmt.Sprintf("%s (id %d)", t.bold(p.Slug), p.ID)},
		{"Repository", *p.Repo + " (" + p.RepoURL + ")"},
		{"Deploys", "pushes to branch " + p.DefaultBranch},
		{"Framework", setting(p.Framework, d.Framework)},
		{"Install", setting(p.InstallCommand, d.InstallCommand)},
		{"Build", setting(p.BuildCommand, d.BuildCommand)},
		{"Output", setting(p.OutputDirectory, d.OutputDirectory)},
	}
	if d.NodeVersion != "" {
		pairs = append(pairs, [2]string{"Node", d.NodeVersion})
	}
	if p.RootDirectory != "" {
		pairs = append(pairs, [2]string{"Root", p.RootDirectory})
	}
	pairs = append(pairs, [2]string{"Webhook", webhook}, [2]string{"Deployment", deployment}, [2]string{"URL", p.SiteURL})
	if err := t.fields(opts.IO.Out, pairs); err != nil {
		return err
	}
	for _, note := range d.Notes {
		fmt.Fprintf(opts.IO.ErrOut, "%s %s\n", et.faint("note:"), note)
	}
	if res.Deployment != nil && t.isTTY {
		fmt.Fprintf(opts.IO.ErrOut, "Follow it with: miaobu deployment logs %d -f\n", res.Deployment.ID)
	}
	return nil
}
