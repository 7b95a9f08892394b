package domain

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/store"
	"github.com/miaobu/miaobu/internal/trigger"
)

// DeploymentFilter narrows a history listing; an empty field keeps every value.
type DeploymentFilter struct {
	// Environment is production or preview.
	Environment string
	// Alias is a preview's alias ("" is no filter, not production's alias).
	Alias  string
	Status string
	Branch string
}

// keeps returns the filter as a test of deployments, nil when it keeps them all.
func (f DeploymentFilter) keeps() func(*store.Deployment) bool {
	if f == (DeploymentFilter{}) {
		return nil
	}
	return func(d *store.Deployment) bool {
		return (f.Environment == "" || d.Environment == f.Environment) && (f.Alias == "" || d.Alias == f.Alias) &&
			(f.Status == "" || string(d.Status) == f.Status) && (f.Branch == "" || d.Branch == f.Branch)
	}
}

// Deployments returns up to limit deployments, newest first, of the project ref names or, with ref
// empty, of every project, that filter keeps.
func (s *Service) Deployments(ref string, limit int, filter DeploymentFilter) ([]*store.Deployment, error) {
	if e := filter.Environment; e != "" && e != store.EnvironmentProduction && e != store.EnvironmentPreview {
		return nil, Errorf(Invalid, "environment must be production or preview, not %q", e)
	}
	if filter.Status != "" && !slices.Contains(store.Statuses, store.Status(filter.Status)) {
		return nil, Errorf(Invalid, "%q is not a deployment status", filter.Status)
	}
	projectID, err := s.projectFilter(ref)
	if err != nil {
		return nil, err
	}
	deployments, err := s.store.DeploymentsWhere(projectID, limit, filter.keeps())
	return deployments, storeError(err, fmt.Sprintf("Project %s not found", ref))
}

// Deliveries returns up to limit recorded webhook deliveries, newest first, of the project ref
// names or, with ref empty, of every project.
func (s *Service) Deliveries(ref string, limit int) ([]store.Delivery, error) {
	projectID, err := s.projectFilter(ref)
	if err != nil {
		return nil, err
	}
	return s.store.Deliveries(projectID, limit)
}

// projectFilter is the project id of a history listing: 0 for every project when ref is empty.
func (s *Service) projectFilter(ref string) (int64, error) {
	if ref == "" {
		return 0, nil
	}
	p, err := s.Project(ref)
	if err != nil {
		return 0, err
	}
	return p.ID, nil
}

// Deployment finds the deployment ref names (its numeric id) and its project.
func (s *Service) Deployment(ref string) (*store.Deployment, *store.Project, error) {
	d, err := byID(ref, "Deployment", s.store.Deployment)
	if err != nil {
		return nil, nil, err
	}
	p, err := s.store.Project(d.ProjectID)
	if err != nil {
		return nil, nil, storeError(err, fmt.Sprintf("Deployment %s not found", ref))
	}
	return d, p, nil
}

// byID finds the record of a kind, such as "Deployment", that ref names by its numeric id with get;
// a ref that is no id, or names nothing, is NotFound.
func byID[T any](ref, kind string, get func(id int64) (T, error)) (T, error) {
	id, err := strconv.ParseInt(ref, 10, 64)
	if err != nil {
		var none T
		return none, Errorf(NotFound, "%s %s not found", kind, ref)
	}
	v, err := get(id)
	if errors.Is(err, store.ErrNotFound) {
		return v, Errorf(NotFound, "%s %s not found", kind, ref)
	}
	return v, err
}

