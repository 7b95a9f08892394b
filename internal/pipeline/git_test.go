package pipeline

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/miaobu/miaobu/internal/gittest"
)

func TestFailedCloneSaysWhatGitSaid(t *testing.T) {
	for _, tc := range []struct {
		name string
		job  func(t *testing.T, data string) Job
		want string
	}{
		{"missing commit", func(t *testing.T, data string) Job {
			r := gittest.New(t)
			r.Commit("first", map[string]string{"index.html": "x"})
			return testJob(data, r, "1111111111111111111111111111111111111111", 1)
		}, "commit 1111111 is not in the repository"},
		{"deleted repository", func(t *testing.T, data string) Job {
			r := gittest.New(t)
			job := testJob(data, r, r.Commit("first", map[string]string{"index.html": "x"}), 1)
			if err := os.RemoveAll(r.Dir); err != nil {
				t.Fatal(err)
			}
			return job
		}, "repository not found"},
		{"missing branch and a server that refuses commits by id", func(t *testing.T, data string) Job {
			r := gittest.New(t)
			r.Commit("first", map[string]string{"index.html": "x"})
			job := testJob(data, r, "2222222222222222222222222222222222222222", 1)
			job.Branch = "gone"
			return job
		}, "neither is branch gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, data := testBuilder(t)
			_, log, err := build(t, context.Background(), b, data, tc.job(t, data))
			if err == nil {
				t.Fatal("the build succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "context canceled") {
				t.Errorf("err = %q, want it to say %q\n%s", err, tc.want, log)
			}
		})
	}
}

func TestCloneTimeoutIsReportedAsSuch(t *testing.T) {
	b, data := testBuilder(t)
	b.CloneTimeout = time.Nanosecond
	r := gittest.New(t)
	_, log, err := build(t, context.Background(), b, data, testJob(data, r, r.Commit("first", map[string]string{"index.html": "x"}), 1))
	if err == nil || err.Error() != "clone timed out after 1ns" {
		t.Errorf("err = %v, want the clone timeout\n%s", err, log)
	}
}

func TestGitComplaintsInWords(t *testing.T) {
	for _, tc := range []struct {
		stderr, want string
		missing      bool
	}{
		{"fatal: remote error: upload-pack: not our ref 1111111111111111111111111111111111111111\n", "not our ref 1111111111111111111111111111111111111111", true},
		{"fatal: reference is not a tree: 1111111111111111111111111111111111111111\n", "reference is not a tree: 1111111111111111111111111111111111111111", true},
		{"fatal: couldn't find remote ref refs/heads/gone\n", "couldn't find remote ref refs/heads/gone", true},
		{"fatal: '/srv/gone' does not appear to be a git repository\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.\n", "repository not found", false},
		{"remote: Repository not found.\nfatal: repository 'https://github.com/o/r/' not found\n", "repository not found", false},
		{"fatal: could not read Username for 'https://github.com': terminal prompts disabled\n", "authentication failed: could not read Username for 'https://github.com': terminal prompts disabled", false},
		{"git@github.com: Permission denied (publickey).\nfatal: Could not read from remote repository.\n", "authentication failed: git@github.com: Permission denied (publickey).", false},
		{"fatal: unable to access 'https://127.0.0.1:1/x/y/': Failed to connect to 127.0.0.1 port 1 after 0 ms: Couldn't connect to server\n", "cannot reach the repository: Failed to connect to 127.0.0.1 port 1 after 0 ms: Couldn't connect to server", false},
		{"error: something odd\nfatal: and then this\n", "something odd; and then this", false},
		{"", "", false},
	} {
		got := explainGit(tc.stderr)
		if got.summary != tc.want || got.missing != tc.missing {
			t.Errorf("explainGit(%q) = %q (missing %v), want %q (missing %v)", tc.stderr, got.summary, got.missing, tc.want, tc.missing)
		}
	}
}

func FuzzExplainGit(f *testing.F) {
	for _, s := range []string{"fatal: reference is not a tree: abc\n", "remote: Repository not found.\nfatal: repository 'x' not found\n",
		"fatal: unable to access 'x': y\n", "hint: a\nerror: b\r\n", strings.Repeat("fatal: x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, stderr string) {
		got := explainGit(stderr)
		if strings.ContainsAny(got.summary, "\n\r") {
			t.Errorf("summary of several lines: %q", got.summary)
		}
		if utf8.RuneCountInString(got.summary) > maxGitSummary+1 {
			t.Errorf("summary of %d runes", utf8.RuneCountInString(got.summary))
		}
		if strings.TrimSpace(stderr) != "" && got.summary == "" {
			t.Errorf("git said %q and the summary is empty", stderr)
		}
	})
}
