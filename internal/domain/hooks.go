package domain

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/miaobu/miaobu/internal/github"
	"github.com/miaobu/miaobu/internal/store"
)

// HookSetup is what setting a project's GitHub hook up did.
type HookSetup struct {
	// AlreadyConfigured says the stored hook exists with the project's URL and nothing changed.
	AlreadyConfigured bool
	HookID            int64
	URL               string
	// EventsAdded are the events an already configured hook lacked and now also sends.
	EventsAdded []string
	// Warning says why GitHub may still not reach the hook, such as a loopback public_url.
	Warning string
}

// HookRotation is a project's new webhook secret in place.
type HookRotation struct {
	Project *store.Project
	URL     string
	// Secret is the new secret, to be pasted by hand; empty for a GitHub hook, which has it already.
	Secret string
}

// hookURLRefusal explains why no hook can be made for the public URL, or returns "".
func (s *Service) hookURLRefusal() string {
	if reason := s.cfg.PublicURLUnreachable(); reason != "" {
		return "Cannot create a webhook: " + reason
	}
	return ""
}

// loopbackWarning says, when the public URL is a loopback address, that GitHub cannot deliver to
// it and how to expose the agent.
func (s *Service) loopbackWarning(slug string) string {
	if !s.cfg.PublicURLIsLoopback() {
		return ""
	}
	port := "8000"
	if u, err := url.Parse(s.cfg.PublicURL); err == nil && u.Port() != "" {
		port = u.Port()
	}
	return fmt.Sprintf("public_url %s is a loopback address that GitHub cannot reach: expose the agent with "+
		"`ngrok http %s` or `cloudflared tunnel --url http://127.0.0.1:%s`, set MIAOBU_PUBLIC_URL to the tunnel's "+
		"https URL, restart the agent and run `miaobu webhook setup %s`", s.cfg.PublicURL, port, port, slug)
}

