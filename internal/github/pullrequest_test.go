package github

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/github/githubtest"
)

// readFixture returns a payload of githubtest, or of the agent's real GitHub payloads when name
// starts with "real/".
func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	real, ok := strings.CutPrefix(name, "real/")
	if !ok {
		return githubtest.Payload(t, name, nil)
	}
	body, err := os.ReadFile(filepath.Join("..", "agent", "testdata", "github-payloads", real))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func TestParsePullRequestFixtures(t *testing.T) {
	const (
		same    = "Codertocat/Hello-World"
		fork    = "octocat/Hello-World"
		landing = "feature/landing-page"
	)
	for _, tc := range []struct {
		file string
		want PullRequest
		fork bool
	}{
		{"pull_request.opened.json", PullRequest{Action: "opened", Number: 2, Title: "Landing page: hero section", Author: "Codertocat",
			HeadRef: landing, HeadRepo: same, BaseRepo: same, BaseRef: "main"}, false},
		{"pull_request.synchronize.json", PullRequest{Action: "synchronize", Number: 2, Title: "Landing page: hero section", Author: "Codertocat",
			HeadRef: landing, HeadRepo: same, BaseRepo: same, BaseRef: "main"}, false},
		{"pull_request.reopened.json", PullRequest{Action: "reopened", Number: 2, Title: "Landing page: hero section", Author: "Codertocat",
			HeadRef: landing, HeadRepo: same, BaseRepo: same, BaseRef: "main"}, false},
		{"pull_request.closed.json", PullRequest{Action: "closed", Number: 2, Title: "Landing page: hero section", Author: "Codertocat",
			HeadRef: landing, HeadRepo: same, BaseRepo: same, BaseRef: "main", Merged: true}, false},
		{"pull_request.opened.fork.json", PullRequest{Action: "opened", Number: 7, Title: "Fix typo in the footer", Author: "octocat",
			HeadRef: "patch-1", HeadRepo: fork, BaseRepo: same, BaseRef: "main"}, true},
		{"pull_request.labeled.fork.json", PullRequest{Action: "labeled", Number: 7, Title: "Fix typo in the footer", Author: "octocat",
			HeadRef: "patch-1", HeadRepo: fork, BaseRepo: same, BaseRef: "main", Label: "miaobu:preview"}, true},
		{"pull_request.synchronize.deleted-fork.json", PullRequest{Action: "synchronize", Number: 9, Title: "Dark mode", Author: "octocat",
			HeadRef: "dark-mode", BaseRepo: same, BaseRef: "main"}, true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			body := readFixture(t, tc.file)
			p, err := ParsePullRequest(body)
			if err != nil {
				t.Fatal(err)
			}
			// The head SHA is checked against the payload's own, read with encoding/json.
			var doc struct {
				PullRequest struct {
					Head struct {
						SHA string `json:"sha"`
					} `json:"head"`
				} `json:"pull_request"`
			}
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatal(err)
			}
			want := tc.want
			want.HeadSHA = doc.PullRequest.Head.SHA
			if !ValidSHA(p.HeadSHA) || *p != want {
				t.Errorf("parsed\n%+v, want\n%+v", *p, want)
			}
			if p.IsFork() != tc.fork {
				t.Errorf("IsFork = %v, want %v", p.IsFork(), tc.fork)
			}
		})
	}
}

func TestParsePullRequestNumber(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"top level", `{"action":"opened","number":5,"pull_request":{"number":6,"head":{},"base":{}}}`, 5},
		{"inside only", `{"action":"opened","pull_request":{"number":6,"head":{},"base":{}}}`, 6},
		{"null at top", `{"action":"opened","number":null,"pull_request":{"number":6,"head":{},"base":{}}}`, 6},
	} {
		p, err := ParsePullRequest([]byte(tc.body))
		if err != nil || p.Number != tc.want {
			t.Errorf("%s: %+v, %v; want number %d", tc.name, p, err, tc.want)
		}
	}
}

func TestParsePullRequestRefusesWrongShapes(t *testing.T) {
	const pr = `"pull_request":{"number":1,"head":{"sha":"a","repo":null},"base":{"repo":{"full_name":"o/r"}}}`
	for _, body := range []string{
		`{"number":1,` + pr + `}`, // no action
		`{"action":"","number":1,` + pr + `}`,
		`{"action":1,"number":1,` + pr + `}`,
		`{"action":"opened","number":0,` + pr + `}`,
		`{"action":"opened","number":-3,` + pr + `}`,
		`{"action":"opened","number":1.5,` + pr + `}`,
		`{"action":"opened","number":"1",` + pr + `}`,
		`{"action":"opened","number":99999999999999999999,` + pr + `}`,
		`{"action":"opened","number":1}`,
		`{"action":"opened","number":1,"pull_request":null}`,
		`{"action":"opened","number":1,"pull_request":[]}`,
		`{"action":"opened","number":1,"pull_request":{"head":{"sha":"a"}}}`,
		`{"action":"opened","number":1,"pull_request":{"base":{}}}`,
		`{"action":"opened","number":1,"pull_request":{"head":"a","base":{}}}`,
		`{"action":"opened","number":1,"pull_request":{"head":{"sha":1},"base":{}}}`,
		`{"action":"opened","number":1,"pull_request":{"head":{"repo":"o/r"},"base":{}}}`,
		`{"action":"opened","number":1,"pull_request":{"head":{"repo":{"full_name":2}},"base":{}}}`,
		`{"action":"opened","number":1,"pull_request":{"head":{},"base":{},"merged":"yes"}}`,
		`{"action":"opened","number":1,"pull_request":{"head":{},"base":{},"user":"octocat"}}`,
		`{"action":"labeled","number":1,"label":"miaobu:preview","pull_request":{"head":{},"base":{}}}`,
		`{"action":"labeled","number":1,"label":{"name":true},"pull_request":{"head":{},"base":{}}}`,
		`[]`, `null`, `{"action":"opened"`, "{\"action\":\"opened\x01\",\"number\":1," + pr + "}",
	} {
		if p, err := ParsePullRequest([]byte(body)); err == nil {
			t.Errorf("accepted %s as %+v", body, p)
		}
	}
}

