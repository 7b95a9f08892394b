package config

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestSetKeysCreatesPrivateFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "miaobu", "config.yaml")
	if err := SetKeys(file, map[string]string{"token": "s3cret", "agent_url": "https://agent.example.com"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "agent_url: https://agent.example.com\ntoken: s3cret\n" {
		t.Errorf("file:\n%s", data)
	}
	if runtime.GOOS == "windows" {
		return
	}
	for path, want := range map[string]os.FileMode{file: 0o600, filepath.Dir(file): 0o700 | os.ModeDir} {
		if fi, err := os.Stat(path); err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v (%v)", path, fi.Mode(), want, err)
		}
	}
}

func TestSetKeysKeepsOtherKeys(t *testing.T) {
	isolate(t)
	file := filepath.Join(t.TempDir(), "config.yaml")
	old := "# my settings\nlisten: 127.0.0.1:7000\ntoken: old # replaced\nbuild:\n  concurrency: 3\n"
	if err := os.WriteFile(file, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := SetKeys(file, map[string]string{"token": "new", "agent_url": "http://10.0.0.2:8000"}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(file)
	for _, want := range []string{"# my settings", "listen: 127.0.0.1:7000", "token: new # replaced", "concurrency: 3", "agent_url: http://10.0.0.2:8000"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("missing %q in:\n%s", want, data)
		}
	}
	if fi, _ := os.Stat(file); runtime.GOOS != "windows" && fi.Mode() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	t.Setenv("MIAOBU_CONFIG", file)
	cfg, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Token != "new" || cfg.AgentURL != "http://10.0.0.2:8000" || cfg.Listen != "127.0.0.1:7000" || cfg.Build.Concurrency != 3 {
		t.Errorf("loaded %+v", cfg)
	}
}

func TestSetKeysRefusesNonMapping(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte("- a\n- b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := SetKeys(file, map[string]string{"token": "x"}); err == nil || !strings.Contains(err.Error(), "mapping") {
		t.Fatalf("error %v", err)
	}
	if data, _ := os.ReadFile(file); string(data) != "- a\n- b\n" {
		t.Errorf("file changed: %q", data)
	}
}
