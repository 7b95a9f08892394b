package pipeline

import (
	"context"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/gittest"
)

func TestLsRemote(t *testing.T) {
	b, _ := testBuilder(t)
	r := gittest.New(t)
	main := r.Commit("first", map[string]string{"index.html": "x"})
	r.Git("branch", "topic")
	second := r.Commit("second", map[string]string{"index.html": "y"})
	heads, err := b.LsRemote(context.Background(), "file://"+r.Dir, false, "refs/heads/main", "refs/heads/topic", "refs/heads/gone")
	if err != nil {
		t.Fatal(err)
	}
	if len(heads) != 2 || heads["refs/heads/main"] != second || heads["refs/heads/topic"] != main {
		t.Fatalf("heads = %v, want main at %s and topic at %s", heads, second, main)
	}
}

func TestCommitInfoOfBranchHead(t *testing.T) {
	b, _ := testBuilder(t)
	r := gittest.New(t)
	first := r.Commit("Fix the footer\n\n[skip ci]", map[string]string{"index.html": "x"})
	message, author, err := b.CommitInfo(context.Background(), "file://"+r.Dir, false, "main", first)
	if err != nil || message != "Fix the footer\n\n[skip ci]" || author != "Ada" {
		t.Fatalf("CommitInfo = %q, %q, %v", message, author, err)
	}
	r.Commit("second", map[string]string{"index.html": "y"})
	r.Git("reset", "--hard", "--quiet", "HEAD~1")
	r.Git("commit", "--amend", "--quiet", "-m", "rewritten")
	if _, _, err := b.CommitInfo(context.Background(), "file://"+r.Dir, false, "main", first); err == nil || !strings.Contains(err.Error(), "has moved on") {
		t.Fatalf("err = %v for a head that is no longer the branch's", err)
	}
}

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ url, message, want string }{
		{"https://deploy:s3cret@git.example.com/x.git", "fatal: unable to access 'https://deploy:s3cret@git.example.com/x.git/': 403",
			"fatal: unable to access 'https://***@git.example.com/x.git/': 403"},
		{"https://ghp_token123@github.com/o/r.git", "could not read from https://ghp_token123@github.com/o/r.git",
			"could not read from https://***@github.com/o/r.git"},
		{"https://git.example.com/x.git", "fatal: repository 'https://git.example.com/x.git/' not found",
			"fatal: repository 'https://git.example.com/x.git/' not found"},
		{"git@github.com:o/r.git", "git@github.com: Permission denied (publickey).", "git@github.com: Permission denied (publickey)."},
	} {
		if got := redactURL(tc.url)(tc.message); got != tc.want {
			t.Errorf("redactURL(%q)(%q) = %q, want %q", tc.url, tc.message, got, tc.want)
		}
	}
}

func TestChangedFiles(t *testing.T) {
	b, _ := testBuilder(t)
	r := gittest.New(t)
	first := r.Commit("first", map[string]string{"index.html": "x", "docs/a.md": "a"})
	r.Commit("second", map[string]string{"docs/a.md": "b"})
	third := r.Commit("third", map[string]string{"src/main.js": "c"})
	files, err := b.ChangedFiles(context.Background(), "file://"+r.Dir, false, first, third)
	if err != nil || strings.Join(files, " ") != "docs/a.md src/main.js" {
		t.Fatalf("ChangedFiles = %q, %v", files, err)
	}
	if _, err := b.ChangedFiles(context.Background(), "file://"+r.Dir, false, strings.Repeat("0", 40), third); err == nil {
		t.Error("no error for a commit the remote does not have")
	}
}
