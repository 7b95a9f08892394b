package cli

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/store"
)

// complete runs the CLI's hidden __complete command as a shell does and returns the offered
// words, their descriptions and the directive line.
func (c *agentCLI) complete(t *testing.T, args ...string) (words []string, descriptions map[string]string, directive string) {
	t.Helper()
	code, out, errOut := c.run(append([]string{"__complete"}, args...)...)
	if code != 0 {
		t.Fatalf("__complete %q: exit %d, stderr %q", args, code, errOut)
	}
	descriptions = map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if strings.HasPrefix(line, ":") {
			directive = line
			continue
		}
		word, description, _ := strings.Cut(line, "\t")
		words = append(words, word)
		descriptions[word] = description
	}
	return words, descriptions, directive
}

// noFiles is the directive line of cobra.ShellCompDirectiveNoFileComp.
const noFiles = ":4"

// storeDeployment records a deployment of project with a made-up commit, and runs it to deployed
// (making it live) when deployed is set.
func storeDeployment(t *testing.T, st *store.Store, projectID int64, commit string, deployed bool) {
	t.Helper()
	d := &store.Deployment{ProjectID: projectID, CommitSHA: strings.Repeat(commit, 40), Branch: "main", Trigger: api.TriggerManual}
	if err := st.CreateDeployment(d); err != nil {
		t.Fatal(err)
	}
	if !deployed {
		return
	}
	if _, err := st.ClaimNext(func(int64) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Complete(d.ID); err != nil {
		t.Fatal(err)
	}
}

func TestCompletionAsksTheAgent(t *testing.T) {
	t.Parallel()
	cli := startAgentCLI(t, nil, agenttest.Options{APIOnly: true})
	run, st := cli.run, cli.Store
	repo := gitRepo(t, "main")
	for _, name := range []string{"Docs Site", "blog"} {
		if code, _, errOut := run("project", "add", name, "--repo-url", repo); code != 0 {
			t.Fatalf("project add: %s", errOut)
		}
	}
	storeDeployment(t, st, 1, "a", true)  // #1: deployed, no longer live
	storeDeployment(t, st, 1, "b", true)  // #2: live
	storeDeployment(t, st, 2, "c", false) // #3: queued

	projects := []string{"blog", "docs-site"}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"project", "show", ""}, projects},
		{[]string{"project", "set", ""}, projects},
		{[]string{"project", "delete", ""}, projects},
		{[]string{"env", "set", ""}, projects},
		{[]string{"env", "unset", ""}, projects},
		{[]string{"env", "list", ""}, projects},
		{[]string{"webhook", "setup", ""}, projects},
		{[]string{"webhook", "delete", ""}, projects},
		{[]string{"webhook", "rotate", ""}, projects},
		{[]string{"webhook", "deliveries", ""}, projects},
		{[]string{"deploy", ""}, projects},
		{[]string{"deployment", "list", ""}, projects},
		{[]string{"rollback", ""}, projects},
		{[]string{"project", "show", "do"}, []string{"docs-site"}},
		{[]string{"project", "show", "docs-site", ""}, nil},
		{[]string{"env", "set", "docs-site", ""}, nil},
		{[]string{"deployment", "show", ""}, []string{"3", "2", "1"}},
		{[]string{"deployment", "logs", ""}, []string{"3", "2", "1"}},
		{[]string{"deployment", "show", "2"}, []string{"2"}},
		{[]string{"deployment", "cancel", ""}, []string{"3"}},
		{[]string{"rollback", "docs-site", ""}, []string{"1"}},
		{[]string{"rollback", "blog", ""}, nil},
	} {
		words, _, directive := cli.complete(t, tc.args...)
		slices.Sort(words)
		want := slices.Clone(tc.want)
		slices.Sort(want)
		if !slices.Equal(words, want) || directive != noFiles {
			t.Errorf("%q: completions %q %s, want %q %s", tc.args, words, directive, want, noFiles)
		}
	}
	_, descriptions, _ := cli.complete(t, "deployment", "show", "")
	if got := descriptions["1"]; got != "docs-site deployed aaaaaaa main" {
		t.Errorf("description of deployment 1: %q", got)
	}
	if _, descriptions, _ = cli.complete(t, "deploy", ""); descriptions["docs-site"] != "Docs Site" {
		t.Errorf("description of project docs-site: %q", descriptions["docs-site"])
	}
}

func TestCompletionWithoutAgentIsQuiet(t *testing.T) {
	noAgentEnv(t)
	for _, args := range [][]string{{"project", "show", ""}, {"deployment", "logs", ""}, {"rollback", "x", ""}} {
		code, out, errOut := run(append([]string{"__complete"}, args...)...)
		if code != 0 || out != noFiles+"\n" || strings.Contains(errOut, "error") {
			t.Errorf("%q with no agent: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}

// TestEveryProjectOrDeploymentArgumentCompletes keeps new commands honest: an argument that names
// a project or a deployment completes from the agent.
func TestEveryProjectOrDeploymentArgumentCompletes(t *testing.T) {
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
		takesDeployment := strings.Contains(cmd.Use, "DEPLOYMENT") ||
			(cmd.HasParent() && cmd.Parent().Name() == "deployment" && strings.Contains(cmd.Use, " ID"))
		if (strings.Contains(cmd.Use, "PROJECT") || takesDeployment) && cmd.ValidArgsFunction == nil {
			t.Errorf("%s (%s) does not complete its argument", cmd.CommandPath(), cmd.Use)
		}
	}
	walk(newCmdRoot(newFactory(io.Discard, io.Discard)))
}

func TestPreviewCompletion(t *testing.T) {
	t.Parallel()
	cli := startAgentCLI(t, nil, agenttest.Options{APIOnly: true})
	run, st := cli.run, cli.Store
	if code, _, errOut := run("project", "add", "blog", "--repo-url", gitRepo(t, "main")); code != 0 {
		t.Fatalf("project add: %s", errOut)
	}
	for _, p := range []store.Push{
		{ProjectID: 1, CommitSHA: strings.Repeat("a", 40), Branch: "feature", Alias: "pr-3", PullRequest: 3},
		{ProjectID: 1, CommitSHA: strings.Repeat("b", 40), Branch: "patch-1", Alias: "pr-7", PullRequest: 7, Fork: true, Hold: true},
		{ProjectID: 1, CommitSHA: strings.Repeat("c", 40), Branch: "x", Alias: "git-x"},
	} {
		if _, err := st.RecordPush(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := st.RemovePreview(1, "git-x", "branch deleted"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"preview", "list", ""}, []string{"blog"}},
		{[]string{"preview", "approve", ""}, []string{"blog"}},
		{[]string{"preview", "approve", "blog", ""}, []string{"7"}},
		{[]string{"preview", "remove", "blog", ""}, []string{"pr-3", "pr-7"}},
		{[]string{"preview", "remove", "blog", "pr-7", ""}, nil},
	} {
		words, _, directive := cli.complete(t, tc.args...)
		slices.Sort(words)
		if !slices.Equal(words, tc.want) || directive != noFiles {
			t.Errorf("%q: completions %q %s, want %q %s", tc.args, words, directive, tc.want, noFiles)
		}
	}
	if _, descriptions, _ := cli.complete(t, "preview", "approve", "blog", ""); descriptions["7"] != "PR #7 (patch-1) from a fork" {
		t.Errorf("description of PR 7: %q", descriptions["7"])
	}
}
