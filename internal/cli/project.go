package cli

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/api"
)

// newCmdProject builds `miaobu project`.
func newCmdProject(f *factory) *cobra.Command {
	cmd := &cobra.Command{Use: "project", Short: "Manage projects"}
	cmd.AddCommand(newCmdProjectAdd(f, nil), newCmdProjectList(f, nil), newCmdProjectShow(f, nil),
		newCmdProjectSet(f, nil), newCmdProjectDelete(f, nil))
	return cmd
}

// projectPath is the API path of a project named by id or slug.
func projectPath(ref string) string { return api.PathProjects + "/" + url.PathEscape(ref) }

// buildFlags are the build-setting flags shared by add, set and import.
type buildFlags struct {
	target, buildCommand, installCommand, outputDir, rootDir string
}

// register adds the flags to cmd.
func (f *buildFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.target, "target", "", "publish target: local or oss")
	cmd.Flags().StringVar(&f.buildCommand, "build-command", "", "build command (default: detected)")
	cmd.Flags().StringVar(&f.installCommand, "install-command", "", "install command (default: detected)")
	cmd.Flags().StringVar(&f.outputDir, "output-dir", "", "output directory (default: detected)")
	cmd.Flags().StringVar(&f.rootDir, "root-dir", "", "directory of the project inside the repository")
}

// projectAddOptions are the inputs of `miaobu project add`.
type projectAddOptions struct {
	IO       *ioStreams
	Client   func() (*client, error)
	Name     string
	RepoURL  string
	Branch   string
	Build    buildFlags
	Triggers api.TriggerSettings
	JSON     bool
}

// newCmdProjectAdd builds `miaobu project add`; a test's runF runs instead of projectAddRun.
func newCmdProjectAdd(f *factory, runF func(context.Context, *projectAddOptions) error) *cobra.Command {
	runF = runOr(runF, projectAddRun)
	opts := &projectAddOptions{IO: f.IO, Client: f.Client}
	var triggers triggerFlags
	cmd := &cobra.Command{
		Use:   "add NAME --repo-url URL",
		Short: "Add a project from any git URL (its webhook is set up by hand)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			opts.Name = args[0]
			if opts.RepoURL == "" {
				return usageError{fmt.Errorf("--repo-url is required")}
			}
			if opts.Triggers, err = triggers.settings(cmd.Flags()); err != nil {
				return err
			}
			return runF(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.RepoURL, "repo-url", "", "git URL: https://, ssh://, git@host:path, file:// or a local path")
	cmd.Flags().StringVar(&opts.Branch, "branch", "", "branch whose pushes deploy (default: the remote's HEAD branch, else main)")
	jsonFlag(cmd, &opts.JSON)
	opts.Build.register(cmd)
	triggers.register(cmd)
	return cmd
}

// localRepoURL makes a local path absolute, since the agent resolves it from its own directory.
func localRepoURL(raw string) (string, error) {
	if strings.Contains(raw, "://") || (strings.Contains(raw, "@") && strings.Contains(raw, ":")) {
		return raw, nil
	}
	return filepath.Abs(raw)
}

// projectAddRun creates the project and shows how to set its webhook up.
func projectAddRun(ctx context.Context, opts *projectAddOptions) error {
	repoURL, err := localRepoURL(opts.RepoURL)
	if err != nil {
		return err
	}
	req := api.ProjectCreate{Name: opts.Name, RepoURL: repoURL, Branch: opts.Branch, Target: opts.Build.target,
		BuildCommand: opts.Build.buildCommand, InstallCommand: opts.Build.installCommand,
		OutputDirectory: opts.Build.outputDir, RootDirectory: opts.Build.rootDir, TriggerSettings: opts.Triggers}
	var p api.Project
	if err := call(ctx, opts.Client, "POST", api.PathProjects, req, &p); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, p)
	}
	cleanStrings(&p)
	et := opts.IO.ErrTerm
	fmt.Fprintf(opts.IO.ErrOut, "%s Created project %s (id %d), deploying pushes to %s\n", et.green("✓"), et.bold(p.Slug), p.ID, p.DefaultBranch)
	fmt.Fprintf(opts.IO.ErrOut, "Add a webhook to the repository (GitHub: Settings → Webhooks → Add webhook; Gitea/Forgejo alike):\n")
	if err := opts.IO.Term.fields(opts.IO.Out, [][2]string{
		{"Payload URL", p.WebhookURL},
		{"Content type", "application/json"},
		{"Secret", p.WebhookSecret},
		{"Events", "Pushes and Pull requests"},
	}); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "The secret is shown only this once. Deploy now with: miaobu deploy %s --wait\n", p.Slug)
	return nil
}

// jsonFlag adds --json to cmd.
func jsonFlag(cmd *cobra.Command, v *bool) {
	cmd.Flags().BoolVar(v, "json", false, "print JSON")
}

// projectListOptions are the inputs of `miaobu project list`.
type projectListOptions struct {
	IO     *ioStreams
	Client func() (*client, error)
	JSON   bool
}

