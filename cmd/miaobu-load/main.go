// Command miaobu-load fires signed push webhooks, each for a distinct commit, at a running agent (or
// any receiver that checks X-Hub-Signature-256), or round-robin at several (the nodes of a
// cluster), from N concurrent clients, and prints latency percentiles and deliveries per second. With -flood it also keeps sending large bodies with a wrong
// signature meanwhile, and with -pid it reports the agent's peak memory.
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// pushTemplate is a real GitHub push payload (8.8 KB); each request gets its own commit id.
//
//go:embed push.json
var pushTemplate []byte

func main() {
	target := flag.String("url", "", "webhook URL, e.g. http://127.0.0.1:8000/api/v1/webhooks/github/1; several, comma-separated, take turns")
	secret := flag.String("secret", "", "webhook secret (or MIAOBU_LOAD_SECRET); several, comma-separated, go with the URLs in turn")
	clients := flag.Int("c", 1, "concurrent clients")
	total := flag.Int("n", 2000, "deliveries to send")
	branch := flag.String("branch", "main", "branch the pushes go to")
	warmup := flag.Int("warmup", 100, "deliveries sent first and not measured")
	floods := flag.Int("flood", 0, "clients sending wrong-signature bodies all along")
	floodSize := flag.Int("flood-size", 32<<20, "bytes of each wrong-signature body")
	pid := flag.Int("pid", 0, "the agent's process id: print its peak resident memory (Linux)")
	flag.Parse()
	if *secret == "" {
		*secret = os.Getenv("MIAOBU_LOAD_SECRET")
	}
	if *target == "" || *secret == "" || *clients < 1 || *total < 1 || *floods < 0 || *floodSize < 0 {
		fmt.Fprintln(os.Stderr, "usage: miaobu-load -url URL -secret SECRET [-c CLIENTS] [-n DELIVERIES] [-branch B] [-flood CLIENTS [-flood-size BYTES]] [-pid PID]")
		os.Exit(2)
	}
	bodies, err := makeBodies(*total+*warmup, *branch)
	if err != nil {
		fmt.Fprintln(os.Stderr, "miaobu-load:", err)
		os.Exit(1)
	}
	l := &load{urls: strings.Split(*target, ","), secrets: strings.Split(*secret, ","), client: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: *clients, MaxConnsPerHost: *clients, MaxIdleConns: 4 * *clients},
	}}
	f := startFlood(l.urls[0], *floods, *floodSize)
	l.run(bodies[:*warmup], *clients)
	l.failures.Store(0)
	res := l.run(bodies[*warmup:], *clients)
	f.stop()
	res.print(os.Stdout, *clients)
	if *floods > 0 {
		f.print(os.Stdout)
	}
	if *pid != 0 {
		fmt.Fprintln(os.Stdout, peakMemory(*pid))
	}
	if res.failures > 0 {
		os.Exit(1)
	}
}

// flood keeps clients sending bodies with a wrong signature, as an attacker without the secret can,
// and counts the answers.
type flood struct {
	done     chan struct{}
	wg       sync.WaitGroup
	sent     atomic.Int64
	refused  atomic.Int64 // 401: read and checked
	busy     atomic.Int64 // 503: no room to hold the body
	failures atomic.Int64 // anything else, or the connection closed
}

// startFlood starts clients that each send wrong-signature bodies of size bytes to url in a loop.
func startFlood(url string, clients, size int) *flood {
	f := &flood{done: make(chan struct{})}
	body := bytes.Repeat([]byte("x"), size)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: clients, MaxIdleConnsPerHost: clients}}
	for range clients {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for {
				select {
				case <-f.done:
					return
				default:
				}
				f.send(client, url, body)
			}
		}()
	}
	return f
}

