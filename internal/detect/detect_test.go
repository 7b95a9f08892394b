package detect

import (
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

// files builds a repository from name → content pairs.
func files(pairs ...string) fstest.MapFS {
	m := fstest.MapFS{}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = &fstest.MapFile{Data: []byte(pairs[i+1])}
	}
	return m
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		rootDir string
		want    Settings // Notes are checked through notes
		notes   []string // substrings, one per expected note
	}{
		{
			name: "no package.json is a static site",
			fsys: files("index.html", "<h1>hi</h1>", "about/index.html", "x"),
			want: Settings{Framework: "static", OutputDirectory: "."},
		},
		{
			name:    "static site in a root directory",
			fsys:    files("site/index.html", "x", "package.json", `{"devDependencies":{"vite":"^5"}}`),
			rootDir: "site",
			want:    Settings{Framework: "static", OutputDirectory: "."},
		},
		{
			name:  "package.json without build script or framework is published as is",
			fsys:  files("package.json", `{"name":"x","dependencies":{"lodash":"^4"}}`, "index.html", "x"),
			want:  Settings{Framework: "static", OutputDirectory: "."},
			notes: []string{"neither a build script nor a known framework"},
		},
		{
			name: "vite with npm lockfile",
			fsys: files("package.json", `{"scripts":{"build":"tsc && vite build"},"devDependencies":{"vite":"^5.2.0","typescript":"^5"}}`,
				"package-lock.json", "{}"),
			want: Settings{Framework: "vite", PackageManager: "npm", InstallCommand: "npm ci", BuildCommand: "npm run build", OutputDirectory: "dist", SPA: true},
		},
		{
			name: "vite from a plugin only",
			fsys: files("package.json", `{"scripts":{"build":"vite build"},"devDependencies":{"@vitejs/plugin-react":"^4"}}`),
			want: Settings{Framework: "vite", PackageManager: "npm", InstallCommand: "npm install", BuildCommand: "npm run build", OutputDirectory: "dist", SPA: true},
		},
		{
			name: "vite outDir flag of the vite command, not of tsc",
			fsys: files("package.json", `{"scripts":{"build":"tsc --outDir lib && vite build --outDir ./site/"},"devDependencies":{"vite":"5"}}`),
			want: Settings{Framework: "vite", PackageManager: "npm", InstallCommand: "npm install", BuildCommand: "npm run build", OutputDirectory: "site", SPA: true},
		},
		{
			name: "vite outDir flag leaving the project is ignored",
			fsys: files("package.json", `{"scripts":{"build":"vite build --outDir=../www"},"devDependencies":{"vite":"5"}}`),
			want: Settings{Framework: "vite", PackageManager: "npm", InstallCommand: "npm install", BuildCommand: "npm run build", OutputDirectory: "dist", SPA: true},
		},
		{
			name:  "vite without build script runs vite directly",
			fsys:  files("package.json", `{"devDependencies":{"vite":"5"}}`, "pnpm-lock.yaml", ""),
			want:  Settings{Framework: "vite", PackageManager: "pnpm", InstallCommand: "pnpm install --frozen-lockfile", BuildCommand: "pnpm exec vite build", OutputDirectory: "dist", SPA: true},
			notes: []string{`no "build" script`},
		},
		{
			name: "create-react-app with yarn",
			fsys: files("package.json", `{"scripts":{"build":"react-scripts build"},"dependencies":{"react":"18","react-scripts":"5.0.1"}}`, "yarn.lock", ""),
			want: Settings{Framework: "create-react-app", PackageManager: "yarn", InstallCommand: "yarn install --frozen-lockfile", BuildCommand: "yarn run build", OutputDirectory: "build", SPA: true},
		},
		{
			name:  "next with pnpm builds to out and needs output export",
			fsys:  files("package.json", `{"scripts":{"build":"next build"},"dependencies":{"next":"14.2.0","react":"18"}}`, "pnpm-lock.yaml", ""),
			want:  Settings{Framework: "next", PackageManager: "pnpm", InstallCommand: "pnpm install --frozen-lockfile", BuildCommand: "pnpm run build", OutputDirectory: "out"},
			notes: []string{"output: 'export'"},
		},
		{
			name: "vue-cli",
			fsys: files("package.json", `{"scripts":{"build":"vue-cli-service build"},"devDependencies":{"@vue/cli-service":"~5.0.0"}}`),
			want: Settings{Framework: "vue-cli", PackageManager: "npm", InstallCommand: "npm install", BuildCommand: "npm run build", OutputDirectory: "dist", SPA: true},
		},
		{
			name: "nuxt 3 keeps generate with yarn, even with vite",
			fsys: files("package.json", `{"scripts":{"build":"nuxt build","generate":"nuxt generate"},"devDependencies":{"nuxt":"^3.11.0","vite":"^5"}}`, "yarn.lock", ""),
			want: Settings{Framework: "nuxt", PackageManager: "yarn", InstallCommand: "yarn install --frozen-lockfile", BuildCommand: "yarn run generate", OutputDirectory: ".output/public"},
		},
		{
			name: "nuxt 2 generates dist",
			fsys: files("package.json", `{"scripts":{"generate":"nuxt generate"},"dependencies":{"nuxt":"^2.17.3"}}`, "package-lock.json", ""),
			want: Settings{Framework: "nuxt", PackageManager: "npm", InstallCommand: "npm ci", BuildCommand: "npm run generate", OutputDirectory: "dist"},
		},
		{
			name:  "nuxt without generate script",
			fsys:  files("package.json", `{"scripts":{"build":"nuxt build"},"devDependencies":{"nuxt":"latest"}}`),
			want:  Settings{Framework: "nuxt", PackageManager: "npm", InstallCommand: "npm install", BuildCommand: "npx nuxt generate", OutputDirectory: ".output/public"},
			notes: []string{`no "generate" script`},
		},
		{
			name: "gatsby",
			fsys: files("package.json", `{"scripts":{"build":"gatsby build"},"dependencies":{"gatsby":"^5"}}`),
			want: Settings{Framework: "gatsby", PackageManager: "npm", InstallCommand: "npm install", BuildCommand: "npm run build", OutputDirectory: "public"},
		},
		{
			name: "angular 17 application builder adds browser",
			fsys: files("package.json", `{"name":"shop","scripts":{"build":"ng build"},"dependencies":{"@angular/core":"^17.3.0"},"devDependencies":{"@angular/cli":"^17.3.0"}}`,
				"angular.json", `{"projects":{"shop":{"projectType":"application","architect":{"build":{"builder":"@angular-devkit/build-angular:application","options":{"outputPath":"dist/shop"}}}}}}`),
			want: Settings{Framework: "angular", PackageManager: "npm", InstallCommand: "npm install", BuildCommand: "npm run build", OutputDirectory: "dist/shop/browser", SPA: true},
		},
		{
			name: "angular browser builder uses outputPath as is",
			fsys: files("package.json", `{"scripts":{"build":"ng build"},"devDependencies":{"@angular/cli":"^15"}}`,
				"angular.json", `{"projects":{"lib":{"projectType":"library"},"web":{"projectType":"application","architect":{"build":{"builder":"@angular-devkit/build-angular:browser","options":{"outputPath":"dist/web"}}}}}}`),
			want: Settings{Framework: "angular", PackageManager: "npm", InstallCommand: "npm install", BuildCommand: "npm run build", OutputDirectory: "dist/web", SPA: true},
		},
		{
			name: "angular outputPath object with empty browser",
			fsys: files("package.json", `{"scripts":{"build":"ng build"},"dependencies":{"@angular/core":"^18"}}`,
				"angular.json", `{"projects":{"app":{"projectType":"application","architect":{"build":{"builder":"@angular/build:application","options":{"outputPath":{"base":"www","browser":""}}}}}}}`),
			want: Settings{Framework: "angular", PackageManager: "npm", InstallCommand: "npm install", BuildCommand: "npm run build", OutputDirectory: "www", SPA: true},
		},
		{
			name:  "angular without angular.json guesses",
			fsys:  files("package.json", `{"name":"@acme/shop","scripts":{"build":"ng build"},"dependencies":{"@angular/core":"^17.0.0"}}`),
			want:  Settings{Framework: "angular", PackageManager: "npm", InstallCommand: "npm install", BuildCommand: "npm run build", OutputDirectory: "dist/shop/browser", SPA: true},
			notes: []string{"angular.json not found"},
		},
		{
			name: "svelte with rollup publishes public",
			fsys: files("package.json", `{"scripts":{"build":"rollup -c"},"devDependencies":{"svelte":"^3","rollup":"^2"}}`),
			want: Settings{Framework: "svelte", PackageManager: "npm", InstallCommand: "npm install", BuildCommand: "npm run build", OutputDirectory: "public", SPA: true},
		},
		{
			name: "svelte with vite publishes dist",
			fsys: files("package.json", `{"scripts":{"build":"vite build"},"devDependencies":{"svelte":"^4","vite":"^5","@sveltejs/vite-plugin-svelte":"^3"}}`),
			want: Settings{Framework: "svelte", PackageManager: "npm", InstallCommand: "npm install", BuildCommand: "npm run build", OutputDirectory: "dist", SPA: true},
		},
		{
			name: "sveltekit with adapter-static",
			fsys: files("package.json", `{"scripts":{"build":"vite build"},"devDependencies":{"@sveltejs/kit":"^2","@sveltejs/adapter-static":"^3","svelte":"^4","vite":"^5"}}`),
			want: Settings{Framework: "svelte", PackageManager: "npm", InstallCommand: "npm install", BuildCommand: "npm run build", OutputDirectory: "build"},
		},
		{
			name:  "sveltekit without adapter-static",
			fsys:  files("package.json", `{"scripts":{"build":"vite build"},"devDependencies":{"@sveltejs/kit":"^2","@sveltejs/adapter-auto":"^3","vite":"^5"}}`),
			want:  Settings{Framework: "svelte", PackageManager: "npm", InstallCommand: "npm install", BuildCommand: "npm run build", OutputDirectory: "build"},
			notes: []string{"adapter-static"},
		},
		{
			name: "docusaurus",
			fsys: files("package.json", `{"scripts":{"build":"docusaurus build"},"dependencies":{"@docusaurus/core":"3.1.0","react":"18"}}`),
			want: Settings{Framework: "docusaurus", PackageManager: "npm", InstallCommand: "npm install", BuildCommand: "npm run build", OutputDirectory: "build"},
		},
		{
			name: "vuepress builds into its source directory",
			fsys: files("package.json", `{"scripts":{"build":"vuepress build src"},"devDependencies":{"vuepress":"^1.9"}}`),
			want: Settings{Framework: "vuepress", PackageManager: "npm", InstallCommand: "npm install", BuildCommand: "npm run build", OutputDirectory: "src/.vuepress/dist"},
		},
		{
			name: "vuepress 2 with vite bundler",
			fsys: files("package.json", `{"scripts":{"build":"vuepress-vite build docs"},"devDependencies":{"vuepress":"2.0.0-rc.9","@vuepress/bundler-vite":"2.0.0-rc.9","vite":"5"}}`),
			want: Settings{Framework: "vuepress", PackageManager: "npm", InstallCommand: "npm install", BuildCommand: "npm run build", OutputDirectory: "docs/.vuepress/dist"},
		},
		{
			name:  "vuepress without build script",
			fsys:  files("package.json", `{"devDependencies":{"vuepress":"^1.9"}}`, "yarn.lock", ""),
			want:  Settings{Framework: "vuepress", PackageManager: "yarn", InstallCommand: "yarn install --frozen-lockfile", BuildCommand: "yarn vuepress build docs", OutputDirectory: "docs/.vuepress/dist"},
			notes: []string{`no "build" script`},
		},
		{
			name: "astro before vite",
			fsys: files("package.json", `{"scripts":{"build":"astro check && astro build"},"dependencies":{"astro":"^4","vite":"^5","svelte":"^4"}}`),
			want: Settings{Framework: "astro", PackageManager: "npm", InstallCommand: "npm install", BuildCommand: "npm run build", OutputDirectory: "dist"},
		},
		{
			name: "slidev before vite, with its out flag",
			fsys: files("package.json", `{"scripts":{"build":"slidev build --out site"},"dependencies":{"@slidev/cli":"^0.48","vite":"5"}}`),
			want: Settings{Framework: "slidev", PackageManager: "npm", InstallCommand: "npm install", BuildCommand: "npm run build", OutputDirectory: "site", SPA: true},
		},
		{
			name: "node: a build script and no framework",
			fsys: files("package.json", `{"scripts":{"build":"node build.mjs"},"devDependencies":{"esbuild":"0.20"}}`),
			want: Settings{Framework: "node", PackageManager: "npm", InstallCommand: "npm install", BuildCommand: "npm run build", OutputDirectory: "dist"},
		},
		{
			name: "node: vitepress writes into its source directory",
			fsys: files("package.json", `{"scripts":{"build":"vitepress build docs"},"devDependencies":{"vitepress":"^1"}}`),
			want: Settings{Framework: "node", PackageManager: "npm", InstallCommand: "npm install", BuildCommand: "npm run build", OutputDirectory: "docs/.vitepress/dist"},
		},
		{
			name: "npm-shrinkwrap.json means npm ci",
			fsys: files("package.json", `{"scripts":{"build":"vite build"},"devDependencies":{"vite":"5"}}`, "npm-shrinkwrap.json", "{}"),
			want: Settings{Framework: "vite", PackageManager: "npm", InstallCommand: "npm ci", BuildCommand: "npm run build", OutputDirectory: "dist", SPA: true},
		},
		{
			name:  "several lockfiles: pnpm wins, with a note",
			fsys:  files("package.json", `{"scripts":{"build":"vite build"},"devDependencies":{"vite":"5"}}`, "package-lock.json", "{}", "yarn.lock", "", "pnpm-lock.yaml", ""),
			want:  Settings{Framework: "vite", PackageManager: "pnpm", InstallCommand: "pnpm install --frozen-lockfile", BuildCommand: "pnpm run build", OutputDirectory: "dist", SPA: true},
			notes: []string{"several lockfiles (pnpm-lock.yaml, yarn.lock, package-lock.json): pnpm is used"},
		},
		{
			name:  "packageManager field wins over lockfiles",
			fsys:  files("package.json", `{"packageManager":"yarn@1.22.19","scripts":{"build":"vite build"},"devDependencies":{"vite":"5"}}`, "package-lock.json", "{}", "yarn.lock", ""),
			want:  Settings{Framework: "vite", PackageManager: "yarn", InstallCommand: "yarn install --frozen-lockfile", BuildCommand: "yarn run build", OutputDirectory: "dist", SPA: true},
			notes: nil,
		},
		{
			name:  "packageManager without its lockfile",
			fsys:  files("package.json", `{"packageManager":"pnpm@9.1.0+sha512.abc","scripts":{"build":"vite build"},"devDependencies":{"vite":"5"}}`, "yarn.lock", ""),
			want:  Settings{Framework: "vite", PackageManager: "pnpm", InstallCommand: "pnpm install", BuildCommand: "pnpm run build", OutputDirectory: "dist", SPA: true},
			notes: []string{"packageManager is pnpm@9.1.0+sha512.abc but only yarn.lock was found"},
		},
		{
			name: "yarn berry installs immutable",
			fsys: files("package.json", `{"packageManager":"yarn@4.1.1","scripts":{"build":"vite build"},"devDependencies":{"vite":"5"}}`, "yarn.lock", ""),
			want: Settings{Framework: "vite", PackageManager: "yarn", InstallCommand: "yarn install --immutable", BuildCommand: "yarn run build", OutputDirectory: "dist", SPA: true},
		},
		{
			name: "yarn berry from .yarnrc.yml",
			fsys: files("package.json", `{"scripts":{"build":"vite build"},"devDependencies":{"vite":"5"}}`, "yarn.lock", "", ".yarnrc.yml", "nodeLinker: node-modules"),
			want: Settings{Framework: "vite", PackageManager: "yarn", InstallCommand: "yarn install --immutable", BuildCommand: "yarn run build", OutputDirectory: "dist", SPA: true},
		},
		{
			name:  "unsupported packageManager falls back to the lockfile",
			fsys:  files("package.json", `{"packageManager":"bun@1.1.0","scripts":{"build":"vite build"},"devDependencies":{"vite":"5"}}`),
			want:  Settings{Framework: "vite", PackageManager: "npm", InstallCommand: "npm install", BuildCommand: "npm run build", OutputDirectory: "dist", SPA: true},
			notes: []string{"packageManager bun@1.1.0 is not supported"},
		},
		{
			name: "pnpm monorepo package finds the root lockfile and root .nvmrc",
			fsys: files(
				"package.json", `{"name":"mono","private":true}`,
				"pnpm-lock.yaml", "lockfileVersion: '9.0'",
				"pnpm-workspace.yaml", "packages: ['packages/*']",
				".nvmrc", "lts/iron\n",
				"packages/web/package.json", `{"scripts":{"build":"vite build"},"devDependencies":{"vite":"5"}}`,
				"packages/docs/package.json", `{"scripts":{"build":"docusaurus build"},"dependencies":{"@docusaurus/core":"3"}}`,
			),
			rootDir: "./packages/web/",
			want:    Settings{Framework: "vite", PackageManager: "pnpm", InstallCommand: "pnpm install --frozen-lockfile", BuildCommand: "pnpm run build", OutputDirectory: "dist", NodeVersion: "lts/iron", SPA: true},
		},
		{
			name: "yarn workspace package takes packageManager from the workspace root",
			fsys: files(
				"package.json", `{"private":true,"workspaces":["apps/*"],"packageManager":"yarn@3.6.0"}`,
				"yarn.lock", "",
				"apps/site/package.json", `{"scripts":{"build":"react-scripts build"},"dependencies":{"react-scripts":"5"}}`,
			),
			rootDir: "apps/site",
			want:    Settings{Framework: "create-react-app", PackageManager: "yarn", InstallCommand: "yarn install --immutable", BuildCommand: "yarn run build", OutputDirectory: "build", SPA: true},
		},
		{
			name: "a lockfile in the package beats the root's",
			fsys: files("yarn.lock", "", "web/package-lock.json", "{}",
				"web/package.json", `{"scripts":{"build":"vite build"},"devDependencies":{"vite":"5"}}`),
			rootDir: "web",
			want:    Settings{Framework: "vite", PackageManager: "npm", InstallCommand: "npm ci", BuildCommand: "npm run build", OutputDirectory: "dist", SPA: true},
		},
		{
			name:    "node version: project .nvmrc beats the root's",
			fsys:    files(".nvmrc", "18", "web/.nvmrc", "# pinned\nv20.11.1\n", "web/package.json", `{"engines":{"node":">=16"}}`),
			rootDir: "web",
			want:    Settings{Framework: "static", OutputDirectory: ".", NodeVersion: "v20.11.1"},
			notes:   []string{"neither a build script"},
		},
		{
			name:  "node version: .node-version",
			fsys:  files(".node-version", "22.2.0\n", "package.json", `{"engines":{"node":">=16"}}`),
			want:  Settings{Framework: "static", OutputDirectory: ".", NodeVersion: "22.2.0"},
			notes: []string{"neither a build script"},
		},
		{
			name:  "node version: engines.node",
			fsys:  files("package.json", "\ufeff"+`{"engines":{"node":" >=18.17 "},"scripts":{"build":"vite build"},"devDependencies":{"vite":"5"}}`, ".nvmrc", "\n\n"),
			want:  Settings{Framework: "vite", PackageManager: "npm", InstallCommand: "npm install", BuildCommand: "npm run build", OutputDirectory: "dist", NodeVersion: ">=18.17", SPA: true},
			notes: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Detect(tt.fsys, tt.rootDir)
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			notes := got.Notes
			got.Notes = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Detect =\n%+v\nwant\n%+v", got, tt.want)
			}
			if len(notes) != len(tt.notes) {
				t.Fatalf("notes = %q, want %d containing %q", notes, len(tt.notes), tt.notes)
			}
			for i, want := range tt.notes {
				if !strings.Contains(notes[i], want) {
					t.Errorf("note %d = %q, want it to contain %q", i, notes[i], want)
				}
			}
		})
	}
}

