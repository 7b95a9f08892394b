package agent

import (
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/domain"
	"github.com/miaobu/miaobu/internal/notify"
	"github.com/miaobu/miaobu/internal/store"
)

// projectView turns a stored project into its API form, without its secrets.
func (a *Agent) projectView(p *store.Project) api.Project {
	v := api.Project{
		ID: p.ID, Name: p.Name, Slug: p.Slug, RepoURL: p.RepoURL, DefaultBranch: p.DefaultBranch,
		Framework: p.Framework, InstallCommand: p.InstallCommand, BuildCommand: p.BuildCommand,
		OutputDirectory: p.OutputDirectory, RootDirectory: p.RootDirectory, Target: p.Target,
		WebhookConfigured: p.WebhookConfigured(), WebhookURL: a.domain.WebhookURL(p.ID), SiteURL: a.domain.LiveURL(p),
		CreatedAt: p.CreatedAt, Detection: detectionView(p.Detected), CacheBytes: a.cacheBytes(p),
		PreviewBranches: nonNil(p.PreviewBranches), PRPreviews: p.PRPreviews, ForkPreviews: p.ForkPreviews,
		WatchPaths: nonNil(p.WatchPaths), Trigger: p.TriggerMode,
		WebhookEventsMissing: domain.WebhookEventsMissing(p), GitHubReports: a.reporter.Summary(p),
		PollStatus: a.pollStatus(p.ID),
	}
	if p.Repo != "" {
		repo := p.Repo
		v.Repo = &repo
	}
	if p.WebhookID != 0 {
		hook := p.WebhookID
		v.WebhookID = &hook
	}
	if p.ActiveDeploymentID != 0 {
		active := p.ActiveDeploymentID
		v.ActiveDeploymentID = &active
	}
	return v
}

// nonNil is list, or an empty list for nil, so that JSON shows [] rather than null.
func nonNil(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

// previewView turns a stored preview of p into its API form.
func (a *Agent) previewView(p *store.Project, pv *store.Preview) api.Preview {
	v := api.Preview{Alias: pv.Alias, Branch: pv.Branch, Fork: pv.Fork, HeadSHA: pv.HeadSHA,
		AwaitingApproval: domain.AwaitingApproval(p, pv), URL: a.domain.PreviewURL(p, pv.Alias, pv.PullRequest, pv.Branch),
		CreatedAt: pv.CreatedAt, RemovedAt: pv.RemovedAt}
	if pv.PullRequest != 0 {
		n := pv.PullRequest
		v.PullRequest = &n
	}
	if pv.ActiveDeploymentID != 0 {
		id := pv.ActiveDeploymentID
		v.DeploymentID = &id
	}
	return v
}

// detectionView turns what a build detected into its API fields, all null when nothing was.
func detectionView(s *store.DetectedSettings) api.Detection {
	if s == nil {
		return api.Detection{}
	}
	return api.Detection{DetectedFramework: &s.Framework, DetectedInstallCommand: &s.InstallCommand,
		DetectedBuildCommand: &s.BuildCommand, DetectedOutputDirectory: &s.OutputDirectory}
}

// deploymentView turns a stored deployment into its API form.
func (a *Agent) deploymentView(d *store.Deployment, p *store.Project) api.Deployment {
	v := api.Deployment{
		ID: d.ID, ProjectID: d.ProjectID, CommitSHA: d.CommitSHA, CommitMessage: d.CommitMessage,
		CommitAuthor: d.CommitAuthor, Branch: d.Branch, Trigger: string(d.Trigger), Status: string(d.Status),
		ErrorMessage: d.ErrorMessage, CreatedAt: d.CreatedAt, StartedAt: d.StartedAt, FinishedAt: d.FinishedAt,
		BuildTimeSeconds: d.BuildTimeSeconds, Detection: detectionView(d.Detected), Environment: d.Environment, Alias: d.Alias,
	}
	if d.PullRequest != 0 {
		n := d.PullRequest
		v.PullRequest = &n
	}
	if d.Node != "" {
		node := d.Node
		v.Node = &node
	}
	if p != nil {
		v.Live = a.domain.IsLive(p, d)
		if d.Status == store.StatusDeployed {
			v.URL = a.domain.DeploymentURL(p, d)
		}
	}
	return v
}

// envView lists a project's variable names, sorted, never their values.
func envView(p *store.Project) []api.EnvVar {
	names := domain.EnvNames(p)
	out := make([]api.EnvVar, 0, len(names))
	for _, name := range names {
		out = append(out, api.EnvVar{Name: name})
	}
	return out
}

// importView turns what an import did into its API answer.
func (a *Agent) importView(imp *domain.Imported) api.ImportResult {
	found := imp.Detected
	out := api.ImportResult{Project: a.projectView(imp.Project), Warnings: imp.Warnings,
		Webhook: api.ImportWebhook{Status: string(imp.Hook), Error: imp.HookError},
		Detected: api.Detected{
			CommitSHA: imp.CommitSHA, Framework: found.Framework, PackageManager: found.PackageManager,
			InstallCommand: found.InstallCommand, BuildCommand: found.BuildCommand, OutputDirectory: found.OutputDirectory,
			NodeVersion: found.NodeVersion, Notes: append([]string{}, found.Notes...),
		}}
	if imp.Deployment != nil {
		view := a.deploymentView(imp.Deployment, imp.Project)
		out.Deployment = &view
	}
	return out
}

// notificationView turns a stored notification target into its API form, its target masked and
// without its secret.
func notificationView(n *store.Notification) api.Notification {
	v := api.Notification{ID: n.ID, Type: n.Type, Target: notify.Mask(n.Target), Events: n.Events, CreatedAt: n.CreatedAt}
	if n.ProjectID != 0 {
		v.ProjectID = &n.ProjectID
	}
	if n.DisabledReason != "" {
		v.DisabledReason = &n.DisabledReason
	}
	return v
}