// send posts one wrong-signature body and counts the answer.
func (f *flood) send(client *http.Client, url string, body []byte) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
	f.sent.Add(1)
	resp, err := client.Do(req)
	if err != nil {
		f.failures.Add(1)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		f.refused.Add(1)
	case http.StatusServiceUnavailable:
		f.busy.Add(1)
	default:
		f.failures.Add(1)
	}
}

// stop ends the flood once the bodies in flight are answered.
func (f *flood) stop() {
	close(f.done)
	f.wg.Wait()
}

// print writes how the flood's bodies were answered.
func (f *flood) print(w io.Writer) {
	fmt.Fprintf(w, "flood: sent=%d refused(401)=%d busy(503)=%d other=%d\n", f.sent.Load(), f.refused.Load(), f.busy.Load(), f.failures.Load())
}

// peakMemory returns the process's peak and current resident memory from /proc/PID/status.
func peakMemory(pid int) string {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return fmt.Sprintf("agent memory: %v", err)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(status), "\n") {
		if name, value, ok := strings.Cut(line, ":"); ok && (name == "VmHWM" || name == "VmRSS") {
			fields[name] = strings.TrimSpace(value)
		}
	}
	return fmt.Sprintf("agent memory: peak (VmHWM) %s, now (VmRSS) %s", fields["VmHWM"], fields["VmRSS"])
}

// makeBodies returns n push payloads for distinct commits, unique to this run.
func makeBodies(n int, branch string) ([][]byte, error) {
	var payload map[string]any
	if err := json.Unmarshal(pushTemplate, &payload); err != nil {
		return nil, err
	}
	run := make([]byte, 8)
	if _, err := rand.Read(run); err != nil {
		return nil, err
	}
	payload["ref"] = "refs/heads/" + branch
	head := payload["head_commit"].(map[string]any)
	bodies := make([][]byte, n)
	for i := range bodies {
		sha := fmt.Sprintf("%s%024x", hex.EncodeToString(run), i)
		payload["after"], head["id"] = sha, sha
		b, err := json.Marshal(payload)
		if err != nil {
			return nil, err
		}
		bodies[i] = b
	}
	return bodies, nil
}

// load sends deliveries and keeps count of the ones that failed.
type load struct {
	urls     []string
	secrets  []string
	client   *http.Client
	failures atomic.Int64
}

// result is one measured run.
type result struct {
	latencies []time.Duration
	elapsed   time.Duration
	failures  int64
}

// run sends every body from clients concurrent clients and measures each answer.
func (l *load) run(bodies [][]byte, clients int) result {
	latencies := make([]time.Duration, len(bodies))
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					return
				}
				latencies[i] = l.send(bodies[i], i)
			}
		}()
	}
	wg.Wait()
	return result{latencies: latencies, elapsed: time.Since(start), failures: l.failures.Load()}
}

// send posts one signed delivery and returns how long the answer took.
func (l *load) send(body []byte, i int) time.Duration {
	mac := hmac.New(sha256.New, []byte(l.secrets[i%len(l.urls)%len(l.secrets)]))
	mac.Write(body)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, l.urls[i%len(l.urls)], bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("load-%d-%d", time.Now().UnixNano(), i))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	start := time.Now()
	resp, err := l.client.Do(req)
	if err != nil {
		l.failures.Add(1)
		return time.Since(start)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	elapsed := time.Since(start)
	if resp.StatusCode != http.StatusOK {
		l.failures.Add(1)
	}
	return elapsed
}

// print writes the run's percentiles and rate.
func (r result) print(w io.Writer, clients int) {
	sorted := slices.Clone(r.latencies)
	slices.Sort(sorted)
	pct := func(p float64) string {
		d := sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
		return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000)
	}
	fmt.Fprintf(w, "clients=%d deliveries=%d failures=%d p50=%s p90=%s p99=%s max=%s rate=%.0f/s\n",
		clients, len(sorted), r.failures, pct(0.50), pct(0.90), pct(0.99), pct(1), float64(len(sorted))/r.elapsed.Seconds())
}
