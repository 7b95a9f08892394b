package cli

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/config"
)

// TestSystemdUnitListensOnLoopbackBehindTheProxy reads the agent's arguments from the systemd unit,
// as the agent would get them, and checks that it listens on loopback only, at the address the
// proxies in the README and the VPS guide forward to.
func TestSystemdUnitListensOnLoopbackBehindTheProxy(t *testing.T) {
	unit := readRepoFile(t, "deploy/miaobu.service")
	var args []string
	for line := range strings.Lines(unit) {
		if cmdline, ok := strings.CutPrefix(strings.TrimSpace(line), "ExecStart="); ok {
			args = strings.Fields(cmdline)
		}
	}
	if len(args) < 2 || filepath.Base(args[0]) != "miaobu" || args[1] != "agent" {
		t.Fatalf("ExecStart runs %q, want miaobu agent", args)
	}
	t.Setenv("MIAOBU_LISTEN", "")
	t.Setenv("MIAOBU_CONFIG", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	cmd := newCmdAgent(newFactory(io.Discard, io.Discard), nil)
	if err := cmd.ParseFlags(args[2:]); err != nil {
		t.Fatalf("the unit's agent flags: %v", err)
	}
	cfg, err := config.Load(cmd.Flags())
	if err != nil {
		t.Fatal(err)
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		t.Fatalf("the unit's agent listens on %q, want a loopback address behind the proxy", cfg.Listen)
	}
	if cfg.Listen != "127.0.0.1:8000" {
		t.Errorf("the unit's agent listens on %q, want 127.0.0.1:8000", cfg.Listen)
	}

	proxied := regexp.MustCompile(`(?:reverse_proxy|proxy_pass)\s+(?:https?://)?([^\s;]+)`)
	for _, doc := range []string{"README.md", "docs/vps.md"} {
		matches := proxied.FindAllStringSubmatch(readRepoFile(t, doc), -1)
		if len(matches) == 0 {
			t.Errorf("%s shows no proxy in front of the agent", doc)
		}
		for _, m := range matches {
			if m[1] != cfg.Listen {
				t.Errorf("%s proxies to %s, but the unit's agent listens on %s", doc, m[1], cfg.Listen)
			}
		}
	}
}

// readRepoFile reads a file by its path from the repository's root.
func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
