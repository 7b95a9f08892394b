package agent_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/github/githubtest"
	"github.com/miaobu/miaobu/internal/store"
	"github.com/miaobu/miaobu/internal/trigger"
)

// TestPollLoad measures what polling 100 unchanged GitHub projects costs, each with pull request
// previews and the preview branches feature/*: it runs `miaobu agent` as a process against the fake
// GitHub on loopback, with poll.interval 15s, for MIAOBU_POLL_LOAD (such as 2m) after the
// reconciliation at start, and reports the agent's CPU time, its requests per hour and how many of
// them counted against the rate limit (BENCHMARKS.md). It runs only when MIAOBU_POLL_LOAD is set:
//
//	MIAOBU_POLL_LOAD=2m go test -run TestPollLoad -v ./internal/agent/
func TestPollLoad(t *testing.T) {
	window, err := time.ParseDuration(os.Getenv("MIAOBU_POLL_LOAD"))
	if err != nil {
		t.Skip("set MIAOBU_POLL_LOAD to a duration, such as 2m, to measure polling")
	}
	// Each check asks for the production branch's head, the listing of branches and that of the
	// open pull requests.
	const projects, interval, perCheck = 100, 15 * time.Second, 3
	gh := githubtest.New(t, "ghp_load-token")
	gh.SetRateLimit(5000, 5000, time.Now().Add(2*time.Hour))
	data := filepath.Join(t.TempDir(), "data")
	st, err := store.Open(data, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for i := range projects {
		name := fmt.Sprintf("acme/site-%03d", i)
		gh.AddRepo(githubtest.Repo{FullName: name, DefaultBranch: "main", Branches: map[string]string{"main": strings.Repeat("a", 40)}})
		p := &store.Project{Name: name[5:], Slug: name[5:], Repo: name, RepoURL: "https://github.com/" + name + ".git",
			DefaultBranch: "main", Target: "local", TriggerMode: trigger.ModePoll, PRPreviews: true, PreviewBranches: []string{"feature/*"}}
		if err := st.CreateProject(p); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	agent := startAgentProcess(t, data, freeAddr(t), "MIAOBU_BUILD_CONCURRENCY=0", "MIAOBU_GITHUB_API_URL="+gh.URL,
		"MIAOBU_GITHUB_TOKEN=ghp_load-token", "MIAOBU_POLL_INTERVAL="+interval.String())
	// The reconciliation at start reads every listing and the head's commit once; the measure
	// starts an interval later.
	for deadline := time.Now().Add(time.Minute); len(gh.Answers()) < (perCheck+1)*projects; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d answers a minute after start, want the reconciliation's %d", len(gh.Answers()), (perCheck+1)*projects)
		}
	}
	time.Sleep(interval)
	cpu0, start, first := cpuTime(t, agent.cmd.Process.Pid), time.Now(), len(gh.Answers())
	time.Sleep(window)
	cpu1, elapsed, answers := cpuTime(t, agent.cmd.Process.Pid), time.Since(start), gh.Answers()[first:]

	counted, perSecond := 0, map[int64]int{}
	for _, a := range answers {
		if a.Status != http.StatusNotModified {
			counted++
		}
		perSecond[a.At.Unix()]++
	}
	busiest := 0
	for _, n := range perSecond {
		busiest = max(busiest, n)
	}
	perHour := func(n int) float64 { return float64(n) * float64(time.Hour) / float64(elapsed) }
	t.Logf("%d projects, poll.interval %s, %s measured: %.0f requests/hour (%.0f counted against the rate limit), "+
		"at most %d in one second; agent CPU %.2f s = %.2f%% of one core; resident memory %s",
		projects, interval, elapsed.Round(time.Second), perHour(len(answers)), perHour(counted), busiest,
		(cpu1 - cpu0).Seconds(), 100*(cpu1-cpu0).Seconds()/elapsed.Seconds(), residentMemory(t, agent.cmd.Process.Pid))
	if want := float64(perCheck*projects) * float64(time.Hour/interval); perHour(len(answers)) < 0.85*want || perHour(len(answers)) > 1.15*want {
		t.Errorf("%.0f requests/hour, want about %.0f (%d per project and interval)", perHour(len(answers)), want, perCheck)
	}
	if counted != 0 {
		t.Errorf("%d requests of unchanged branches counted against the rate limit, want none (304s)", counted)
	}
}

// cpuTime returns the user and system CPU time process pid has used, from /proc.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name, which is in parentheses: utime and stime are 14 and 15.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}

// residentMemory returns the VmRSS line of process pid's status.
func residentMemory(t *testing.T, pid int) string {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if rss, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(rss)
		}
	}
	return "unknown"
}
