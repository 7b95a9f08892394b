package pipeline

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/miaobu/miaobu/internal/buildcache"
)

// keeping is what one build took from its project's build cache, and gives back when it ends.
type keeping struct {
	builder *Builder
	cache   *buildcache.Project // nil: the build neither reads nor writes the cache
	src     string              // the checkout
	root    string              // the project directory, slash-separated, relative to src
	// key is the dependency key under which the installed dependencies are kept, "" to keep none;
	// hit says they were taken from the cache rather than installed.
	key string
	hit bool
	// framework says framework caches were put in place; built that the build succeeded.
	framework, built bool
}

// takeDeps puts the dependencies kept under the build's dependency key in place and reports
// whether it did; when no key can be computed it takes and keeps nothing.
func (k *keeping) takeDeps(settings buildSettings, env map[string]string, log *Log) bool {
	if k.cache == nil {
		return false
	}
	k.key = depsKey(k.src, settings, env, log)
	if k.key == "" {
		return false
	}
	hit, err := k.cache.TakeDeps(k.key, k.src)
	if err != nil {
		log.Printf("Build cache: dependencies not used: %v", err)
	}
	k.hit = hit
	return hit
}

// installed records the installed dependencies, so what the build changes of them is not kept.
func (k *keeping) installed(log *Log) {
	if k.key == "" {
		return
	}
	if err := k.cache.Installed(k.src); err != nil {
		log.Printf("Build cache: dependencies not kept: %v", err)
		k.key = ""
	}
}

// takeFramework puts the framework caches kept by the last successful build in place, unless the
// dependencies were installed afresh: caches made with other dependencies are not for them.
func (k *keeping) takeFramework(log *Log) {
	if k.cache == nil {
		return
	}
	k.framework = true
	if k.key != "" && !k.hit {
		return
	}
	put, made, err := k.cache.TakeFramework(k.src, k.root)
	if err == nil {
		err = k.builder.handDirsToBuildUser(made)
	}
	if err != nil {
		log.Printf("Build cache: framework caches not used: %v", err)
	}
	for _, p := range put {
		rel, _ := filepath.Rel(k.src, p)
		log.Printf("Build cache: restored %s", filepath.ToSlash(rel))
	}
}

// giveBack moves the framework caches and the installed dependencies out of the checkout into the
// cache, framework caches first since some live in node_modules; after a failed build it discards
// them.
func (k *keeping) giveBack(log *Log) {
	if k.cache == nil {
		return
	}
	if k.framework {
		if _, err := k.cache.KeepFramework(k.src, k.root, k.built); err != nil {
			log.Printf("Build cache: framework caches not kept: %v", err)
		}
	}
	if k.key == "" {
		return
	}
	if !k.built {
		if err := k.cache.DropDeps(); err != nil {
			log.Printf("Build cache: dependencies not discarded: %v", err)
		}
		return
	}
	n, err := k.cache.KeepDeps(k.key, k.src)
	switch {
	case errors.Is(err, buildcache.ErrDepsChanged):
		log.Printf("Build cache: %v", buildcache.ErrDepsChanged)
	case err != nil:
		log.Printf("Build cache: dependencies not kept: %v", err)
	case n == 0:
		log.Printf("Build cache: the install made no node_modules to keep")
	case !k.hit:
		log.Printf("Build cache: installed dependencies kept (cache %s)", k.key[:7])
	}
}

// depsKey returns the dependency key of a build in the checkout src, "" (logged) when it cannot be
// computed.
func depsKey(src string, settings buildSettings, env map[string]string, log *Log) string {
	root, err := os.OpenRoot(src)
	if err != nil {
		log.Printf("Build cache: %v", err)
		return ""
	}
	defer root.Close()
	key, err := buildcache.Key(root.FS(), buildcache.Inputs{PackageManager: packageManagerVersion(settings.PackageManager),
		Node: toolVersion("node"), InstallCommand: settings.InstallCommand, Root: settings.rootDir, Env: env})
	if err != nil {
		log.Printf("Build cache: no dependency key (%v): installing", err)
		return ""
	}
	return key
}
