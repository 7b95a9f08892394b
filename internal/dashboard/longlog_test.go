package dashboard_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/gittest"
)

func TestDeploymentPageShowsTheEndOfALongLog(t *testing.T) {
	t.Parallel()
	ta := agenttest.Start(t, agenttest.Config(t))
	repo := gittest.New(t)
	p := ta.AddProject(t, api.ProjectCreate{Name: "long", RepoURL: repo.Dir, Branch: "main", InstallCommand: "true",
		BuildCommand: "echo FIRST-LINE; seq 100000 | sed 's/$/ of a long build log, padded to be long/'; echo LAST-LINE", OutputDirectory: "."})
	repo.Commit("long", map[string]string{"index.html": "hello"})
	var d api.Deployment
	ta.Call(t, "POST", api.PathProjects+"/"+p.Slug+"/deploy", nil, http.StatusCreated, &d)
	ta.Deployed(t, d.ID)
	log := ta.Log(t, d.ID)
	if len(log) < 4<<20 {
		t.Fatalf("the build logged only %d bytes", len(log))
	}
	session := signIn(t, ta)
	page := "/deployments/" + strconv.FormatInt(d.ID, 10)
	resp, body := send(t, ta, "GET", page, nil, session)
	if resp.StatusCode != http.StatusOK || len(body) > 512<<10 || !strings.Contains(body, "LAST-LINE") || strings.Contains(body, "FIRST-LINE") ||
		!strings.Contains(body, `href="`+page+`/log.txt"`) {
		t.Fatalf("the page of a %d byte log: %d, %d bytes, ends with %q", len(log), resp.StatusCode, len(body), body[max(0, len(body)-300):])
	}
	if resp, raw := send(t, ta, "GET", page+"/log.txt", nil, session); resp.StatusCode != http.StatusOK || raw != log ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("the whole log: %d %v, %d bytes of %d", resp.StatusCode, resp.Header, len(raw), len(log))
	}
	// A live log resumed near the end sends only what follows.
	from := strings.LastIndex(log, "LAST-LINE")
	from = strings.LastIndexByte(log[:from], '\n') + 1
	var lines []string
	for _, e := range readEvents(t, ta, page+"/log?from="+strconv.Itoa(from), session, "") {
		if e.name == "line" {
			lines = append(lines, strings.Split(e.data, "\n")...)
		}
	}
	if len(lines) == 0 || !strings.HasSuffix(lines[0], "LAST-LINE") || strings.Contains(strings.Join(lines, "\n"), "padded") {
		t.Errorf("the stream from byte %d: %q", from, lines)
	}
}

func TestLiveLogsPerSessionAreLimited(t *testing.T) {
	t.Parallel()
	ta, id := runningDeployment(t)
	session := signIn(t, ta)
	path := ta.URL + "/deployments/" + strconv.FormatInt(id, 10) + "/log"
	open := func() *http.Response {
		req, _ := http.NewRequest("GET", path, nil)
		req.AddCookie(&http.Cookie{Name: "miaobu_session", Value: session})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	var streams []*http.Response
	for range 8 {
		resp := open()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %d", len(streams)+1, resp.StatusCode)
		}
		streams = append(streams, resp)
	}
	resp := open()
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a ninth stream: %d", resp.StatusCode)
	}
	streams[0].Body.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp := open()
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a stream after one closed: %d", resp.StatusCode)
		}
	}
	for _, s := range streams[1:] {
		s.Body.Close()
	}
}
