package dashboard

import (
	"bytes"
	"errors"
	"html/template"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/domain"
	"github.com/miaobu/miaobu/internal/store"
)

// projectRow is one project on the projects page.
type projectRow struct {
	Project    api.Project
	Live, Last *api.Deployment
}

// projectsPage lists the projects with their webhook, branch, live deployment and last result.
func (d *Dashboard) projectsPage(w http.ResponseWriter, r *http.Request) error {
	projects, err := d.opts.Domain.Projects()
	if err != nil {
		return err
	}
	st, err := d.opts.Views.Status()
	if err != nil {
		return err
	}
	states := make(map[int64]api.ProjectStatus, len(st.Projects))
	for _, ps := range st.Projects {
		states[ps.ID] = ps
	}
	rows := make([]projectRow, 0, len(projects))
	for _, p := range projects {
		state := states[p.ID]
		rows = append(rows, projectRow{Project: d.opts.Views.Project(p), Live: state.Live, Last: state.Last})
	}
	return d.render(w, http.StatusOK, "projects", struct {
		base
		Projects []projectRow
	}{base{Title: "Projects", SignedIn: true}, rows})
}

// webhookNotices are what the project page says after a webhook action, by the notice in its URL;
// only these fixed words are ever shown, so a link cannot put its own text on the page.
var webhookNotices = map[string]string{
	"created":            "Webhook created on GitHub.",
	"already_configured": "The webhook was already configured.",
	"rotated":            "Webhook secret rotated, on GitHub too.",
	"deleted":            "Webhook deleted from GitHub.",
	"not_configured":     "There was no webhook to delete.",
}

// projectData is what the project page shows.
type projectData struct {
	base
	Project     api.Project
	Domains     []string
	Deliveries  []store.Delivery
	Previews    []api.Preview
	Deployments []api.Deployment
	Filter      domain.DeploymentFilter
	Statuses    []store.Status
	Notice      string
}

// projectPage shows a project: settings, webhook and its deliveries, previews, domains and its
// deployments, filtered by the query's status, environment and branch.
func (d *Dashboard) projectPage(w http.ResponseWriter, r *http.Request) error {
	p, err := d.opts.Domain.Project(r.PathValue("ref"))
	if err != nil {
		return err
	}
	ref := strconv.FormatInt(p.ID, 10)
	q := r.URL.Query()
	data := projectData{base: base{Title: p.Name, SignedIn: true}, Project: d.opts.Views.Project(p), Domains: p.Domains,
		Filter:   domain.DeploymentFilter{Status: q.Get("status"), Environment: q.Get("environment"), Branch: q.Get("branch")},
		Statuses: store.Statuses, Notice: webhookNotices[q.Get("webhook")]}
	if data.Deliveries, err = d.opts.Domain.Deliveries(ref, 10); err != nil {
		return err
	}
	_, previews, err := d.opts.Domain.Previews(ref)
	if err != nil {
		return err
	}
	for _, pv := range previews {
		if !pv.Removed() {
			data.Previews = append(data.Previews, d.opts.Views.Preview(p, pv))
		}
	}
	deployments, err := d.opts.Domain.Deployments(ref, 30, data.Filter)
	if err != nil {
		return err
	}
	for _, dep := range deployments {
		data.Deployments = append(data.Deployments, d.opts.Views.Deployment(dep, p))
	}
	return d.render(w, http.StatusOK, "project", data)
}

// deploymentData is what the deployment page shows.
type deploymentData struct {
	base
	Project    api.Project
	Deployment api.Deployment
	// Log is the log's last complete lines so far, rendered; Stream is where the rest streams from,
	// "" once the deployment has ended.
	Log    []template.HTML
	Stream string
	// LogSize is the log's length, and Shown how much of its end the page shows.
	LogSize, Shown int64
	// Redeploy is set when the same commit can be deployed again, Rollback when it can go live again.
	Redeploy, Rollback bool
}

// pageLogBytes is how much of a build log's end the deployment page shows: the whole log is a link
// away, and a page of every line of a long log would take the agent's memory and the browser's.
const pageLogBytes = 256 << 10