// Deploy queues a manual deployment of a commit of the project ref names, by default of the tip of
// its production branch; it is always built, with no duplicate check, skip marker or watched path,
// and with noCache from nothing: the project's build cache is cleared first. A commit of a preview
// branch goes to that branch's preview.
func (s *Service) Deploy(ctx context.Context, ref, commitSHA, branch string, noCache bool) (*store.Deployment, *store.Project, error) {
	p, err := s.Project(ref)
	if err != nil {
		return nil, nil, err
	}
	if branch == "" {
		branch = p.DefaultBranch
	} else if err := validateBranch(branch); err != nil {
		return nil, nil, err
	}
	sha := strings.ToLower(commitSHA)
	if sha != "" && !github.ValidSHA(sha) {
		return nil, nil, Errorf(Invalid, "%q is not a full commit SHA (40 hex characters)", commitSHA)
	}
	alias, _ := trigger.Environment(branch, p.DefaultBranch, p.PreviewBranches)
	d := &store.Deployment{ProjectID: p.ID, CommitSHA: sha, Branch: branch, Trigger: store.TriggerManual, NoCache: noCache, Alias: alias}
	switch {
	case sha == "" && p.Repo != "":
		owner, name := splitRepo(p.Repo)
		tip, err := s.github.BranchTip(ctx, owner, name, branch)
		if err != nil {
			return nil, nil, githubError("", err)
		}
		d.CommitSHA, d.CommitMessage, d.CommitAuthor = tip.SHA, tip.Message, tip.Author
	case sha == "":
		if d.CommitSHA, err = branchTip(ctx, p.RepoURL, branch); err != nil {
			return nil, nil, err
		}
	}
	var taken *store.AliasTakenError
	if err := s.store.CreateDeployment(d); errors.As(err, &taken) {
		return nil, nil, Errorf(Conflict, "Branch '%s' cannot deploy a preview: its preview URL belongs to branch '%s' (preview %s)", branch, taken.Branch, taken.Alias)
	} else if err != nil {
		return nil, nil, storeError(err, fmt.Sprintf("Project %s not found", ref))
	}
	s.builds.Wake()
	s.log.Info("deployment queued", "project", p.ID, "deployment", d.ID, "commit", d.CommitSHA[:7], "trigger", d.Trigger)
	return d, p, nil
}

// Cancel cancels the deployment ref names, stopping its build if one is running.
func (s *Service) Cancel(ref string) (*store.Deployment, *store.Project, error) {
	d, p, err := s.Deployment(ref)
	if err != nil {
		return nil, nil, err
	}
	cancelled, err := s.store.Cancel(d.ID)
	if errors.Is(err, store.ErrFinished) {
		return nil, nil, Errorf(Conflict, "Deployment %d has already finished (%s)", d.ID, d.Status)
	}
	if err != nil {
		return nil, nil, storeError(err, fmt.Sprintf("Deployment %s not found", ref))
	}
	s.builds.Stop(d.ID)
	s.log.Info("deployment cancelled", "project", p.ID, "deployment", d.ID)
	return cancelled, p, nil
}

// Rollback makes an earlier successful deployment of the project ref names live at once: the one
// with id deploymentID, or with 0 the newest successful one before the live one.
func (s *Service) Rollback(ctx context.Context, ref string, deploymentID int64) (*store.Deployment, *store.Project, error) {
	p, err := s.Project(ref)
	if err != nil {
		return nil, nil, err
	}
	if deploymentID == 0 {
		if deploymentID, err = s.previousDeployment(p); err != nil {
			return nil, nil, err
		}
	}
	d, err := s.store.Deployment(deploymentID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && d.ProjectID != p.ID) {
		return nil, nil, Errorf(NotFound, "Deployment %d not found in project %s", deploymentID, p.Slug)
	}
	if err != nil {
		return nil, nil, err
	}
	if d.Status != store.StatusDeployed {
		return nil, nil, Errorf(Conflict, "Deployment %d is %s: only successful deployments can go live", d.ID, d.Status)
	}
	live := p.ActiveDeploymentID
	if d.Alias != "" {
		pv, err := s.store.Preview(p.ID, d.Alias)
		if errors.Is(err, store.ErrNotFound) || (err == nil && pv.Removed()) {
			return nil, nil, Errorf(Conflict, "Deployment %d belongs to the preview %s, which was removed", d.ID, d.Alias)
		}
		if err != nil {
			return nil, nil, err
		}
		live = pv.ActiveDeploymentID
	}
	if d.ID == live {
		return nil, nil, Errorf(Conflict, "Deployment %d is already live", d.ID)
	}
	if err := s.goLive(ctx, p, d); err != nil {
		return nil, nil, err
	}
	if p, err = s.store.Project(p.ID); err != nil {
		return nil, nil, err
	}
	log := s.log.With("project", p.ID, "deployment", d.ID)
	if d.Alias == "" { // GitHub's production environment; a preview's rollback is miaobu's own
		s.report(log, "a rollback", s.reports.LiveAgain(p, d, 0))
	}
	log.Info("rolled back")
	return d, p, nil
}

// previousDeployment is the newest successful production deployment of p older than its live one.
func (s *Service) previousDeployment(p *store.Project) (int64, error) {
	history, err := s.store.Deployments(p.ID, 0)
	if err != nil {
		return 0, storeError(err, fmt.Sprintf("Project %s not found", p.Slug))
	}
	for _, d := range history {
		if d.Alias == "" && d.Status == store.StatusDeployed && d.ID != p.ActiveDeploymentID && (p.ActiveDeploymentID == 0 || d.ID < p.ActiveDeploymentID) {
			return d.ID, nil
		}
	}
	return 0, Errorf(Conflict, "Project %s has no earlier successful deployment to roll back to", p.Slug)
}
