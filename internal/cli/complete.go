package cli

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/api"
)

// completionTimeout bounds how long a shell waits for the agent while completing a word.
const completionTimeout = 3 * time.Second

// completionDeployments is how many recent deployments are offered for a deployment ID.
const completionDeployments = 50

// completeProject completes a command's PROJECT, its first argument, with the slugs of the
// agent's projects.
func completeProject(f *factory) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return projectCompletions(cmd, f, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeDeployment completes a command's deployment ID, its first argument, with the agent's
// recent deployments for which keep is true.
func completeDeployment(f *factory, keep func(api.Deployment) bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return deploymentCompletions(cmd, f, "", keep, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeRollback completes `rollback PROJECT [DEPLOYMENT]`: the project, then those of its
// successful deployments that are not live.
func completeRollback(f *factory) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		switch len(args) {
		case 0:
			return projectCompletions(cmd, f, toComplete), cobra.ShellCompDirectiveNoFileComp
		case 1:
			earlier := func(d api.Deployment) bool { return d.Status == api.StatusDeployed && !d.Live }
			return deploymentCompletions(cmd, f, args[0], earlier, toComplete), cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

// unfinished keeps the deployments that can still be cancelled.
func unfinished(d api.Deployment) bool { return d.FinishedAt == nil }

// anyDeployment keeps every deployment.
func anyDeployment(api.Deployment) bool { return true }

// completionContext prepares f to reach the agent from a completion, which skips the root's
// PersistentPreRun, and bounds the wait.
func completionContext(cmd *cobra.Command, f *factory) (context.Context, context.CancelFunc) {
	f.flags = cmd.Flags()
	return context.WithTimeout(cmd.Context(), completionTimeout)
}

// projectCompletions lists the slugs that start with prefix, each described by its project's
// name; nothing when the agent cannot be asked, since a shell completing a word cannot show an error.
func projectCompletions(cmd *cobra.Command, f *factory, prefix string) []cobra.Completion {
	ctx, cancel := completionContext(cmd, f)
	defer cancel()
	var projects []api.Project
	if call(ctx, f.Client, "GET", api.PathProjects, nil, &projects) != nil {
		return nil
	}
	var out []cobra.Completion
	for _, p := range projects {
		if strings.HasPrefix(p.Slug, prefix) {
			out = append(out, cobra.CompletionWithDesc(p.Slug, p.Name))
		}
	}
	return out
}

// deploymentCompletions lists the ids, starting with prefix, of the recent deployments (of
// project, unless it is empty) that keep accepts, newest first, each described by its project,
// status, commit and branch; nothing when the agent cannot be asked.
func deploymentCompletions(cmd *cobra.Command, f *factory, project string, keep func(api.Deployment) bool, prefix string) []cobra.Completion {
	ctx, cancel := completionContext(cmd, f)
	defer cancel()
	q := url.Values{"limit": {strconv.Itoa(completionDeployments)}}
	if project != "" {
		q.Set("project_id", project)
	}
	c, err := f.Client()
	if err != nil {
		return nil
	}
	var deployments []api.Deployment
	if c.do(ctx, "GET", api.PathDeployments+"?"+q.Encode(), nil, &deployments) != nil {
		return nil
	}
	slugs, err := projectSlugs(ctx, c)
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, d := range deployments {
		id := strconv.FormatInt(d.ID, 10)
		if keep(d) && strings.HasPrefix(id, prefix) {
			out = append(out, cobra.CompletionWithDesc(id, fmt.Sprintf("%s %s %s %s", slugs[d.ProjectID], d.Status, shortSHA(d.CommitSHA), d.Branch)))
		}
	}
	return out
}
