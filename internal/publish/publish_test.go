package publish

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/miaobu/miaobu/internal/config"
	"github.com/miaobu/miaobu/internal/store"
)

func TestURLs(t *testing.T) {
	tests := []struct {
		name, target, alias, want string
		cfg                       config.Config
	}{
		{"localhost", "local", "", "http://blog.localhost:8000/", config.Config{Listen: "127.0.0.1:8000", Sites: config.Sites{Domain: "localhost"}}},
		{"localhost deployment", "", "42", "http://blog--42.localhost:8000/", config.Config{Listen: "127.0.0.1:8000", Sites: config.Sites{Domain: "localhost"}}},
		{"own domain", "local", "", "https://blog.sites.example.com/",
			config.Config{PublicURL: "https://deploy.example.com", Sites: config.Sites{Domain: "sites.example.com"}}},
		{"own domain and port", "local", "pr-12", "http://blog--pr-12.sites.example.com:8080/",
			config.Config{PublicURL: "http://deploy.example.com:8080", Sites: config.Sites{Domain: "sites.example.com"}}},
		{"CDN", "oss", "", "https://blog.cdn.example.com/", config.Config{CDN: config.CDN{Domain: "{slug}.cdn.example.com"}}},
		{"bucket", "oss", "", "https://sites.oss-cn-hangzhou.aliyuncs.com/projects/blog/",
			config.Config{OSS: config.OSS{Endpoint: "oss-cn-hangzhou.aliyuncs.com", Bucket: "sites", Prefix: "projects/{slug}/"}}},
		{"bucket on an IP", "oss", "", "http://127.0.0.1:9000/sites/blog/",
			config.Config{OSS: config.OSS{Endpoint: "http://127.0.0.1:9000", Bucket: "sites", Prefix: "{slug}/"}}},
		{"no bucket", "oss", "", "", config.Config{OSS: config.OSS{Endpoint: "oss-cn-hangzhou.aliyuncs.com"}}},
		{"preview of an oss project", "oss", "pr-1", "http://blog--pr-1.localhost:8000/",
			config.Config{Listen: "127.0.0.1:8000", Sites: config.Sites{Domain: "localhost"}, CDN: config.CDN{Domain: "cdn.example.com"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target, err := NewTargets(&tt.cfg).For(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			if got := target.URL("blog", tt.alias); got != tt.want {
				t.Errorf("URL = %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := NewTargets(&config.Config{}).For("s3"); err == nil {
		t.Error("an unknown target was found")
	}
}

func TestActivateNeedsTheKeptFiles(t *testing.T) {
	cfg := &config.Config{DataDir: t.TempDir()}
	r := Release{Project: &store.Project{Slug: "blog"}, Deployment: &store.Deployment{ID: 3}, Log: io.Discard}
	r.Dir = Dir(cfg.DataDir, "blog", 3)
	for _, name := range []string{"local", "oss"} {
		// An oss project's other aliases are served by the agent, from the kept files too.
		target, _ := NewTargets(cfg).For(name)
		var gone *GoneError
		if err := target.Activate(context.Background(), r, "git-main"); !errors.As(err, &gone) ||
			err.Error() != "the files of deployment 3 are gone: deploy again" {
			t.Errorf("%s: Activate without files: %v", name, err)
		}
	}
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	local, _ := NewTargets(cfg).For("local")
	if err := local.Activate(context.Background(), r, ""); err != nil {
		t.Errorf("Activate: %v", err)
	}
}
