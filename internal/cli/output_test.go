package cli

import (
	"bytes"
	"testing"

	"github.com/miaobu/miaobu/internal/api"
)

func TestCleanStringsReachesEveryField(t *testing.T) {
	repo := "acme/\x1b[31msite"
	st := api.Status{Version: "v1\x1b]0;x\x07", Projects: []api.ProjectStatus{{Slug: "s\x07", Live: &api.Deployment{
		CommitMessage: "Fix \x1b[31mred\x1b[0m\n\x1b]0;pwned\x07body", CommitAuthor: "Mona\u202e"}}}}
	p := api.Project{Name: "n\x1b[2J", Repo: &repo}
	res := api.ImportResult{Warnings: []string{"w\x1b[1A"}, Deployment: &api.Deployment{Branch: "main\r"}}
	cleanStrings(&st)
	cleanStrings(&p)
	cleanStrings(&res)
	if st.Version != "v1" || st.Projects[0].Slug != "s" || st.Projects[0].Live.CommitMessage != "Fix red\nbody" ||
		st.Projects[0].Live.CommitAuthor != "Mona" || p.Name != "n" || *p.Repo != "acme/site" ||
		res.Warnings[0] != "w" || res.Deployment.Branch != "main" {
		t.Fatalf("not cleaned: %+v %+v %+v %q %+v", st, *st.Projects[0].Live, p, *p.Repo, res)
	}
}

func TestLogWriterKeepsColoursOnlyWhenAsked(t *testing.T) {
	log := "==> Building\n\x1b[32m✓ built\x1b[39m\x1b]0;pwned\x07 in 1s\x1b[2K\n"
	for _, tc := range []struct {
		keepColour bool
		want       string
	}{
		{true, "==> Building\n\x1b[32m✓ built\x1b[39m in 1s\n"},
		{false, "==> Building\n✓ built in 1s\n"},
	} {
		var out bytes.Buffer
		w := newLogWriter(&out, tc.keepColour)
		// Byte by byte, as a followed log may arrive.
		for i := range len(log) {
			if _, err := w.Write([]byte{log[i]}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if out.String() != tc.want {
			t.Errorf("keepColour %v: %q, want %q", tc.keepColour, out.String(), tc.want)
		}
	}
}

func TestTableCellsStayInTheirColumns(t *testing.T) {
	var out bytes.Buffer
	tm := newTerminal(&out)
	if err := tm.table(&out, []string{"A", "B"}, [][]string{{"x\ty", "line\nbreak"}}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "x y\tline break\n" {
		t.Fatalf("%q", out.String())
	}
}
