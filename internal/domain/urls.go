package domain

import (
	"strconv"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/store"
)

// WebhookURL is the URL GitHub posts a project's pushes to.
func (s *Service) WebhookURL(projectID int64) string {
	return s.cfg.PublicURL + api.PathWebhookPrefix + strconv.FormatInt(projectID, 10)
}

// DeploymentURL is where a successful deployment can be seen: a preview's alias, else its
// permanent preview on the local target and the live site on the others.
func (s *Service) DeploymentURL(p *store.Project, d *store.Deployment) string {
	switch {
	case d.Alias != "":
		return s.aliasURL(p, d)
	case p.Target == "local":
		return s.url(p, strconv.FormatInt(d.ID, 10))
	}
	return s.LiveURL(p)
}

// aliasURL is where deployment d of p is seen when it is live: the live site, or its preview.
func (s *Service) aliasURL(p *store.Project, d *store.Deployment) string {
	if d.Alias == "" {
		return s.LiveURL(p)
	}
	return s.PreviewURL(p, d.Alias, d.PullRequest, d.Branch)
}

// LiveURL is where a project's live site is seen.
func (s *Service) LiveURL(p *store.Project) string {
	return s.url(p, "")
}

// url is where p's target shows alias, "" when the project names a target this agent lacks.
func (s *Service) url(p *store.Project, alias string) string {
	target, err := s.targets.For(p.Target)
	if err != nil {
		return ""
	}
	return target.URL(p.Slug, alias)
}