// FuzzParsePullRequestFields builds pull_request payloads with encoding/json and checks that
// ParsePullRequest reads back exactly the fields that were written, whatever their text.
func FuzzParsePullRequestFields(f *testing.F) {
	f.Add("opened", 12, "abc", "feature/x", "o/r", "o/r", "", false, true, "Title", "me")
	f.Add("labeled", 7, strings.Repeat("d", 40), "patch-1", "fork/r", "o/r", "miaobu:preview", false, true, "", "")
	f.Add("closed", 1, "", "", "", "o/r", "", true, false, "\x00\u2028", "\xff")
	f.Fuzz(func(t *testing.T, action string, number int, sha, ref, headRepo, baseRepo, label string, merged, hasHeadRepo bool, title, login string) {
		var head any
		if hasHeadRepo {
			head = map[string]any{"full_name": headRepo, "fork": true, "name": ref}
		}
		payload := map[string]any{"action": action, "number": number,
			"pull_request": map[string]any{"number": number + 1, "title": title, "user": map[string]any{"login": login, "id": 1},
				"merged": merged, "state": "open",
				"head": map[string]any{"sha": sha, "ref": ref, "label": "x:" + ref, "repo": head},
				"base": map[string]any{"sha": strings.Repeat("0", 40), "ref": "main", "repo": map[string]any{"full_name": baseRepo}}},
			"repository": map[string]any{"full_name": baseRepo}}
		if label != "" {
			payload["label"] = map[string]any{"name": label, "color": "0e8a16"}
		}
		body, err := json.Marshal(payload)
		if err != nil {
			t.Fatal(err)
		}
		// encoding/json replaces invalid UTF-8 on the way out, so the expected values are read back.
		var want struct {
			Action      string `json:"action"`
			PullRequest struct {
				Title string `json:"title"`
				User  struct {
					Login string `json:"login"`
				} `json:"user"`
				Head struct {
					SHA  string `json:"sha"`
					Ref  string `json:"ref"`
					Repo *struct {
						FullName string `json:"full_name"`
					} `json:"repo"`
				} `json:"head"`
				Base struct {
					Repo struct {
						FullName string `json:"full_name"`
					} `json:"repo"`
				} `json:"base"`
			} `json:"pull_request"`
			Label struct {
				Name string `json:"name"`
			} `json:"label"`
		}
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatal(err)
		}
		p, err := ParsePullRequest(body)
		if want.Action == "" || number <= 0 {
			if err == nil {
				t.Fatalf("accepted %s", body)
			}
			return
		}
		if err != nil {
			t.Fatalf("refused %s: %v", body, err)
		}
		wantHeadRepo := ""
		if want.PullRequest.Head.Repo != nil {
			wantHeadRepo = want.PullRequest.Head.Repo.FullName
		}
		got := PullRequest{Action: want.Action, Number: number, Title: want.PullRequest.Title, Author: want.PullRequest.User.Login,
			HeadSHA: want.PullRequest.Head.SHA, HeadRef: want.PullRequest.Head.Ref, HeadRepo: wantHeadRepo,
			BaseRepo: want.PullRequest.Base.Repo.FullName, BaseRef: "main", Label: want.Label.Name, Merged: merged}
		if *p != got {
			t.Fatalf("read\n%+v, want\n%+v from %s", *p, got, body)
		}
		if p.IsFork() != (!hasHeadRepo || wantHeadRepo != want.PullRequest.Base.Repo.FullName) {
			t.Fatalf("IsFork = %v for %s", p.IsFork(), body)
		}
	})
}

func TestParsePushChanges(t *testing.T) {
	for _, tc := range []struct {
		file, branch, before string
		forced               bool
		commits              int
		files                []string
	}{
		{"push.docs-only.json", "main", "", false, 2, []string{"README.md", "docs/img/preview.png", "docs/old.md", "docs/previews.md"}},
		{"push.forced.json", "main", "", true, 1, []string{"docs/guide.md"}},
		{"push.feature-branch.json", "feature/landing-page", "", false, 1, []string{"public/hero.webp", "src/App.tsx", "src/Hero.tsx"}},
		{"real/push.with-new-branch.payload.json", "master", strings.Repeat("0", 40), false, 1, []string{"README.md"}},
		{"real/push.payload.json", "", "6113728f27ae82c7b1a177c8d03f9e96e0adf246", false, 0, nil},
	} {
		t.Run(tc.file, func(t *testing.T) {
			body := readFixture(t, tc.file)
			p, err := ParsePush(body)
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Before string `json:"before"`
			}
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatal(err)
			}
			if tc.before == "" {
				tc.before = doc.Before
			}
			branch, _ := p.Branch()
			if branch != tc.branch || p.Before != tc.before || !ValidSHA(p.Before) || p.Forced != tc.forced ||
				p.Commits != tc.commits || !slices.Equal(p.Files, tc.files) {
				t.Errorf("parsed branch %q before %q forced %v commits %d files %q", branch, p.Before, p.Forced, p.Commits, p.Files)
			}
		})
	}
}