// newCmdProjectList builds `miaobu project list`; a test's runF runs instead of projectListRun.
func newCmdProjectList(f *factory, runF func(context.Context, *projectListOptions) error) *cobra.Command {
	runF = runOr(runF, projectListRun)
	opts := &projectListOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List projects",
		Args:    exactArgs(0),
		RunE:    func(cmd *cobra.Command, _ []string) error { return runF(cmd.Context(), opts) },
	}
	jsonFlag(cmd, &opts.JSON)
	return cmd
}

// projectListRun lists the projects.
func projectListRun(ctx context.Context, opts *projectListOptions) error {
	var projects []api.Project
	if err := call(ctx, opts.Client, "GET", api.PathProjects, nil, &projects); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, projects)
	}
	cleanStrings(&projects)
	if len(projects) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "No projects yet. Add one with `miaobu import OWNER/REPO` or `miaobu project add NAME --repo-url URL`.")
		return nil
	}
	rows := make([][]string, 0, len(projects))
	for _, p := range projects {
		live := "-"
		if p.ActiveDeploymentID != nil {
			live = "#" + strconv.FormatInt(*p.ActiveDeploymentID, 10)
		}
		rows = append(rows, []string{strconv.FormatInt(p.ID, 10), p.Slug, p.DefaultBranch, p.Target,
			opts.IO.Term.webhookBadge(p.WebhookConfigured), live, p.SiteURL})
	}
	return opts.IO.Term.table(opts.IO.Out, []string{"ID", "SLUG", "BRANCH", "TARGET", "WEBHOOK", "LIVE", "URL"}, rows)
}

// orDetected shows a build setting, or that it is detected at build time with what the project's
// last build detected (detected is nil until a build has).
func orDetected(set string, detected *string) string {
	switch {
	case set != "":
		return set
	case detected == nil:
		return "(detected at build)"
	case *detected == "":
		return "(detected at build: none)"
	}
	return "(detected at build: " + *detected + ")"
}

// watching says which paths a push must change to deploy.
func watching(globs []string) string {
	if len(globs) == 0 {
		return "every path"
	}
	return strings.Join(globs, ", ")
}

// previewRules says which pull requests and branches deploy previews.
func previewRules(p api.Project) string {
	var rules []string
	if p.PRPreviews {
		rules = append(rules, "pull requests (from forks: "+p.ForkPreviews+")")
	}
	if len(p.PreviewBranches) > 0 {
		rules = append(rules, "branches "+strings.Join(p.PreviewBranches, ", "))
	}
	if len(rules) == 0 {
		return "none"
	}
	return strings.Join(rules, "; ")
}

// githubReports says which reports of a project's deployments reach GitHub.
func githubReports(r api.GitHubReports) string {
	var kinds []string
	if r.Statuses {
		kinds = append(kinds, "commit statuses")
	}
	if r.Deployments {
		kinds = append(kinds, "deployments")
	}
	out := strings.Join(kinds, " and ")
	if out == "" {
		out = "no reports"
	}
	if r.Note != "" {
		out += " (" + r.Note + ")"
	}
	return out
}

// eventsMissing says which events a project's GitHub hook lacks and how to add them.
func eventsMissing(slug string, missing []string) string {
	return fmt.Sprintf("the hook lacks %s events: run `miaobu webhook setup %s`", strings.Join(missing, " and "), slug)
}

// printProject shows a project's details.
func printProject(ios *ioStreams, p api.Project) error {
	cleanStrings(&p)
	repo := p.RepoURL
	if p.Repo != nil {
		repo = *p.Repo + " (" + p.RepoURL + ")"
	}
	live := "none yet"
	if p.ActiveDeploymentID != nil {
		live = "#" + strconv.FormatInt(*p.ActiveDeploymentID, 10)
	}
	root := p.RootDirectory
	if root == "" {
		root = "."
	}
	t := ios.Term
	webhook := t.webhookBadge(p.WebhookConfigured) + "  " + t.faint(p.WebhookURL)
	if len(p.WebhookEventsMissing) > 0 {
		webhook += "  " + t.yellow(eventsMissing(p.Slug, p.WebhookEventsMissing))
	}
	return t.fields(ios.Out, [][2]string{
		{"Project", fmt.Sprintf("%s (id %d)", t.bold(p.Slug), p.ID)},
		{"Name", p.Name},
		{"Repository", repo},
		{"Deploys", "pushes to branch " + p.DefaultBranch},
		{"Previews", previewRules(p)},
		{"Watching", watching(p.WatchPaths)},
		{"Trigger", p.Trigger},
		{"Webhook", webhook},
		{"GitHub", githubReports(p.GitHubReports)},
		{"Framework", orDetected(p.Framework, p.DetectedFramework)},
		{"Install", orDetected(p.InstallCommand, p.DetectedInstallCommand)},
		{"Build", orDetected(p.BuildCommand, p.DetectedBuildCommand)},
		{"Output", orDetected(p.OutputDirectory, p.DetectedOutputDirectory)},
		{"Root", root},
		{"Target", p.Target},
		{"Live", live},
		{"URL", p.SiteURL},
		{"Cache", formatSize(p.CacheBytes) + " of build cache"},
		{"Created", p.CreatedAt.Local().Format("2006-01-02 15:04:05")},
	})
}

