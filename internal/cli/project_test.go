package cli

import (
	"errors"
	"testing"
)

func TestNewCmdProjectSet(t *testing.T) {
	t.Parallel()
	got, err := parse(t, newCmdProjectSet, "site", "--build-command", "", "--branch", "trunk", "--json")
	if err != nil {
		t.Fatal(err)
	}
	u := got.Update
	if got.Project != "site" || !got.JSON || u.BuildCommand == nil || *u.BuildCommand != "" || u.Branch == nil || *u.Branch != "trunk" ||
		u.Target != nil || u.InstallCommand != nil || u.OutputDirectory != nil || u.RootDirectory != nil {
		t.Fatalf("options %+v: only the given settings are sent, an empty one as empty", got)
	}
	if got, err = parse(t, newCmdProjectSet, "site"); got != nil || !errors.As(err, new(usageError)) ||
		err.Error() != "nothing to change: give at least one setting flag" {
		t.Fatalf("set without a setting: ran %v, error %v", got != nil, err)
	}
}

func TestNewCmdProjectAdd(t *testing.T) {
	t.Parallel()
	got, err := parse(t, newCmdProjectAdd, "Docs Site", "--repo-url", "git@example.com:docs.git", "--output-dir", "public", "--target", "oss")
	if err != nil || got.Name != "Docs Site" || got.RepoURL != "git@example.com:docs.git" || got.Build.outputDir != "public" || got.Build.target != "oss" {
		t.Fatalf("options %+v, error %v", got, err)
	}
	if got, err = parse(t, newCmdProjectAdd, "docs"); got != nil || !errors.As(err, new(usageError)) || err.Error() != "--repo-url is required" {
		t.Fatalf("add without --repo-url: ran %v, error %v", got != nil, err)
	}
}
