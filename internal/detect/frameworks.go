package detect

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
)

// framework is one row of the detection table in the package doc.
type framework struct {
	id    string
	match func(pkg *packageJSON) bool
	// script is the package.json script that builds the site.
	script string
	// command builds the site when the script is missing; its first word is the binary whose
	// arguments are read from the script.
	command  string
	output   string
	outFlags []string
	spa      bool
	notes    []string
	// refine adapts the row to one project: version-dependent outputs, angular.json.
	refine func(fw *framework, r *repo, dir string, pkg *packageJSON) error
}

// bin is the executable that the framework's command runs.
func (fw *framework) bin() string {
	bin, _, _ := strings.Cut(fw.command, " ")
	return bin
}

// anyDep returns a matcher for a package.json depending on any of names.
func anyDep(names ...string) func(*packageJSON) bool {
	return func(pkg *packageJSON) bool {
		for _, name := range names {
			if _, ok := pkg.dep(name); ok {
				return true
			}
		}
		return false
	}
}

// frameworks is the detection table, most specific first: several of these also depend on vite.
var frameworks = []framework{
	{id: "slidev", match: anyDep("@slidev/cli"), script: "build", command: "slidev build",
		output: "dist", outFlags: []string{"--out", "-o"}, spa: true},
	{id: "astro", match: anyDep("astro"), script: "build", command: "astro build",
		output: "dist", outFlags: []string{"--outDir"}},
	{id: "vuepress", match: anyDep("vuepress", "@vuepress/cli"), script: "build", command: "vuepress build docs",
		outFlags: []string{"--dest", "-d"}, refine: refineSourceDir(".vuepress/dist")},
	{id: "docusaurus", match: anyDep("@docusaurus/core"), script: "build", command: "docusaurus build",
		output: "build", outFlags: []string{"--out-dir"}},
	{id: "nuxt", match: anyDep("nuxt", "nuxt3"), script: "generate", command: "nuxt generate",
		refine: refineNuxt},
	{id: "gatsby", match: anyDep("gatsby"), script: "build", command: "gatsby build", output: "public"},
	{id: "next", match: anyDep("next"), script: "build", command: "next build", output: "out",
		notes: []string{"Next.js publishes a static site only with output: 'export' in next.config (next export was removed in Next 14)"}},
	{id: "svelte", match: anyDep("@sveltejs/kit"), script: "build", command: "vite build", output: "build",
		refine: refineSvelteKit},
	{id: "angular", match: anyDep("@angular/cli", "@angular/core"), script: "build", command: "ng build", spa: true,
		refine: refineAngular},
	{id: "vue-cli", match: anyDep("@vue/cli-service"), script: "build", command: "vue-cli-service build",
		output: "dist", outFlags: []string{"--dest"}, spa: true},
	{id: "create-react-app", match: anyDep("react-scripts"), script: "build", command: "react-scripts build",
		output: "build", spa: true},
	{id: "svelte", match: anyDep("svelte"), script: "build", command: "rollup -c", output: "public", spa: true,
		refine: refineSvelte},
	{id: "vite", match: func(pkg *packageJSON) bool { return anyDep("vite")(pkg) || pkg.hasDepPrefix("@vitejs/plugin-") },
		script: "build", command: "vite build", output: "dist", outFlags: []string{"--outDir"}, spa: true},
}

// matchFramework returns a copy of the first row of the table that pkg matches.
func matchFramework(pkg *packageJSON) (framework, bool) {
	for _, fw := range frameworks {
		if fw.match(pkg) {
			return fw, true
		}
	}
	return framework{}, false
}

// genericNode is the row of a project with a build script and no known framework.
func genericNode(pkg *packageJSON) framework {
	fw := framework{id: "node", script: "build", output: "dist"}
	if _, ok := pkg.dep("vitepress"); ok {
		fw.command = "vitepress build docs"
		fw.outFlags = []string{"--outDir"}
		fw.refine = refineSourceDir(".vitepress/dist")
	}
	return fw
}

// refineSourceDir sets the output of a site generator that writes into its source directory,
// the first argument after "build" (as in vuepress build docs), the table's command when the
// script is missing.
func refineSourceDir(sub string) func(*framework, *repo, string, *packageJSON) error {
	return func(fw *framework, _ *repo, _ string, pkg *packageJSON) error {
		args := commandArgs(fw.command, fw.bin())
		if script, ok := pkg.Scripts[fw.script]; ok {
			args = commandArgs(script, fw.bin())
		}
		src := "."
		if len(args) > 1 && args[0] == "build" && !strings.HasPrefix(args[1], "-") {
			if dir, ok := cleanRelative(args[1]); ok {
				src = dir
			}
		}
		fw.output = path.Join(src, sub)
		return nil
	}
}

// refineNuxt picks the output of nuxt generate: Nuxt 3 writes .output/public, Nuxt 2 dist.
func refineNuxt(fw *framework, _ *repo, _ string, pkg *packageJSON) error {
	fw.output = ".output/public"
	if v, ok := pkg.dep("nuxt"); ok {
		if major, ok := parseMajor(v); ok && major < 3 {
			fw.output = "dist"
		}
	}
	return nil
}

// refineSvelteKit warns when the static adapter, the only one that writes a publishable site, is missing.
func refineSvelteKit(fw *framework, _ *repo, _ string, pkg *packageJSON) error {
	if _, ok := pkg.dep("@sveltejs/adapter-static"); !ok {
		fw.notes = []string{"SvelteKit publishes a static site only with @sveltejs/adapter-static (its default output is build)"}
	}
	return nil
}

