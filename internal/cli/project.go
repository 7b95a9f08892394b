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

// newProjectCommand builds `miaobu project`.
func newProjectCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "project", Short: "Manage projects"}
	cmd.AddCommand(newProjectAddCommand(a), newProjectListCommand(a), newProjectShowCommand(a),
		newProjectSetCommand(a), newProjectDeleteCommand(a))
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
	app      *app
	name     string
	repoURL  string
	branch   string
	build    buildFlags
	triggers api.TriggerSettings
	json     bool
}

func newProjectAddCommand(a *app) *cobra.Command {
	opts := &projectAddOptions{app: a}
	var triggers triggerFlags
	cmd := &cobra.Command{
		Use:   "add NAME --repo-url URL",
		Short: "Add a project from any git URL (its webhook is set up by hand)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			opts.name = args[0]
			if opts.repoURL == "" {
				return usageError{fmt.Errorf("--repo-url is required")}
			}
			if opts.triggers, err = triggers.settings(cmd.Flags()); err != nil {
				return err
			}
			return opts.run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&opts.repoURL, "repo-url", "", "git URL: https://, ssh://, git@host:path, file:// or a local path")
	cmd.Flags().StringVar(&opts.branch, "branch", "", "branch whose pushes deploy (default: the remote's HEAD branch, else main)")
	jsonFlag(cmd, &opts.json)
	opts.build.register(cmd)
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

func (o *projectAddOptions) run(ctx context.Context) error {
	c, err := o.app.client()
	if err != nil {
		return err
	}
	repoURL, err := localRepoURL(o.repoURL)
	if err != nil {
		return err
	}
	req := api.ProjectCreate{Name: o.name, RepoURL: repoURL, Branch: o.branch, Target: o.build.target,
		BuildCommand: o.build.buildCommand, InstallCommand: o.build.installCommand,
		OutputDirectory: o.build.outputDir, RootDirectory: o.build.rootDir, TriggerSettings: o.triggers}
	var p api.Project
	if err := c.do(ctx, "POST", api.PathProjects, req, &p); err != nil {
		return err
	}
	if o.json {
		return printJSON(o.app.out, p)
	}
	cleanStrings(&p)
	et := o.app.errTerm
	fmt.Fprintf(o.app.errOut, "%s Created project %s (id %d), deploying %s\n", et.green("✓"), et.bold(p.Slug), p.ID, deploys(p))
	if p.Trigger == api.ProjectTriggerPoll {
		fmt.Fprintf(o.app.errOut, "No webhook is needed. To switch to one later (`miaobu project set %s --trigger webhook`), add it to the repository:\n", p.Slug)
	} else {
		fmt.Fprintf(o.app.errOut, "Add a webhook to the repository (GitHub: Settings → Webhooks → Add webhook; Gitea/Forgejo alike):\n")
	}
	if err := o.app.term.fields(o.app.out, [][2]string{
		{"Payload URL", p.WebhookURL},
		{"Content type", "application/json"},
		{"Secret", p.WebhookSecret},
		{"Events", "Pushes and Pull requests"},
	}); err != nil {
		return err
	}
	fmt.Fprintf(o.app.errOut, "The secret is shown only this once. Deploy now with: miaobu deploy %s --wait\n", p.Slug)
	return nil
}

// jsonFlag adds --json to cmd.
func jsonFlag(cmd *cobra.Command, v *bool) {
	cmd.Flags().BoolVar(v, "json", false, "print JSON")
}

func newProjectListCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List projects",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var projects []api.Project
			if err := a.call(cmd.Context(), "GET", api.PathProjects, nil, &projects); err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.out, projects)
			}
			cleanStrings(&projects)
			if len(projects) == 0 {
				fmt.Fprintln(a.errOut, "No projects yet. Add one with `miaobu import OWNER/REPO` or `miaobu project add NAME --repo-url URL`.")
				return nil
			}
			rows := make([][]string, 0, len(projects))
			for _, p := range projects {
				live := "-"
				if p.ActiveDeploymentID != nil {
					live = "#" + strconv.FormatInt(*p.ActiveDeploymentID, 10)
				}
				rows = append(rows, []string{strconv.FormatInt(p.ID, 10), p.Slug, p.DefaultBranch, p.Target,
					a.term.webhookBadge(p.WebhookConfigured), live, p.SiteURL})
			}
			return a.term.table(a.out, []string{"ID", "SLUG", "BRANCH", "TARGET", "WEBHOOK", "LIVE", "URL"}, rows)
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
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

// deploys says which commits of a project deploy, and how they are found.
func deploys(p api.Project) string {
	if p.Trigger == api.ProjectTriggerPoll {
		return "new commits on branch " + p.DefaultBranch + ", found by polling"
	}
	return "pushes to branch " + p.DefaultBranch
}

