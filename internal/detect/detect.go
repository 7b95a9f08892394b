// Package detect owns build-settings detection: from a few files of a repository (package.json,
// the lockfiles, .nvmrc, .node-version, angular.json) it decides the framework, the install and
// build commands, the output directory and the Node version of one project directory.
//
// Detect reads through an fs.FS rooted at the repository root, so the same rules apply to a
// checkout at build time (os.DirFS) and to a repository read through the GitHub API at import
// time. It never walks the tree: it lists the project directory and each parent up to the
// repository root (one fs.ReadDir each, to find lockfiles without probing for every name) and
// reads at most package.json, the workspace root's package.json, angular.json, .nvmrc and
// .node-version. All commands are meant to run in the project directory.
//
// # Frameworks
//
// The framework comes from the names in dependencies ∪ devDependencies. Frameworks built on
// Vite also depend on vite, so the table is checked from the most specific to the most generic,
// first match wins:
//
//	id                indicator                      script    output                  SPA
//	slidev            @slidev/cli                    build     dist                    yes
//	astro             astro                          build     dist                    no
//	vuepress          vuepress, @vuepress/cli        build     <docs>/.vuepress/dist   no
//	docusaurus        @docusaurus/core               build     build                   no
//	nuxt              nuxt, nuxt3                    generate  .output/public (v3+), dist (v2)  no
//	gatsby            gatsby                         build     public                  no
//	next              next                           build     out                     no
//	svelte (kit)      @sveltejs/kit                  build     build                   no
//	angular           @angular/cli, @angular/core    build     from angular.json       yes
//	vue-cli           @vue/cli-service               build     dist                    yes
//	create-react-app  react-scripts                  build     build                   yes
//	svelte            svelte                         build     dist with vite, else public  yes
//	vite              vite, any @vitejs/plugin-*     build     dist                    yes
//	node              a build script, none of above  build     dist (VitePress: <docs>/.vitepress/dist)  no
//	static            no package.json, or neither a framework nor a build script: no install, no build, output "."  no
//
// The build command is "<pm> run <script>"; the script body is never copied, so the project's own
// script runs with its node_modules/.bin on PATH. When a framework is known but the script is
// missing, the framework's own command runs through the package manager ("npx vite build") and a
// note says so. An output flag in the script (vite build --outDir site, slidev build --out x,
// vuepress build src --dest x, docusaurus build --out-dir x) overrides the table. Next.js has had
// no "next export" since version 14: a static site needs output: 'export' in next.config, which
// a note repeats. SvelteKit publishes a static site only with @sveltejs/adapter-static, whose
// default output is build. Angular takes outputPath of the first application in angular.json and
// adds /browser for the application builder (Angular 17 and later).
//
// A package.json with neither a known framework nor a build script is published as it is
// (framework static): installing dependencies that nothing builds with would only slow the
// deployment down, and a site that needs them at runtime vendors them anyway.
//
// # Package manager
//
// Lockfiles are looked for in the project directory, then in each parent up to the repository
// root, so a package of a pnpm or yarn workspace finds the workspace's lockfile. The
// packageManager field ("pnpm@9.1.0") of the project's or the workspace root's package.json
// wins over lockfiles, as corepack enforces it. Without that field, when one directory holds
// several lockfiles, pnpm-lock.yaml wins over yarn.lock, which wins over package-lock.json (the
// npm lockfile is most often the stale one) and a note says so. Install commands: "npm ci" with
// package-lock.json or npm-shrinkwrap.json, else "npm install"; "yarn install --frozen-lockfile"
// ("--immutable" for yarn 2 and later); "pnpm install --frozen-lockfile"; the frozen flag only
// when the lockfile exists.
//
// # Node version
//
// The first of .nvmrc and .node-version in the project directory, then in the repository root,
// then engines.node of package.json, kept as written; NodeMajor turns it into a major version.
package detect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// Settings are the build settings detected for one project directory.
type Settings struct {
	// Framework is one of the contract's ids: vite, create-react-app, next, vue-cli, nuxt, gatsby,
	// angular, svelte, docusaurus, vuepress, astro, slidev, node, static.
	Framework string
	// PackageManager is npm, yarn or pnpm, or "" for a static site.
	PackageManager string
	// InstallCommand installs the dependencies; "" when nothing is installed.
	InstallCommand string
	// BuildCommand builds the site; "" when nothing is built.
	BuildCommand string
	// OutputDirectory is the directory to publish, relative to the root directory; "." for a static site.
	OutputDirectory string
	// NodeVersion is the Node version as the repository writes it, "" when unknown.
	NodeVersion string
	// SPA reports whether unknown extension-less paths should be answered with /index.html.
	SPA bool
	// Notes are hints for the user, such as a configuration the framework needs.
	Notes []string
}

// ErrInvalidRootDir is wrapped by the error for a root directory that is absolute or leaves the repository.
var ErrInvalidRootDir = errors.New("invalid root directory")

// ErrInvalidPackageJSON is wrapped by the error for a package.json that cannot be parsed.
var ErrInvalidPackageJSON = errors.New("invalid package.json")

