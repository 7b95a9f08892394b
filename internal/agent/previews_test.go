package agent_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/github/githubtest"
	"github.com/miaobu/miaobu/internal/store"
)

// previewRow is one delivery of a preview scenario and what it must answer.
type previewRow struct {
	name  string
	event string
	body  []byte
	want  map[string]any
	// check, when set, looks at the store after the delivery.
	check func(t *testing.T)
}

// runPreviewRows sends the rows in order to project p and checks each answer.
func runPreviewRows(t *testing.T, ta *agenttest.Agent, p api.Project, rows []previewRow) {
	t.Helper()
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			status, got := ta.Deliver(t, strconv.FormatInt(p.ID, 10), agenttest.Delivery{Event: row.event, Body: row.body, Secret: p.WebhookSecret})
			if status != http.StatusOK || !equalJSON(got, row.want) {
				t.Errorf("answer %d %v\nwant 200 %v", status, got, row.want)
			}
			if row.check != nil {
				row.check(t)
			}
		})
	}
}

// storedDeployment reads deployment id from the store.
func storedDeployment(t *testing.T, ta *agenttest.Agent, id int64) *store.Deployment {
	t.Helper()
	d, err := ta.Store.Deployment(id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// previewAgent is an agent that records deployments without building them, with a project site
// whose production branch is main.
func previewAgent(t *testing.T, triggers api.TriggerSettings) (*agenttest.Agent, api.Project) {
	t.Helper()
	cfg := agenttest.Config(t)
	cfg.Build.Concurrency = 0
	ta := agenttest.StartWith(t, cfg, agenttest.Options{APIOnly: true})
	p := ta.AddProject(t, remoteProject("site", "main"))
	secret := p.WebhookSecret
	if code := ta.Call(t, "PATCH", api.PathProjects+"/site", api.ProjectUpdate{TriggerSettings: triggers}, 0, &p); code != http.StatusOK {
		t.Fatalf("setting the trigger rules: %d", code)
	}
	p.WebhookSecret = secret
	return ta, p
}

// Head commits of the pull request fixtures: PR #2 opened and synchronized, PR #7 from a fork.
const (
	openedHead = "97a6945139973eb5371e80b304cb21fe54c3d00e"
	syncHead   = "eee205af12f778a6237df7d9a53b80c229283e5d"
	forkHead   = "dff83f7a44e4e5b8fdfa078f8e62a682d4aa60b3"
)

// TestPullRequestPreviews drives the pull_request rows of contract section 7 with GitHub's
// payloads: a same-repository pull request opened, delivered twice, synchronized and closed; a
// fork's that waits for approval and gets it by label; a deleted fork's approved through the API;
// production untouched throughout.
func TestPullRequestPreviews(t *testing.T) {
	t.Parallel()
	ta, p := previewAgent(t, api.TriggerSettings{})
	opened := githubtest.Payload(t, "pull_request.opened.json", nil)
	runPreviewRows(t, ta, p, []previewRow{
		{"opened", "pull_request", opened,
			map[string]any{"status": "success", "message": "Preview deployment triggered for PR #2", "deployment_id": float64(1),
				"commit_sha": openedHead, "branch": "feature/landing-page"},
			func(t *testing.T) {
				d := storedDeployment(t, ta, 1)
				if d.Environment != "preview" || d.Alias != "pr-2" || d.PullRequest != 2 || d.Branch != "feature/landing-page" ||
					d.CommitSHA != openedHead || d.Trigger != "pull_request" || d.Fork {
					t.Errorf("deployment %+v", d)
				}
			}},
		{"opened, delivered again", "pull_request", opened,
			map[string]any{"status": "skipped", "message": "Deployment for commit 97a6945 already exists", "deployment_id": float64(1)}, nil},
		{"synchronize", "pull_request", githubtest.Payload(t, "pull_request.synchronize.json", nil),
			map[string]any{"status": "success", "message": "Preview deployment triggered for PR #2", "deployment_id": float64(2),
				"commit_sha": syncHead, "branch": "feature/landing-page"},
			func(t *testing.T) {
				if d := storedDeployment(t, ta, 1); d.Status != store.StatusCancelled || d.ErrorMessage != "superseded by #2" {
					t.Errorf("the older head's deployment: %s %q", d.Status, d.ErrorMessage)
				}
				if d := storedDeployment(t, ta, 2); d.CommitSHA != syncHead {
					t.Errorf("synchronized to %s", d.CommitSHA)
				}
			}},
		{"a push to production meanwhile", "push", githubtest.Payload(t, "push.docs-only.json", nil),
			map[string]any{"status": "success", "message": "Deployment triggered for commit 1b75da7", "deployment_id": float64(3),
				"commit_sha": "1b75da7a4f895f0947ec3d6bd1c167c849e5e5fd", "commit_message": "docs: fix a link", "branch": "main"},
			func(t *testing.T) {
				if d := storedDeployment(t, ta, 2); d.Status != store.StatusQueued {
					t.Errorf("production's push touched the preview's deployment: %s %q", d.Status, d.ErrorMessage)
				}
				if d := storedDeployment(t, ta, 3); d.Environment != "production" || d.Alias != "" || d.PullRequest != 0 {
					t.Errorf("production deployment %+v", d)
				}
			}},
		{"a fork's pull request waits for approval", "pull_request", githubtest.Payload(t, "pull_request.opened.fork.json", nil), map[string]any{"status": "ignored", "message": "PR #7 is from a fork: approve it with 'miaobu preview approve' or the miaobu:preview label"},
			func(t *testing.T) {
				if n := deploymentCount(t, ta); n != 3 {
					t.Errorf("%d deployments, want 3: a fork's head was built without approval", n)
				}
				var previews []api.Preview
				ta.Call(t, "GET", api.PreviewsPath("site"), nil, 0, &previews)
				if len(previews) != 2 || previews[1].Alias != "pr-7" || !previews[1].AwaitingApproval || !previews[1].Fork ||
					previews[1].HeadSHA != forkHead || previews[1].DeploymentID != nil {
					t.Errorf("previews %+v", previews)
				}
			}},
		{"another label approves nothing", "pull_request", githubtest.Payload(t, "pull_request.labeled.fork.json", func(doc map[string]any) {
			doc["label"].(map[string]any)["name"] = "bug"
		}), map[string]any{"status": "ignored", "message": "Label 'bug' ignored (only 'miaobu:preview' approves a fork's preview)"}, nil},
		{"the miaobu:preview label approves the head", "pull_request", githubtest.Payload(t, "pull_request.labeled.fork.json", nil),
			map[string]any{"status": "success", "message": "Preview deployment triggered for PR #7", "deployment_id": float64(4),
				"commit_sha": forkHead, "branch": "patch-1"},
			func(t *testing.T) {
				if d := storedDeployment(t, ta, 4); !d.Fork || d.Alias != "pr-7" || d.CommitSHA != forkHead {
					t.Errorf("approved deployment %+v", d)
				}
			}},
		{"a deleted fork's pull request waits too", "pull_request", githubtest.Payload(t, "pull_request.synchronize.deleted-fork.json", nil),
			map[string]any{"status": "ignored", "message": "PR #9 is from a fork: approve it with 'miaobu preview approve' or the miaobu:preview label"}, nil},
		{"closed", "pull_request", githubtest.Payload(t, "pull_request.closed.json", nil),
			map[string]any{"status": "ok", "message": "Preview for PR #2 removed"},
			func(t *testing.T) {
				if d := storedDeployment(t, ta, 2); d.Status != store.StatusCancelled || d.ErrorMessage != "pull request closed" {
					t.Errorf("the closed pull request's queued deployment: %s %q", d.Status, d.ErrorMessage)
				}
				if d := storedDeployment(t, ta, 3); d.Status != store.StatusQueued {
					t.Errorf("closing a pull request touched production: %s", d.Status)
				}
			}},
		{"a pull request with no preview closed", "pull_request", githubtest.Payload(t, "pull_request.closed.json", func(doc map[string]any) {
			doc["number"] = 55
		}), map[string]any{"status": "ignored", "message": "pr-55 has no preview: nothing to remove"}, nil},
		{"another action", "pull_request", githubtest.Payload(t, "pull_request.opened.json", func(doc map[string]any) {
			doc["action"] = "assigned"
		}), map[string]any{"status": "ignored", "message": "Pull request action 'assigned' ignored"}, nil},
	})

	// The deleted fork's head is approved through the API, as `miaobu preview approve site 9` does.
	var answer api.WebhookAnswer
	if code := ta.Call(t, "POST", api.ApprovePath("site", "pr-9"), nil, 0, &answer); code != http.StatusOK ||
		answer.Status != "success" || answer.Message != "Preview deployment triggered for PR #9" || answer.DeploymentID != 5 {
		t.Fatalf("approve: %d %+v", code, answer)
	}
	if d := storedDeployment(t, ta, 5); !d.Fork || d.Alias != "pr-9" || d.Branch != "dark-mode" {
		t.Errorf("approved deployment %+v", d)
	}
	var refusal api.Error
	if code := ta.Call(t, "POST", api.ApprovePath("site", "pr-2"), nil, 0, &refusal); code != http.StatusConflict ||
		refusal.Detail != "PR #2 is closed: its preview was removed" {
		t.Errorf("approving a closed pull request: %d %+v", code, refusal)
	}
	if code := ta.Call(t, "POST", api.ApprovePath("site", "pr-404"), nil, 0, &refusal); code != http.StatusNotFound {
		t.Errorf("approving an unknown preview: %d %+v", code, refusal)
	}
	var deployments []api.Deployment
	ta.Call(t, "GET", api.PathDeployments+"?project_id=site&environment=preview&alias=pr-7", nil, 0, &deployments)
	if len(deployments) != 1 || deployments[0].ID != 4 || deployments[0].PullRequest == nil || *deployments[0].PullRequest != 7 {
		t.Errorf("deployments of pr-7: %+v", deployments)
	}
	ta.Call(t, "GET", api.PathDeployments+"?project_id=site&environment=production", nil, 0, &deployments)
	if len(deployments) != 1 || deployments[0].ID != 3 || deployments[0].Environment != "production" {
		t.Errorf("production deployments: %+v", deployments)
	}
}

// TestLateAndReplayedPullRequestUpdates: a replayed old head of a pull request does not roll its
// preview back, though a force-push back to it does; a late update of a closed pull request does
// not bring its preview back, only reopening does; a replayed opened, or a replayed reopened of a
// commit the pull request had before the head it was closed at, does not either.
func TestLateAndReplayedPullRequestUpdates(t *testing.T) {
	ta, p := previewAgent(t, api.TriggerSettings{})
	opened := githubtest.Payload(t, "pull_request.opened.json", nil)
	synchronize := githubtest.Payload(t, "pull_request.synchronize.json", nil)
	oldSynchronize := githubtest.Payload(t, "pull_request.synchronize.json", func(doc map[string]any) {
		doc["pull_request"].(map[string]any)["head"].(map[string]any)["sha"] = openedHead
	})
	// GitHub's reopened has no before, only the head it is reopened at: the one it was closed at, or
	// a later commit (GitHub refuses to reopen a pull request whose branch was force-pushed).
	reopened := func(head string) []byte {
		return githubtest.Payload(t, "pull_request.synchronize.json", func(doc map[string]any) {
			doc["action"] = "reopened"
			delete(doc, "before")
			delete(doc, "after")
			doc["pull_request"].(map[string]any)["head"].(map[string]any)["sha"] = head
		})
	}
	deployments := func(want int) func(t *testing.T) {
		return func(t *testing.T) {
			if n := deploymentCount(t, ta); n != want {
				t.Errorf("%d deployments, want %d", n, want)
			}
		}
	}
	stale := map[string]any{"status": "ignored", "message": "Stale delivery: PR #2 has moved on"}
	closed := map[string]any{"status": "ignored", "message": "PR #2 is closed"}
	runPreviewRows(t, ta, p, []previewRow{
		{"opened", "pull_request", opened, map[string]any{"status": "success", "message": "Preview deployment triggered for PR #2",
			"deployment_id": float64(1), "commit_sha": openedHead, "branch": "feature/landing-page"}, nil},
		{"synchronize", "pull_request", synchronize, map[string]any{"status": "success", "message": "Preview deployment triggered for PR #2",
			"deployment_id": float64(2), "commit_sha": syncHead, "branch": "feature/landing-page"}, nil},
		{"an old synchronize replayed", "pull_request", oldSynchronize, stale, deployments(2)},
		{"opened replayed", "pull_request", opened, stale, deployments(2)},
		{"forced back to the first head", "pull_request", githubtest.Payload(t, "pull_request.synchronize.json", func(doc map[string]any) {
			doc["before"], doc["after"] = syncHead, openedHead
			doc["pull_request"].(map[string]any)["head"].(map[string]any)["sha"] = openedHead
		}), map[string]any{"status": "success", "message": "Preview deployment triggered for PR #2",
			"deployment_id": float64(3), "commit_sha": openedHead, "branch": "feature/landing-page"}, nil},
		{"closed", "pull_request", githubtest.Payload(t, "pull_request.closed.json", nil),
			map[string]any{"status": "ok", "message": "Preview for PR #2 removed"}, nil},
		{"a late synchronize", "pull_request", synchronize, closed, func(t *testing.T) {
			deployments(3)(t)
			if pv, err := ta.Store.Preview(p.ID, "pr-2"); err != nil || !pv.Removed() {
				t.Errorf("preview %+v, %v: a late update brought it back", pv, err)
			}
		}},
		{"reopened", "pull_request", reopened(openedHead), map[string]any{"status": "success", "message": "Preview deployment triggered for PR #2",
			"deployment_id": float64(4), "commit_sha": openedHead, "branch": "feature/landing-page"}, func(t *testing.T) {
			if pv, err := ta.Store.Preview(p.ID, "pr-2"); err != nil || pv.Removed() || pv.HeadSHA != openedHead {
				t.Errorf("reopened preview %+v, %v", pv, err)
			}
		}},
		{"closed again", "pull_request", githubtest.Payload(t, "pull_request.closed.json", nil),
			map[string]any{"status": "ok", "message": "Preview for PR #2 removed"}, nil},
		// A pull request is opened once: an opened delivery after its close is a replay.
		{"opened replayed after the close", "pull_request", opened, closed, deployments(4)},
		{"an old reopened replayed", "pull_request", reopened(syncHead), stale, func(t *testing.T) {
			deployments(4)(t)
			if pv, err := ta.Store.Preview(p.ID, "pr-2"); err != nil || !pv.Removed() {
				t.Errorf("preview %+v, %v: a replay brought it back", pv, err)
			}
		}},
	})
}

// TestDeploymentEventBuildsForProduction: a deployment made on GitHub for production of a commit
// only a preview has built builds it for production, and leaves the preview alone.
func TestDeploymentEventBuildsForProduction(t *testing.T) {
	ta, p := previewAgent(t, api.TriggerSettings{})
	runPreviewRows(t, ta, p, []previewRow{{"opened", "pull_request", githubtest.Payload(t, "pull_request.opened.json", nil),
		map[string]any{"status": "success", "message": "Preview deployment triggered for PR #2", "deployment_id": float64(1),
			"commit_sha": openedHead, "branch": "feature/landing-page"}, nil}})
	if live, err := ta.Store.Complete(1); err != nil || !live {
		t.Fatalf("completing the preview's build: %v %v", live, err)
	}
	// The preview's files are kept, so that only the environment tells it from a production build.
	dir := ta.Domain().SiteDir(p.Slug, 1)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("preview"), 0o644); err != nil {
		t.Fatal(err)
	}
	runPreviewRows(t, ta, p, []previewRow{{"deployment", "deployment", deploymentPayload(t, 77, openedHead, "production", false),
		map[string]any{"status": "success", "message": "Deployment triggered for commit 97a6945", "deployment_id": float64(2),
			"commit_sha": openedHead, "branch": "main"},
		func(t *testing.T) {
			if d := storedDeployment(t, ta, 2); d.Environment != store.EnvironmentProduction || d.Alias != "" ||
				d.Trigger != store.TriggerGitHubDeployment || d.Status != store.StatusQueued {
				t.Errorf("production deployment %+v", d)
			}
			if pv, err := ta.Store.Preview(p.ID, "pr-2"); err != nil || pv.ActiveDeploymentID != 1 {
				t.Errorf("preview %+v, %v", pv, err)
			}
		}}})
}

// TestPreviewsOff: pull requests deploy nothing when pr_previews is off, and forks nothing when
// fork_previews is off; with it on, a fork's head builds at once.
func TestPreviewsOff(t *testing.T) {
	t.Parallel()
	off, on, noForks := false, "on", "off"
	ta, p := previewAgent(t, api.TriggerSettings{PRPreviews: &off})
	runPreviewRows(t, ta, p, []previewRow{{"pr_previews off", "pull_request", githubtest.Payload(t, "pull_request.opened.json", nil),
		map[string]any{"status": "ignored", "message": "Pull request previews are off for this project"}, nil}})

	ta, p = previewAgent(t, api.TriggerSettings{ForkPreviews: &noForks})
	runPreviewRows(t, ta, p, []previewRow{{"fork_previews off", "pull_request", githubtest.Payload(t, "pull_request.opened.fork.json", nil),
		map[string]any{"status": "ignored", "message": "PR #7 is from a fork, and previews of forks are off for this project"}, nil}})

	ta, p = previewAgent(t, api.TriggerSettings{ForkPreviews: &on})
	runPreviewRows(t, ta, p, []previewRow{
		{"fork_previews on", "pull_request", githubtest.Payload(t, "pull_request.opened.fork.json", nil),
			map[string]any{"status": "success", "message": "Preview deployment triggered for PR #7", "deployment_id": float64(1),
				"commit_sha": forkHead, "branch": "patch-1"},
			func(t *testing.T) {
				if d := storedDeployment(t, ta, 1); !d.Fork {
					t.Errorf("a fork's deployment is not marked as one: %+v", d)
				}
			}},
		{"no label needed", "pull_request", githubtest.Payload(t, "pull_request.labeled.fork.json", nil),
			map[string]any{"status": "ignored", "message": "Label 'miaobu:preview' ignored: PR #7 needs no approval"}, nil},
	})
}

// TestBranchPreviewsAndSkipRules drives the push rows of contract section 7 with GitHub's payloads:
// preview branches by glob with an exclusion, the deletion of a preview branch, each skip marker,
// and watch paths with a normal push touching only excluded paths and a forced push.
func TestBranchPreviewsAndSkipRules(t *testing.T) {
	t.Parallel()
	branches, watch := []string{"feature/**", "!feature/wip-*"}, []string{"**", "!docs/**", "!**/*.md"}
	ta, p := previewAgent(t, api.TriggerSettings{PreviewBranches: &branches, WatchPaths: &watch})
	// The live production commit is where the docs-only push starts.
	live := &store.Deployment{ProjectID: p.ID, CommitSHA: "6e1a1ec6800b116663c85c508949bd9ef446ca13", Branch: "main", Trigger: store.TriggerManual}
	if err := ta.Store.CreateDeployment(live); err != nil {
		t.Fatal(err)
	}
	if _, err := ta.Store.Complete(live.ID); err != nil {
		t.Fatal(err)
	}
	feature := func(ref string) []byte {
		return githubtest.Payload(t, "push.feature-branch.json", func(doc map[string]any) { doc["ref"] = ref })
	}
	rows := []previewRow{
		{"a branch matching preview_branches", "push", feature("refs/heads/feature/landing-page"),
			map[string]any{"status": "success", "message": "Deployment triggered for commit 56afdfd", "deployment_id": float64(2),
				"commit_sha": "56afdfdc2a2fcf3988f39d9639d55eeec75185c7", "commit_message": "Landing page: hero section\n\nAdds the hero and its image.",
				"branch": "feature/landing-page"},
			func(t *testing.T) {
				if d := storedDeployment(t, ta, 2); d.Environment != "preview" || d.Alias != "git-feature-landing-page" || d.Trigger != "webhook" {
					t.Errorf("deployment %+v", d)
				}
			}},
		{"a branch the exclusion removes", "push", feature("refs/heads/feature/wip-landing-page"),
			map[string]any{"status": "ignored", "message": "Push to 'feature/wip-landing-page' ignored (only 'main' triggers deployment)"}, nil},
		{"a branch matching no glob", "push", feature("refs/heads/release/1.0"),
			map[string]any{"status": "ignored", "message": "Push to 'release/1.0' ignored (only 'main' triggers deployment)"}, nil},
		{"the preview branch deleted", "push", feature("refs/heads/feature/landing-page"), nil, nil},
		{"a normal push touching only excluded paths", "push", githubtest.Payload(t, "push.docs-only.json", nil),
			map[string]any{"status": "ignored", "message": "Skipped: no changed file matches watch_paths"}, nil},
		{"a forced push of the same kind", "push", githubtest.Payload(t, "push.forced.json", nil),
			map[string]any{"status": "success", "message": "Deployment triggered for commit 3e313bc", "deployment_id": float64(3),
				"commit_sha": "3e313bce77b8e11251a7c54d70dbba375c68d7c2", "commit_message": "docs: rewrite the guide", "branch": "main"}, nil},
	}
	// The deletion: GitHub's payload of a deleted branch has after all zeros, deleted and no head commit.
	rows[3].body = githubtest.Payload(t, "push.feature-branch.json", func(doc map[string]any) {
		doc["after"], doc["deleted"], doc["head_commit"], doc["commits"] = "0000000000000000000000000000000000000000", true, nil, []any{}
	})
	rows[3].want = map[string]any{"status": "ok", "message": "Preview for branch 'feature/landing-page' removed"}
	for _, marker := range []string{"[skip ci]", "[ci skip]", "[no ci]", "[skip miaobu]", "[miaobu skip]", "[SKIP CI]"} {
		rows = append(rows, previewRow{"skip marker " + marker, "push", githubtest.Payload(t, "push.skip-ci.json", func(doc map[string]any) {
			doc["head_commit"].(map[string]any)["message"] = "Bump the copyright year " + marker
		}), map[string]any{"status": "ignored", "message": "Skipped: commit message contains " + marker}, nil})
	}
	runPreviewRows(t, ta, p, rows)
	if n := deploymentCount(t, ta); n != 3 {
		t.Errorf("%d deployments, want 3", n)
	}
	var previews []api.Preview
	ta.Call(t, "GET", api.PreviewsPath("site"), nil, 0, &previews)
	if len(previews) != 1 || previews[0].Alias != "git-feature-landing-page" || previews[0].RemovedAt == nil ||
		previews[0].URL != "http://site--git-feature-landing-page.localhost:"+port(ta)+"/" {
		t.Errorf("previews %+v", previews)
	}
}

// TestRemovedPreviewFilesGoAfterRetention: a removed preview's files and logs stay until
// retention.previews has passed, then go with its records; production's stay.
func TestRemovedPreviewFilesGoAfterRetention(t *testing.T) {
	t.Parallel()
	ta, p := previewAgent(t, api.TriggerSettings{})
	runPreviewRows(t, ta, p, []previewRow{{"opened", "pull_request", githubtest.Payload(t, "pull_request.opened.json", nil),
		map[string]any{"status": "success", "message": "Preview deployment triggered for PR #2", "deployment_id": float64(1),
			"commit_sha": openedHead, "branch": "feature/landing-page"}, nil}})
	prod := &store.Deployment{ProjectID: p.ID, CommitSHA: syncHead, Branch: "main", Trigger: store.TriggerManual}
	if err := ta.Store.CreateDeployment(prod); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, id := range []int64{1, prod.ID} {
		if _, err := ta.Store.Complete(id); err != nil {
			t.Fatal(err)
		}
		dir := ta.Domain().SiteDir(p.Slug, id)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.Join(dir, "index.html"), ta.Domain().LogPath(id))
		for _, f := range files[len(files)-2:] {
			if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	var answer api.WebhookAnswer
	if code := ta.Call(t, "DELETE", api.PreviewPath("site", "pr-2"), nil, 0, &answer); code != http.StatusOK || answer.Message != "Preview pr-2 removed" {
		t.Fatalf("remove: %d %+v", code, answer)
	}
	exists := func(f string) bool { _, err := os.Stat(f); return err == nil }
	if err := ta.Domain().PurgeRemovedPreviews(time.Now().Add(ta.Config.Retention.Previews - time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !exists(f) {
			t.Fatalf("%s is gone before retention.previews has passed", f)
		}
	}
	if err := ta.Domain().PurgeRemovedPreviews(time.Now().Add(ta.Config.Retention.Previews + time.Minute)); err != nil {
		t.Fatal(err)
	}
	if exists(files[0]) || exists(files[1]) || !exists(files[2]) || !exists(files[3]) {
		t.Errorf("after retention.previews: preview's %v %v (want gone), production's %v %v (want kept)",
			exists(files[0]), exists(files[1]), exists(files[2]), exists(files[3]))
	}
	if _, err := ta.Store.Deployment(1); err == nil {
		t.Error("the purged preview's deployment is still recorded")
	}
}