func TestDetectErrors(t *testing.T) {
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		rootDir string
		is      error
		msg     []string
	}{
		{
			name:    "broken package.json names the file and line",
			fsys:    files("packages/web/package.json", "{\n  \"name\": \"web\",\n  \"scripts\": {\n}}\n}"),
			rootDir: "packages/web",
			is:      ErrInvalidPackageJSON,
			msg:     []string{"packages/web/package.json", "line 5"},
		},
		{
			name: "package.json with a wrongly typed field",
			fsys: files("package.json", `{"dependencies":["vite"]}`),
			is:   ErrInvalidPackageJSON,
			msg:  []string{"package.json", `"dependencies"`},
		},
		{
			name: "package.json that is not an object",
			fsys: files("package.json", `[1]`),
			is:   ErrInvalidPackageJSON,
			msg:  []string{"expected an object"},
		},
		{
			name:    "broken workspace root package.json",
			fsys:    files("package.json", "{", "yarn.lock", "", "web/package.json", `{"scripts":{"build":"vite build"}}`),
			rootDir: "web",
			is:      ErrInvalidPackageJSON,
			msg:     []string{"package.json"},
		},
		{name: "parent directory", fsys: files("index.html", ""), rootDir: "../other", is: ErrInvalidRootDir, msg: []string{"../other"}},
		{name: "parent inside", fsys: files("index.html", ""), rootDir: "web/../../x", is: ErrInvalidRootDir},
		{name: "absolute", fsys: files("index.html", ""), rootDir: "/srv/www", is: ErrInvalidRootDir, msg: []string{"relative"}},
		{name: "windows absolute", fsys: files("index.html", ""), rootDir: `C:\www`, is: ErrInvalidRootDir},
		{name: "missing root directory", fsys: files("index.html", ""), rootDir: "web", is: fs.ErrNotExist, msg: []string{"root directory web not found"}},
		{name: "root directory is a file", fsys: files("web", ""), rootDir: "web"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Detect(tt.fsys, tt.rootDir)
			if err == nil {
				t.Fatal("Detect succeeded, want an error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			for _, m := range tt.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not contain %q", err, m)
				}
			}
		})
	}
}