// installHook makes p's repository deliver the hook events to p's webhook URL signed with secret,
// adopting a hook that already has that URL, and stores the hook's id and events with the secret.
// The caller holds s.hooks.
func (s *Service) installHook(ctx context.Context, p *store.Project, secret string) (*store.Project, bool, error) {
	owner, name := splitRepo(p.Repo)
	hook, created, err := s.github.EnsureHook(ctx, owner, name, s.WebhookURL(p.ID), secret)
	if err != nil {
		return nil, false, err
	}
	updated, err := s.store.UpdateProject(p.ID, func(p *store.Project) error {
		p.WebhookID, p.WebhookSecret, p.WebhookEvents = hook.ID, secret, hook.Events
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("storing webhook %d: %w", hook.ID, err)
	}
	return updated, created, nil
}

// lockHooks takes s.hooks and reads the project ref names, so that a hook change that ran while this
// one waited is seen; it returns the unlock function, which the caller calls also on an error.
func (s *Service) lockHooks(ref string) (*store.Project, func(), error) {
	s.hooks.Lock()
	p, err := s.Project(ref)
	return p, s.hooks.Unlock, err
}

// SetupWebhook creates the GitHub hook of the project ref names: already configured when its stored
// hook still exists with the project's URL; otherwise a hook with that URL is adopted, or a new one created.
func (s *Service) SetupWebhook(ctx context.Context, ref string) (HookSetup, error) {
	p, err := s.Project(ref)
	if err != nil {
		return HookSetup{}, err
	}
	if p.Repo == "" {
		return HookSetup{}, Errorf(Invalid, "Project %s was not imported from GitHub: its webhook is set up by hand, "+
			"and `miaobu webhook rotate %s` gives it a new secret", p.Slug, p.Slug)
	}
	if refusal := s.hookURLRefusal(); refusal != "" {
		return HookSetup{}, Errorf(Invalid, "%s", refusal)
	}
	p, unlock, err := s.lockHooks(ref)
	defer unlock()
	if err != nil {
		return HookSetup{}, err
	}
	// Setting the hook up is how a user says the token's permissions may have changed.
	s.reports.Resume(p.ID)
	setup := HookSetup{HookID: p.WebhookID, URL: s.WebhookURL(p.ID), Warning: s.loopbackWarning(p.Slug)}
	if p.WebhookID != 0 && p.WebhookSecret != "" {
		owner, name := splitRepo(p.Repo)
		hook, exists, err := s.github.FindHookByID(ctx, owner, name, p.WebhookID)
		if err != nil {
			return HookSetup{}, githubError("", err)
		}
		if exists && hook.URL == setup.URL {
			setup.AlreadyConfigured = true
			if setup.EventsAdded = github.MissingEvents(hook.Events); setup.EventsAdded != nil {
				// A hook made before miaobu needed them: add the events, sending the secret along.
				if hook, err = s.github.EditHook(ctx, owner, name, p.WebhookID, setup.URL, p.WebhookSecret); err != nil {
					return HookSetup{}, githubError("", err)
				}
				s.log.Info("webhook events added", "project", p.ID, "hook", p.WebhookID, "events", strings.Join(setup.EventsAdded, ","))
			}
			return setup, s.recordHookEvents(p, hook.Events)
		}
		if exists {
			// public_url changed since the hook was made: point the same hook at the new URL.
			if hook, err = s.github.EditHook(ctx, owner, name, p.WebhookID, setup.URL, p.WebhookSecret); err != nil {
				return HookSetup{}, githubError("", err)
			}
			if err := s.recordHookEvents(p, hook.Events); err != nil {
				return HookSetup{}, err
			}
			s.log.Info("webhook moved to the new public URL", "project", p.ID, "hook", p.WebhookID)
			return setup, nil
		}
	}
	secret := p.WebhookSecret
	if secret == "" {
		if secret, err = github.NewWebhookSecret(); err != nil {
			return HookSetup{}, err
		}
	}
	p, created, err := s.installHook(ctx, p, secret)
	if err != nil {
		return HookSetup{}, githubError("", err)
	}
	s.log.Info("webhook set up", "project", p.ID, "hook", p.WebhookID, "created", created)
	setup.HookID = p.WebhookID
	return setup, nil
}

// recordHookEvents stores the events p's GitHub hook sends.
func (s *Service) recordHookEvents(p *store.Project, events []string) error {
	_, err := s.store.UpdateProject(p.ID, func(p *store.Project) error {
		p.WebhookEvents = events
		return nil
	})
	return storeError(err, fmt.Sprintf("Project %s not found", p.Slug))
}

// DeleteWebhook removes the GitHub hook of the project ref names (one already gone counts as
// deleted) and forgets its secret, so that deliveries are refused; it reports false when the
// project had no webhook.
func (s *Service) DeleteWebhook(ctx context.Context, ref string) (bool, error) {
	p, unlock, err := s.lockHooks(ref)
	defer unlock()
	if err != nil {
		return false, err
	}
	if !p.WebhookConfigured() {
		return false, nil
	}
	if p.Repo != "" {
		owner, name := splitRepo(p.Repo)
		if err := s.github.DeleteHook(ctx, owner, name, p.WebhookID); err != nil {
			return false, githubError("", err)
		}
	}
	if _, err := s.store.UpdateProject(p.ID, func(p *store.Project) error {
		p.WebhookID, p.WebhookSecret, p.WebhookEvents = 0, "", nil
		return nil
	}); err != nil {
		return false, storeError(err, fmt.Sprintf("Project %s not found", ref))
	}
	s.log.Info("webhook deleted", "project", p.ID, "hook", p.WebhookID)
	return true, nil
}

// RotateWebhook replaces the webhook secret of the project ref names: on GitHub and in the store
// together for an imported project, or in the store, with the new secret returned once, for a
// hand-made hook.
func (s *Service) RotateWebhook(ctx context.Context, ref string) (HookRotation, error) {
	p, unlock, err := s.lockHooks(ref)
	defer unlock()
	if err != nil {
		return HookRotation{}, err
	}
	if p.Repo != "" && p.WebhookID == 0 {
		return HookRotation{}, Errorf(Conflict, "Project %s has no GitHub webhook: create one with `miaobu webhook setup %s`", p.Slug, p.Slug)
	}
	secret, err := github.NewWebhookSecret()
	if err != nil {
		return HookRotation{}, err
	}
	rotation := HookRotation{Project: p, URL: s.WebhookURL(p.ID)}
	if p.Repo != "" {
		// GitHub first: if the store then failed, a retry would fix both, while the other order
		// would leave GitHub signing with a secret the agent no longer has.
		owner, name := splitRepo(p.Repo)
		hook, err := s.github.EditHook(ctx, owner, name, p.WebhookID, rotation.URL, secret)
		if err != nil {
			prefix := ""
			if errors.Is(err, github.ErrNotFound) {
				prefix = fmt.Sprintf("Run `miaobu webhook setup %s` to create a new one: ", p.Slug)
			}
			return HookRotation{}, githubError(prefix, err)
		}
		p.WebhookEvents = hook.Events
	} else {
		rotation.Secret = secret
	}
	if _, err := s.store.UpdateProject(p.ID, func(stored *store.Project) error {
		stored.WebhookSecret, stored.WebhookEvents = secret, p.WebhookEvents
		return nil
	}); err != nil {
		return HookRotation{}, storeError(err, fmt.Sprintf("Project %s not found", ref))
	}
	s.log.Info("webhook secret rotated", "project", p.ID, "hook", p.WebhookID)
	return rotation, nil
}