// pollSummary says how a polled project's checks go: the last success, the last error, the next check.
func pollSummary(t *terminal, ps api.PollStatus) string {
	parts := []string{"never checked yet"}
	if ps.LastPollAt != nil {
		parts = []string{"checked " + ago(*ps.LastPollAt)}
	}
	if ps.LastPollError != nil {
		parts = append(parts, t.red("last check failed: "+*ps.LastPollError))
	}
	if ps.NextPollAt != nil {
		parts = append(parts, "next "+until(*ps.NextPollAt))
	}
	return strings.Join(parts, ", ")
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
func printProject(a *app, p api.Project) error {
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
	webhook := [2]string{"Webhook", a.term.webhookBadge(p.WebhookConfigured) + "  " + a.term.faint(p.WebhookURL)}
	if len(p.WebhookEventsMissing) > 0 {
		webhook[1] += "  " + a.term.yellow(eventsMissing(p.Slug, p.WebhookEventsMissing))
	}
	if p.Trigger == api.ProjectTriggerPoll {
		webhook = [2]string{"Polling", pollSummary(a.term, p.PollStatus)}
	}
	return a.term.fields(a.out, [][2]string{
		{"Project", fmt.Sprintf("%s (id %d)", a.term.bold(p.Slug), p.ID)},
		{"Name", p.Name},
		{"Repository", repo},
		{"Deploys", deploys(p)},
		{"Previews", previewRules(p)},
		{"Watching", watching(p.WatchPaths)},
		{"Trigger", p.Trigger},
		webhook,
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

func newProjectShowCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show PROJECT",
		Short: "Show a project, its webhook badge, the branch that deploys and its previews",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p api.Project
			if err := a.call(cmd.Context(), "GET", projectPath(args[0]), nil, &p); err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.out, p)
			}
			if err := printProject(a, p); err != nil {
				return err
			}
			var previews []api.Preview
			if err := a.call(cmd.Context(), "GET", api.PreviewsPath(args[0]), nil, &previews); err != nil || len(previews) == 0 {
				return err
			}
			fmt.Fprintln(a.out)
			return printPreviews(a, previews)
		},
	}
	cmd.ValidArgsFunction = completeProject(a)
	jsonFlag(cmd, &asJSON)
	return cmd
}

func newProjectSetCommand(a *app) *cobra.Command {
	var (
		build    buildFlags
		triggers triggerFlags
		branch   string
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "set PROJECT [--branch B] [--target T] [--build-command C] [--install-command C] [--output-dir D] [--root-dir D] [--preview-branches G,...] [--pr-previews=BOOL] [--fork-previews off|approve|on] [--watch-paths G,...] [--trigger webhook|poll]",
		Short: "Change a project's settings (an empty value returns a setting to detection or empties a list)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			var req api.ProjectUpdate
			if req.TriggerSettings, err = triggers.settings(cmd.Flags()); err != nil {
				return err
			}
			changed := func(name string, v *string) *string {
				if cmd.Flags().Changed(name) {
					return v
				}
				return nil
			}
			req.Branch = changed("branch", &branch)
			req.Target = changed("target", &build.target)
			req.BuildCommand = changed("build-command", &build.buildCommand)
			req.InstallCommand = changed("install-command", &build.installCommand)
			req.OutputDirectory = changed("output-dir", &build.outputDir)
			req.RootDirectory = changed("root-dir", &build.rootDir)
			if req == (api.ProjectUpdate{}) {
				return usageError{fmt.Errorf("nothing to change: give at least one setting flag")}
			}
			var p api.Project
			if err := a.call(cmd.Context(), "PATCH", projectPath(args[0]), req, &p); err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.out, p)
			}
			fmt.Fprintf(a.errOut, "%s Updated project %s\n", a.errTerm.green("✓"), clean(p.Slug))
			return printProject(a, p)
		},
	}
	cmd.ValidArgsFunction = completeProject(a)
	cmd.Flags().StringVar(&branch, "branch", "", "branch whose pushes deploy")
	build.register(cmd)
	triggers.register(cmd)
	jsonFlag(cmd, &asJSON)
	return cmd
}

func newProjectDeleteCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "delete PROJECT",
		Short: "Delete a project, its GitHub webhook, deployments and files",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var answer api.WebhookAnswer
			if err := a.call(cmd.Context(), "DELETE", projectPath(args[0]), nil, &answer); err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.out, answer)
			}
			fmt.Fprintf(a.errOut, "%s %s\n", a.errTerm.green("✓"), clean(answer.Message))
			return nil
		},
	}
	cmd.ValidArgsFunction = completeProject(a)
	jsonFlag(cmd, &asJSON)
	return cmd
}
