package cli

import (
	"errors"
	"testing"
)

func TestNewCmdDeploymentList(t *testing.T) {
	t.Parallel()
	got, err := parse(t, newCmdDeploymentList)
	if err != nil || got.Project != "" || got.Limit != 20 || got.JSON {
		t.Fatalf("defaults: %+v %v", got, err)
	}
	if got, err = parse(t, newCmdDeploymentList, "site", "--limit", "5", "--json"); err != nil || got.Project != "site" || got.Limit != 5 || !got.JSON {
		t.Fatalf("list site --limit 5 --json: %+v %v", got, err)
	}
	if got, err = parse(t, newCmdDeploymentList, "--limit", "0"); got != nil || !errors.As(err, new(usageError)) || err.Error() != "--limit must be at least 1" {
		t.Fatalf("--limit 0: ran %v, error %v", got != nil, err)
	}
}

func TestNewCmdDeploymentLogs(t *testing.T) {
	t.Parallel()
	got, err := parse(t, newCmdDeploymentLogs, "12", "-f")
	if err != nil || got.ID != "12" || !got.Follow {
		t.Fatalf("logs 12 -f: %+v %v", got, err)
	}
	if got, err = parse(t, newCmdDeploymentLogs, "site"); got != nil || !errors.As(err, new(usageError)) || err.Error() != `deployment id must be a number, not "site"` {
		t.Fatalf("logs site: ran %v, error %v", got != nil, err)
	}
}