// projectOptions are the inputs of a command on one project: show or delete.
type projectOptions struct {
	IO      *ioStreams
	Client  func() (*client, error)
	Project string
	JSON    bool
}

// newProjectCommand builds a command named by use on one PROJECT that runs run.
func newProjectCommand(f *factory, use, short string, run func(context.Context, *projectOptions) error) *cobra.Command {
	opts := &projectOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Project = args[0]
			return run(cmd.Context(), opts)
		},
	}
	cmd.ValidArgsFunction = completeProject(f)
	jsonFlag(cmd, &opts.JSON)
	return cmd
}

// newCmdProjectShow builds `miaobu project show`; a test's runF runs instead of projectShowRun.
func newCmdProjectShow(f *factory, runF func(context.Context, *projectOptions) error) *cobra.Command {
	return newProjectCommand(f, "show PROJECT", "Show a project, its webhook badge, the branch that deploys and its previews", runOr(runF, projectShowRun))
}

// projectShowRun shows the project and its previews.
func projectShowRun(ctx context.Context, opts *projectOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	var p api.Project
	if err := c.do(ctx, "GET", projectPath(opts.Project), nil, &p); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, p)
	}
	if err := printProject(opts.IO, p); err != nil {
		return err
	}
	var previews []api.Preview
	if err := c.do(ctx, "GET", api.PreviewsPath(opts.Project), nil, &previews); err != nil || len(previews) == 0 {
		return err
	}
	fmt.Fprintln(opts.IO.Out)
	return printPreviews(opts.IO, previews)
}

// projectSetOptions are the inputs of `miaobu project set`.
type projectSetOptions struct {
	IO      *ioStreams
	Client  func() (*client, error)
	Project string
	// Update holds the settings whose flags were given.
	Update api.ProjectUpdate
	JSON   bool
}

// newCmdProjectSet builds `miaobu project set`; a test's runF runs instead of projectSetRun.
func newCmdProjectSet(f *factory, runF func(context.Context, *projectSetOptions) error) *cobra.Command {
	runF = runOr(runF, projectSetRun)
	opts := &projectSetOptions{IO: f.IO, Client: f.Client}
	var (
		build    buildFlags
		triggers triggerFlags
		branch   string
	)
	cmd := &cobra.Command{
		Use:   "set PROJECT [--branch B] [--target T] [--build-command C] [--install-command C] [--output-dir D] [--root-dir D] [--preview-branches G,...] [--pr-previews=BOOL] [--fork-previews off|approve|on] [--watch-paths G,...] [--trigger webhook|poll]",
		Short: "Change a project's settings (an empty value returns a setting to detection or empties a list)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			opts.Project = args[0]
			if opts.Update.TriggerSettings, err = triggers.settings(cmd.Flags()); err != nil {
				return err
			}
			changed := func(name string, v *string) *string {
				if cmd.Flags().Changed(name) {
					return v
				}
				return nil
			}
			req := &opts.Update
			req.Branch = changed("branch", &branch)
			req.Target = changed("target", &build.target)
			req.BuildCommand = changed("build-command", &build.buildCommand)
			req.InstallCommand = changed("install-command", &build.installCommand)
			req.OutputDirectory = changed("output-dir", &build.outputDir)
			req.RootDirectory = changed("root-dir", &build.rootDir)
			if *req == (api.ProjectUpdate{}) {
				return usageError{fmt.Errorf("nothing to change: give at least one setting flag")}
			}
			return runF(cmd.Context(), opts)
		},
	}
	cmd.ValidArgsFunction = completeProject(f)
	cmd.Flags().StringVar(&branch, "branch", "", "branch whose pushes deploy")
	build.register(cmd)
	triggers.register(cmd)
	jsonFlag(cmd, &opts.JSON)
	return cmd
}

// projectSetRun changes the project's settings and shows it.
func projectSetRun(ctx context.Context, opts *projectSetOptions) error {
	var p api.Project
	if err := call(ctx, opts.Client, "PATCH", projectPath(opts.Project), opts.Update, &p); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, p)
	}
	fmt.Fprintf(opts.IO.ErrOut, "%s Updated project %s\n", opts.IO.ErrTerm.green("✓"), clean(p.Slug))
	return printProject(opts.IO, p)
}

// newCmdProjectDelete builds `miaobu project delete`; a test's runF runs instead of projectDeleteRun.
func newCmdProjectDelete(f *factory, runF func(context.Context, *projectOptions) error) *cobra.Command {
	return newProjectCommand(f, "delete PROJECT", "Delete a project, its GitHub webhook, deployments and files", runOr(runF, projectDeleteRun))
}

// projectDeleteRun deletes the project.
func projectDeleteRun(ctx context.Context, opts *projectOptions) error {
	var answer api.WebhookAnswer
	if err := call(ctx, opts.Client, "DELETE", projectPath(opts.Project), nil, &answer); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, answer)
	}
	fmt.Fprintf(opts.IO.ErrOut, "%s %s\n", opts.IO.ErrTerm.green("✓"), clean(answer.Message))
	return nil
}
