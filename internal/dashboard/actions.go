package dashboard

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/miaobu/miaobu/internal/domain"
)

// deploymentPath is the page of deployment id.
func deploymentPath(id int64) string { return "/deployments/" + strconv.FormatInt(id, 10) }

// deploy queues a manual deployment of the form's commit and branch (by default the tip of the
// production branch), without the build cache when no_cache is set, and shows it.
func (d *Dashboard) deploy(w http.ResponseWriter, r *http.Request) error {
	dep, _, err := d.opts.Domain.Deploy(r.Context(), r.PathValue("ref"), r.PostFormValue("commit_sha"),
		r.PostFormValue("branch"), r.PostFormValue("no_cache") != "")
	if err != nil {
		return err
	}
	http.Redirect(w, r, deploymentPath(dep.ID), http.StatusSeeOther)
	return nil
}

// rollback makes the form's deployment (by default the one before the live one) live again and
// shows it.
func (d *Dashboard) rollback(w http.ResponseWriter, r *http.Request) error {
	var id int64
	if s := r.PostFormValue("deployment_id"); s != "" {
		var err error
		if id, err = strconv.ParseInt(s, 10, 64); err != nil || id < 1 {
			return domain.Errorf(domain.Invalid, "%q is not a deployment id", s)
		}
	}
	dep, _, err := d.opts.Domain.Rollback(r.Context(), r.PathValue("ref"), id)
	if err != nil {
		return err
	}
	http.Redirect(w, r, deploymentPath(dep.ID), http.StatusSeeOther)
	return nil
}

// cancel cancels a deployment and shows it.
func (d *Dashboard) cancel(w http.ResponseWriter, r *http.Request) error {
	dep, _, err := d.opts.Domain.Cancel(r.PathValue("id"))
	if err != nil {
		return err
	}
	http.Redirect(w, r, deploymentPath(dep.ID), http.StatusSeeOther)
	return nil
}

// webhook sets up, rotates or deletes a GitHub project's hook, and shows the project with what
// happened.
func (d *Dashboard) webhook(w http.ResponseWriter, r *http.Request) error {
	ref := r.PathValue("ref")
	p, err := d.opts.Domain.Project(ref)
	if err != nil {
		return err
	}
	if p.Repo == "" {
		// A hand-made hook's new secret would have to be shown on a page: the CLI does that.
		return domain.Errorf(domain.Invalid, "%s has no GitHub repository: its webhook is set up by hand (`miaobu webhook rotate`)", p.Slug)
	}
	var notice string
	switch r.PathValue("action") {
	case "setup":
		setup, err := d.opts.Domain.SetupWebhook(r.Context(), ref)
		if err != nil {
			return err
		}
		notice = "created"
		if setup.AlreadyConfigured {
			notice = "already_configured"
		}
	case "rotate":
		if _, err := d.opts.Domain.RotateWebhook(r.Context(), ref); err != nil {
			return err
		}
		notice = "rotated"
	case "delete":
		deleted, err := d.opts.Domain.DeleteWebhook(r.Context(), ref)
		if err != nil {
			return err
		}
		notice = "not_configured"
		if deleted {
			notice = "deleted"
		}
	default:
		return domain.Errorf(domain.NotFound, "No such webhook action")
	}
	http.Redirect(w, r, "/projects/"+url.PathEscape(p.Slug)+"?webhook="+notice, http.StatusSeeOther)
	return nil
}