// CleanRootDir validates a project's root directory and returns it as a clean slash path, "." for the repository root.
func CleanRootDir(rootDir string) (string, error) {
	if rootDir == "" {
		return ".", nil
	}
	if strings.HasPrefix(rootDir, "/") || strings.Contains(rootDir, `\`) || (len(rootDir) > 1 && rootDir[1] == ':') {
		return "", fmt.Errorf("%w %q: it must be a path relative to the repository root, such as packages/web", ErrInvalidRootDir, rootDir)
	}
	for _, elem := range strings.Split(rootDir, "/") {
		if elem == ".." {
			return "", fmt.Errorf("%w %q: it must stay inside the repository (no ..)", ErrInvalidRootDir, rootDir)
		}
	}
	clean := path.Clean(rootDir)
	if !fs.ValidPath(clean) {
		return "", fmt.Errorf("%w %q", ErrInvalidRootDir, rootDir)
	}
	return clean, nil
}

// packageJSON is the part of package.json that detection reads.
type packageJSON struct {
	Name            string            `json:"name"`
	Scripts         map[string]string `json:"scripts"`
	Dependencies    map[string]string `json:"dependencies"`
	DevDependencies map[string]string `json:"devDependencies"`
	PackageManager  string            `json:"packageManager"`
	Engines         map[string]string `json:"engines"`
}

// dep returns the version range of a dependency or devDependency and whether it is there.
func (p *packageJSON) dep(name string) (string, bool) {
	if v, ok := p.Dependencies[name]; ok {
		return v, true
	}
	v, ok := p.DevDependencies[name]
	return v, ok
}

// hasDepPrefix reports whether any dependency or devDependency name starts with prefix.
func (p *packageJSON) hasDepPrefix(prefix string) bool {
	for _, deps := range []map[string]string{p.Dependencies, p.DevDependencies} {
		for name := range deps {
			if strings.HasPrefix(name, prefix) {
				return true
			}
		}
	}
	return false
}

// repo reads one repository for one detection, remembering directory listings.
type repo struct {
	fsys     fs.FS
	listings map[string]map[string]bool
}

// has reports whether the directory dir holds a regular entry called name.
func (r *repo) has(dir, name string) (bool, error) {
	names, ok := r.listings[dir]
	if !ok {
		entries, err := fs.ReadDir(r.fsys, dir)
		if err != nil {
			return false, err
		}
		names = make(map[string]bool, len(entries))
		for _, e := range entries {
			if !e.IsDir() {
				names[e.Name()] = true
			}
		}
		r.listings[dir] = names
	}
	return names[name], nil
}

// readPackageJSON parses dir/package.json.
func (r *repo) readPackageJSON(dir string) (*packageJSON, error) {
	name := path.Join(dir, "package.json")
	data, err := fs.ReadFile(r.fsys, name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var pkg packageJSON
	if err := json.Unmarshal(data, &pkg); err != nil {
		return nil, fmt.Errorf("%w: %s: %s", ErrInvalidPackageJSON, name, describeJSONError(data, err))
	}
	return &pkg, nil
}

// describeJSONError words a JSON error with the line it happened on.
func describeJSONError(data []byte, err error) string {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		line := 1 + bytes.Count(data[:min(int(syntax.Offset), len(data))], []byte("\n"))
		return fmt.Sprintf("line %d: %s", line, syntax.Error())
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		if typ.Field == "" {
			return fmt.Sprintf("expected an object, found %s", typ.Value)
		}
		return fmt.Sprintf("field %q: found %s where the package.json format expects another type", typ.Field, typ.Value)
	}
	return err.Error()
}

// Detect returns the build settings of the project in rootDir ("" or "." for the repository
// root) of the repository that fsys is rooted at.
func Detect(fsys fs.FS, rootDir string) (Settings, error) {
	dir, err := CleanRootDir(rootDir)
	if err != nil {
		return Settings{}, err
	}
	r := &repo{fsys: fsys, listings: map[string]map[string]bool{}}
	hasPkg, err := r.has(dir, "package.json")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Settings{}, fmt.Errorf("root directory %s not found in the repository: %w", dir, err)
		}
		return Settings{}, fmt.Errorf("list %s: %w", dir, err)
	}
	var s Settings
	var pkg *packageJSON
	if hasPkg {
		if pkg, err = r.readPackageJSON(dir); err != nil {
			return Settings{}, err
		}
		if err := r.detectBuild(&s, dir, pkg); err != nil {
			return Settings{}, err
		}
	} else {
		s = Settings{Framework: "static", OutputDirectory: "."}
	}
	if s.NodeVersion, err = r.nodeVersion(dir, pkg); err != nil {
		return Settings{}, err
	}
	return s, nil
}

// detectBuild fills the framework, package manager, commands and output of a Node project.
func (r *repo) detectBuild(s *Settings, dir string, pkg *packageJSON) error {
	fw, ok := matchFramework(pkg)
	if !ok {
		if _, hasBuild := pkg.Scripts["build"]; !hasBuild {
			*s = Settings{Framework: "static", OutputDirectory: ".",
				Notes: []string{"package.json has neither a build script nor a known framework: the directory is published as it is"}}
			return nil
		}
		fw = genericNode(pkg)
	}
	if fw.refine != nil {
		if err := fw.refine(&fw, r, dir, pkg); err != nil {
			return err
		}
	}
	pm, err := r.packageManager(dir, pkg)
	if err != nil {
		return err
	}
	s.Framework = fw.id
	s.PackageManager = pm.name
	s.InstallCommand = pm.install
	s.Notes = append(s.Notes, pm.notes...)
	script, hasScript := pkg.Scripts[fw.script]
	if hasScript {
		s.BuildCommand = pm.name + " run " + fw.script
	} else {
		s.BuildCommand = pm.exec(fw.command)
		s.Notes = append(s.Notes, fmt.Sprintf("package.json has no %q script: the build runs %s directly", fw.script, fw.command))
	}
	s.OutputDirectory = fw.output
	if out, ok := flagValue(commandArgs(script, fw.bin()), fw.outFlags); ok {
		s.OutputDirectory = out
	}
	s.SPA = fw.spa
	s.Notes = append(s.Notes, fw.notes...)
	return nil
}
