package github

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"

	gogithub "github.com/google/go-github/v60/github"
)

// Hook is a repository webhook as GitHub reports it.
type Hook struct {
	ID     int64
	URL    string // where GitHub delivers: the hook's config.url
	Active bool
	Events []string
}

// hookFrom converts go-github's hook.
func hookFrom(h *gogithub.Hook) Hook {
	return Hook{ID: h.GetID(), URL: h.GetConfig().GetURL(), Active: h.GetActive(), Events: h.Events}
}

// hookRefused is the message for a hook call that GitHub answers with 403, or with 404 for a
// repository that the token sees without admin rights.
func hookRefused(verb string) string {
	return fmt.Sprintf("GitHub refused to %s: the token lacks admin:repo_hook or repo scope", verb)
}

// HookEvents are the events miaobu's hooks subscribe to: pushes deploy, pull requests make
// previews, and deployments made on GitHub roll back.
var HookEvents = []string{"push", "pull_request", "deployment"}

// MissingEvents returns the HookEvents that events lacks, in their order; nil when none.
func MissingEvents(events []string) []string {
	var missing []string
	for _, e := range HookEvents {
		if !slices.Contains(events, e) {
			missing = append(missing, e)
		}
	}
	return missing
}

// miaobuHook is the hook that miaobu wants: active, the HookEvents, JSON payloads signed with
// secret, TLS verified. The secret is always sent, as GitHub removes it from a config without one,
// and so are the events, which replace the hook's list.
func miaobuHook(hookURL, secret string) *gogithub.Hook {
	return &gogithub.Hook{
		Active: gogithub.Bool(true),
		Events: slices.Clone(HookEvents),
		Config: &gogithub.HookConfig{
			URL:         gogithub.String(hookURL),
			ContentType: gogithub.String("json"),
			Secret:      gogithub.String(secret),
			InsecureSSL: gogithub.String("0"),
		},
	}
}

// NewWebhookSecret returns a new webhook secret: 32 random bytes, base64url without padding (43 characters).
func NewWebhookSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate webhook secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// listHooks returns all hooks of owner/repo; refused is the message for a 403 or 404.
func (c *Client) listHooks(ctx context.Context, owner, repo, refused string) ([]Hook, error) {
	if err := c.check(owner, repo); err != nil {
		return nil, err
	}
	var hooks []Hook
	opts := &gogithub.ListOptions{PerPage: 100}
	for {
		page, resp, err := c.gh.Repositories.ListHooks(ctx, owner, repo, opts)
		if err != nil {
			return nil, c.apiError(err, resp, refused, refused)
		}
		for _, h := range page {
			hooks = append(hooks, hookFrom(h))
		}
		if resp.NextPage == 0 {
			return hooks, nil
		}
		opts.Page = resp.NextPage
	}
}

// FindHookByID returns the hook id of owner/repo, and whether GitHub still has it. It lists the
// hooks rather than reading the one hook, to use only the endpoints of the contract.
func (c *Client) FindHookByID(ctx context.Context, owner, repo string, id int64) (Hook, bool, error) {
	return c.findHook(ctx, owner, repo, hookRefused("list the webhooks"), func(h Hook) bool { return h.ID == id })
}

// findHook returns the first hook of owner/repo that match accepts.
func (c *Client) findHook(ctx context.Context, owner, repo, refused string, match func(Hook) bool) (Hook, bool, error) {
	hooks, err := c.listHooks(ctx, owner, repo, refused)
	if err != nil {
		return Hook{}, false, err
	}
	for _, h := range hooks {
		if match(h) {
			return h, true, nil
		}
	}
	return Hook{}, false, nil
}

// CreateHook adds miaobu's hook to owner/repo that delivers to hookURL, signed with secret.
func (c *Client) CreateHook(ctx context.Context, owner, repo, hookURL, secret string) (Hook, error) {
	if err := c.check(owner, repo); err != nil {
		return Hook{}, err
	}
	h, resp, err := c.gh.Repositories.CreateHook(ctx, owner, repo, miaobuHook(hookURL, secret))
	if err != nil {
		refused := hookRefused("create the webhook")
		if resp != nil && resp.StatusCode == http.StatusUnprocessableEntity {
			return Hook{}, &Error{Kind: ErrUnavailable, StatusCode: resp.StatusCode, cause: err,
				Message: "GitHub refused to create the webhook: " + githubMessage(err)}
		}
		return Hook{}, c.apiError(err, resp, refused, refused)
	}
	return hookFrom(h), nil
}

// EditHook makes hook id of owner/repo miaobu's hook, with the HookEvents, delivering to hookURL
// signed with secret.
func (c *Client) EditHook(ctx context.Context, owner, repo string, id int64, hookURL, secret string) (Hook, error) {
	if err := c.check(owner, repo); err != nil {
		return Hook{}, err
	}
	h, resp, err := c.gh.Repositories.EditHook(ctx, owner, repo, id, miaobuHook(hookURL, secret))
	if err != nil {
		return Hook{}, c.apiError(err, resp,
			fmt.Sprintf("webhook %d not found on %s/%s: it was deleted on GitHub, or the token lacks admin:repo_hook or repo scope", id, owner, repo),
			hookRefused("update the webhook"))
	}
	return hookFrom(h), nil
}

// EnsureHook makes owner/repo deliver the HookEvents to hookURL signed with secret: a hook that already
// delivers to hookURL is updated (so a second setup never adds a second hook), otherwise one is
// created; created tells which. Two concurrent calls for one URL may both create: callers
// serialise setups of one project.
func (c *Client) EnsureHook(ctx context.Context, owner, repo, hookURL, secret string) (hook Hook, created bool, err error) {
	existing, ok, err := c.findHook(ctx, owner, repo, hookRefused("create the webhook"), func(h Hook) bool { return h.URL == hookURL })
	if err != nil {
		return Hook{}, false, err
	}
	if ok {
		hook, err = c.EditHook(ctx, owner, repo, existing.ID, hookURL, secret)
		return hook, false, err
	}
	hook, err = c.CreateHook(ctx, owner, repo, hookURL, secret)
	return hook, err == nil, err
}

// DeleteHook removes hook id from owner/repo; a hook that GitHub no longer has (404) counts as deleted.
func (c *Client) DeleteHook(ctx context.Context, owner, repo string, id int64) error {
	if err := c.check(owner, repo); err != nil {
		return err
	}
	resp, err := c.gh.Repositories.DeleteHook(ctx, owner, repo, id)
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return nil
		}
		return c.apiError(err, resp, "", hookRefused("delete the webhook"))
	}
	return nil
}
