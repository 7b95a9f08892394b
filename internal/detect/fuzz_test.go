package detect

import (
	"errors"
	"io/fs"
	"slices"
	"testing"
	"testing/fstest"
)

var frameworkIDs = []string{"vite", "create-react-app", "next", "vue-cli", "nuxt", "gatsby", "angular", "svelte",
	"docusaurus", "vuepress", "astro", "slidev", "node", "static"}

func FuzzDetect(f *testing.F) {
	seeds := []string{
		`{}`,
		`{"scripts":{"build":"vite build --outDir"},"devDependencies":{"vite":"^5"}}`,
		`{"scripts":{"build":"vuepress build"},"devDependencies":{"vuepress":"1"}}`,
		`{"scripts":{"build":"vuepress-vite build --dest ../../x"},"devDependencies":{"vuepress":"2"}}`,
		`{"scripts":{"generate":"nuxt generate"},"dependencies":{"nuxt":">=2 <3"}}`,
		`{"name":"@/","dependencies":{"@angular/core":"^17"}}`,
		`{"name":"","dependencies":{"@angular/cli":"x"}}`,
		`{"packageManager":"yarn@","scripts":{"build":"x"}}`,
		`{"packageManager":"@@","engines":{"node":"lts/"}}`,
		`{"scripts":{"build":"slidev build -o"},"dependencies":{"@slidev/cli":"0"}}`,
		`{"scripts":{"build":"&&||;"},"dependencies":{"svelte":""}}`,
		`{"dependencies":null,"devDependencies":{"@vitejs/plugin-vue":"5"}}`,
		`null`,
		`"string"`,
		`{"scripts":{"build":1}}`,
		"\ufeff{}",
		`{`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), []byte(`{"projects":{"a":{"architect":{"build":{"builder":"x:application","options":{"outputPath":{"base":"../.."}}}}}}}`))
	}
	f.Add([]byte(`{"dependencies":{"@angular/core":"17"}}`), []byte(`{"projects":{"a":{"architect":{"build":{"options":{"outputPath":"/abs"}}}}}}`))
	f.Add([]byte(`{"dependencies":{"@angular/core":"17"}}`), []byte(`{"projects":{"":{"targets":{"build":{"options":{"outputPath":7}}}}}}`))
	f.Fuzz(func(t *testing.T, pkg, angular []byte) {
		fsys := fstest.MapFS{
			"web/package.json": &fstest.MapFile{Data: pkg},
			"web/angular.json": &fstest.MapFile{Data: angular},
			"pnpm-lock.yaml":   &fstest.MapFile{},
		}
		s, err := Detect(fsys, "web")
		if err != nil {
			if !errors.Is(err, ErrInvalidPackageJSON) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if !slices.Contains(frameworkIDs, s.Framework) {
			t.Fatalf("framework %q is not a contract id", s.Framework)
		}
		if !fs.ValidPath(s.OutputDirectory) {
			t.Fatalf("output directory %q leaves the project", s.OutputDirectory)
		}
		if (s.Framework == "static") != (s.BuildCommand == "") {
			t.Fatalf("framework %q with build command %q", s.Framework, s.BuildCommand)
		}
	})
}