func TestCleanRootDir(t *testing.T) {
	for in, want := range map[string]string{"": ".", ".": ".", "./": ".", "web": "web", "packages/web/": "packages/web", "./a//b": "a/b", "a/./b": "a/b"} {
		got, err := CleanRootDir(in)
		if err != nil || got != want {
			t.Errorf("CleanRootDir(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestNodeMajor(t *testing.T) {
	tests := []struct {
		in    string
		major int
		ok    bool
	}{
		{"20", 20, true},
		{"v20.11.1", 20, true},
		{" 18.19.0\n", 18, true},
		{"20.x", 20, true},
		{"lts/iron", 20, true},
		{"lts/hydrogen", 18, true},
		{"lts/gallium", 16, true},
		{"lts/jod", 22, true},
		{"LTS/Iron", 20, true},
		{"iron", 20, true},
		{">=18", 18, true},
		{">= 18.17.0", 18, true},
		{"^20.0.0", 20, true},
		{"~16.14", 16, true},
		{">=18 <21", 18, true},
		{"18 || 20", 18, true},
		{"lts/*", 0, false},
		{"lts/unknown", 0, false},
		{"node", 0, false},
		{"latest", 0, false},
		{"<20", 0, false},
		{"*", 0, false},
		{"", 0, false},
		{"20abc", 0, false},
		{"99999", 0, false},
	}
	for _, tt := range tests {
		major, ok := NodeMajor(tt.in)
		if major != tt.major || ok != tt.ok {
			t.Errorf("NodeMajor(%q) = %d, %v; want %d, %v", tt.in, major, ok, tt.major, tt.ok)
		}
	}
}
