package domain

import (
	"context"
	"testing"

	"github.com/miaobu/miaobu/internal/config"
)

func TestSlugOfTheDashboardsHostIsRefused(t *testing.T) {
	f := newFixture(t, func(c *config.Config) { c.PublicURL, c.Sites.Domain = "https://Dash.mb.test:8443", "mb.test" })
	const refused = "Project dash would be served at dash.mb.test, the host of the agent's public URL, where the dashboard answers: choose another name"
	_, err := f.svc.CreateProject(context.Background(), NewProject{Name: "Dash", RepoURL: "https://example.com/dash.git", Branch: "main"})
	checkError(t, err, Invalid, refused)
	_, err = f.svc.Import(context.Background(), ImportRequest{Owner: "acme", Repo: "site", Name: "dash"})
	checkError(t, err, Invalid, refused)
	if len(f.github.Hooks("acme/site")) != 0 {
		t.Errorf("a refused import made a hook: %+v", f.github.Hooks("acme/site"))
	}
	if _, err := f.svc.CreateProject(context.Background(), NewProject{Name: "dashboard", RepoURL: "https://example.com/dash.git", Branch: "main"}); err != nil {
		t.Errorf("another name: %v", err)
	}
}
