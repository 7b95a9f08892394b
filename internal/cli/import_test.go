package cli

import (
	"errors"
	"testing"
)

func TestNewCmdImport(t *testing.T) {
	t.Parallel()
	got, err := parse(t, newCmdImport, "acme/site.git", "--no-webhook", "--name", "Site", "--build-command", "make")
	if err != nil || got.Owner != "acme" || got.Repo != "site" || !got.NoWebhook || got.NoDeploy || got.Name != "Site" || got.Build.buildCommand != "make" {
		t.Fatalf("options %+v, error %v", got, err)
	}
	for _, arg := range []string{"site", "acme/", "/site", "acme/site/extra"} {
		if got, err := parse(t, newCmdImport, arg); got != nil || !errors.As(err, new(usageError)) {
			t.Errorf("import %q: ran %v, error %v, want a usage error", arg, got != nil, err)
		}
	}
}