// deploymentPage shows a deployment, the end of its build log so far and the actions it allows.
func (d *Dashboard) deploymentPage(w http.ResponseWriter, r *http.Request) error {
	dep, p, err := d.opts.Domain.Deployment(r.PathValue("id"))
	if err != nil {
		return err
	}
	// The status is read before the log: the log is complete once the deployment has ended.
	f, err := d.opts.Domain.OpenLog(r.Context(), dep)
	if err != nil {
		return err
	}
	start, log, size, err := logTail(f, pageLogBytes)
	if err != nil {
		return err
	}
	view := d.opts.Views.Deployment(dep, p)
	data := deploymentData{base: base{Title: "Deployment #" + strconv.FormatInt(dep.ID, 10), SignedIn: true},
		Project: d.opts.Views.Project(p), Deployment: view, LogSize: size, Shown: size - start,
		Redeploy: dep.CommitSHA != "" && dep.PullRequest == 0,
		Rollback: dep.Status == store.StatusDeployed && !view.Live && dep.Environment == store.EnvironmentProduction}
	complete := len(log)
	if !dep.Terminal() {
		// The last line may still be written: it comes with the stream.
		complete = bytes.LastIndexByte(log, '\n') + 1
		data.Stream = deploymentPath(dep.ID) + "/log?from=" + strconv.FormatInt(start+int64(complete), 10)
	}
	renderer := newLogRenderer()
	for line := range strings.Lines(string(log[:complete])) {
		// The renderer escapes all of the log's text: this is the one place a page holds HTML it did not template.
		data.Log = append(data.Log, template.HTML(renderer.line(strings.TrimSuffix(line, "\n"))))
	}
	return d.render(w, http.StatusOK, "deployment", data)
}

// logTail reads the lines in the last n bytes of log f, which it closes: from start, the offset of
// the first whole line in them, to size, the log's length. A missing log (nil) is empty.
func logTail(f domain.BuildLog, n int64) (start int64, tail []byte, size int64, err error) {
	if f == nil {
		return 0, nil, 0, nil
	}
	defer f.Close()
	if size, err = f.Seek(0, io.SeekEnd); err != nil {
		return 0, nil, 0, err
	}
	start = max(0, size-n)
	tail = make([]byte, size-start)
	if _, err := f.ReadAt(tail, start); err != nil && !errors.Is(err, io.EOF) {
		return 0, nil, 0, err
	}
	if start > 0 {
		// The first line in the tail is cut short: it starts after the first line break.
		i := bytes.IndexByte(tail, '\n') + 1
		start, tail = start+int64(i), tail[i:]
	}
	return start, tail, size, nil
}

// rawLog answers with the deployment's whole build log as text, as `miaobu deployment logs` shows it.
func (d *Dashboard) rawLog(w http.ResponseWriter, r *http.Request) error {
	dep, _, err := d.opts.Domain.Deployment(r.PathValue("id"))
	if err != nil {
		return err
	}
	f, err := d.opts.Domain.OpenLog(r.Context(), dep)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if f == nil {
		return nil
	}
	defer f.Close()
	// Once the answer has begun, a failure (the client gone) can only end it.
	_, _ = io.Copy(w, f)
	return nil
}

// statusPage shows the agent's health, queue, sandbox, certificates, polled projects and failed
// reconciliations.
func (d *Dashboard) statusPage(w http.ResponseWriter, r *http.Request) error {
	st, err := d.opts.Views.Status()
	if err != nil {
		return err
	}
	var polled, unreconciled []api.ProjectStatus
	for _, p := range st.Projects {
		if p.Trigger == api.ProjectTriggerPoll {
			polled = append(polled, p)
		}
		if p.LastReconcileError != nil {
			unreconciled = append(unreconciled, p)
		}
	}
	return d.render(w, http.StatusOK, "status", struct {
		base
		Status       api.Status
		Polled       []api.ProjectStatus
		Unreconciled []api.ProjectStatus
	}{base{Title: "Status", SignedIn: true}, st, polled, unreconciled})
}
