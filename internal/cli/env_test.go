package cli

import (
	"errors"
	"maps"
	"slices"
	"testing"
)

func TestNewCmdEnvSet(t *testing.T) {
	t.Parallel()
	got, err := parse(t, newCmdEnvSet, "site", "API_URL=https://api.example.com/?a=b", "EMPTY=")
	want := map[string]string{"API_URL": "https://api.example.com/?a=b", "EMPTY": ""}
	if err != nil || got.Project != "site" || !maps.Equal(got.Vars, want) {
		t.Fatalf("options %+v, error %v", got, err)
	}
	for _, args := range [][]string{{"site", "NOVALUE"}, {"site", "=x"}, {"site"}} {
		if got, err := parse(t, newCmdEnvSet, args...); got != nil || !errors.As(err, new(usageError)) {
			t.Errorf("%q: ran %v, error %v, want a usage error", args, got != nil, err)
		}
	}
}

func TestNewCmdEnvUnset(t *testing.T) {
	t.Parallel()
	got, err := parse(t, newCmdEnvUnset, "site", "A", "B")
	if err != nil || got.Project != "site" || !slices.Equal(got.Names, []string{"A", "B"}) {
		t.Fatalf("options %+v, error %v", got, err)
	}
}