// refineSvelte tells a Vite-based Svelte app (output dist) from the older Rollup template,
// whose index.html sits in public next to public/build.
func refineSvelte(fw *framework, _ *repo, _ string, pkg *packageJSON) error {
	if _, ok := pkg.dep("vite"); ok {
		fw.command = "vite build"
		fw.output = "dist"
		fw.outFlags = []string{"--outDir"}
	}
	return nil
}

// angularWorkspace is the part of angular.json that detection reads.
type angularWorkspace struct {
	DefaultProject string `json:"defaultProject"`
	Projects       map[string]struct {
		ProjectType string                   `json:"projectType"`
		Architect   map[string]angularTarget `json:"architect"`
		Targets     map[string]angularTarget `json:"targets"`
	} `json:"projects"`
}

// angularTarget is one architect target of angular.json.
type angularTarget struct {
	Builder string `json:"builder"`
	Options struct {
		OutputPath json.RawMessage `json:"outputPath"`
	} `json:"options"`
}

// refineAngular reads the output directory from angular.json: outputPath of the build target,
// plus /browser with the application builder of Angular 17 and later.
func refineAngular(fw *framework, r *repo, dir string, pkg *packageJSON) error {
	name := pkg.Name[strings.LastIndex(pkg.Name, "/")+1:]
	appBuilder := false
	if v, ok := pkg.dep("@angular/core"); ok {
		major, ok := parseMajor(v)
		appBuilder = ok && major >= 17
	}
	ok, err := r.has(dir, "angular.json")
	if err != nil {
		return err
	}
	if !ok {
		fw.output = angularOutput("dist/"+name, appBuilder)
		fw.notes = []string{"angular.json not found: the output directory is a guess, set it if the build writes elsewhere"}
		return nil
	}
	data, err := r.readFile(path.Join(dir, "angular.json"))
	if err != nil {
		return err
	}
	var ws angularWorkspace
	if err := json.Unmarshal(data, &ws); err != nil {
		fw.output = angularOutput("dist/"+name, appBuilder)
		fw.notes = []string{fmt.Sprintf("%s cannot be parsed (%s): the output directory is a guess", path.Join(dir, "angular.json"), describeJSONError(data, err))}
		return nil
	}
	var apps []string
	for p, proj := range ws.Projects {
		if proj.ProjectType == "" || proj.ProjectType == "application" {
			apps = append(apps, p)
		}
	}
	slices.Sort(apps)
	app := ""
	switch {
	case slices.Contains(apps, ws.DefaultProject):
		app = ws.DefaultProject
	case slices.Contains(apps, name):
		app = name
	case len(apps) > 0:
		app = apps[0]
	}
	if len(apps) > 1 {
		fw.notes = append(fw.notes, fmt.Sprintf("angular.json has several applications: the output is %s's, set it if another one is the site", app))
	}
	if app == "" {
		fw.output = angularOutput("dist/"+name, appBuilder)
		return nil
	}
	proj := ws.Projects[app]
	target, ok := proj.Architect["build"]
	if !ok {
		target = proj.Targets["build"]
	}
	if target.Builder != "" {
		appBuilder = strings.HasSuffix(target.Builder, ":application")
	}
	var outPath string
	var outObj struct {
		Base    string  `json:"base"`
		Browser *string `json:"browser"`
	}
	switch {
	case json.Unmarshal(target.Options.OutputPath, &outPath) == nil && outPath != "":
		fw.output = angularOutput(outPath, appBuilder)
	case json.Unmarshal(target.Options.OutputPath, &outObj) == nil && outObj.Base != "":
		browser := "browser"
		if outObj.Browser != nil {
			browser = *outObj.Browser
		}
		fw.output = path.Join(outObj.Base, browser)
	default:
		fw.output = angularOutput("dist/"+app, appBuilder)
	}
	if out, ok := cleanRelative(fw.output); ok {
		fw.output = out
	} else {
		fw.output = angularOutput("dist/"+app, appBuilder)
	}
	return nil
}

// angularOutput is where Angular writes the browser files of outputPath.
func angularOutput(outputPath string, appBuilder bool) string {
	if appBuilder {
		return path.Join(outputPath, "browser")
	}
	return path.Clean(outputPath)
}

// commandArgs returns the words after bin in the first command of script that runs bin (or a
// variant such as vuepress-vite build), so that flags of other commands are not read.
func commandArgs(script, bin string) []string {
	if bin == "" {
		return nil
	}
	for _, segment := range splitCommands(script) {
		words := strings.Fields(segment)
		for i, w := range words {
			w = strings.Trim(w, `"'`)
			variant := strings.HasPrefix(w, bin+"-") && i+1 < len(words) && words[i+1] == "build"
			if w == bin || strings.HasSuffix(w, "/"+bin) || variant {
				args := words[i+1:]
				for j := range args {
					args[j] = strings.Trim(args[j], `"'`)
				}
				return args
			}
		}
	}
	return nil
}

// splitCommands splits a shell command line on &&, ||, ; and |.
func splitCommands(script string) []string {
	return strings.FieldsFunc(script, func(r rune) bool { return r == '&' || r == '|' || r == ';' })
}

// flagValue returns the cleaned relative path given to one of flags in args, as --flag value or --flag=value.
func flagValue(args, flags []string) (string, bool) {
	for i, a := range args {
		for _, f := range flags {
			var v string
			switch {
			case a == f && i+1 < len(args):
				v = args[i+1]
			case strings.HasPrefix(a, f+"="):
				v = strings.TrimPrefix(a, f+"=")
			default:
				continue
			}
			return cleanRelative(v)
		}
	}
	return "", false
}

// cleanRelative cleans a relative slash path that stays inside its directory.
func cleanRelative(p string) (string, bool) {
	p = path.Clean(strings.Trim(p, `"'`))
	if p == "" || path.IsAbs(p) || p == ".." || strings.HasPrefix(p, "../") {
		return "", false
	}
	return p, true
}
