package store

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// useMigrations makes Open run steps instead of the real migrations until the test ends.
func useMigrations(t *testing.T, steps []migration) {
	t.Helper()
	saved := migrations
	migrations = steps
	t.Cleanup(func() { migrations = saved })
}

// reopen opens the store in dir, failing the test on an error, and closes it when the test ends.
func reopen(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// recordedVersion returns the schema version stored in s.
func recordedVersion(t *testing.T, s *Store) string {
	t.Helper()
	var v string
	if err := s.db.View(func(tx *bolt.Tx) error {
		v = string(bucket(tx, metaBucket).Get(schemaKey))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

// renameProjects is a migration step that appends suffix to every project's name and logs its version.
func renameProjects(version int, suffix string, ran *[]int) migration {
	return migration{version: version, name: "append " + suffix, apply: func(tx *bolt.Tx) error {
		*ran = append(*ran, version)
		var renamed []Project
		if err := iterate(bucket(tx, projectsBucket), nil, func(_ []byte, p Project) (bool, error) {
			p.Name += suffix
			renamed = append(renamed, p)
			return true, nil
		}); err != nil {
			return err
		}
		for _, p := range renamed {
			if err := put(bucket(tx, projectsBucket), itob(p.ID), &p); err != nil {
				return err
			}
		}
		return nil
	}}
}

// closeStore closes s before the test reopens its directory.
func closeStore(t *testing.T, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMigrationsRunOnceInOrder(t *testing.T) {
	useMigrations(t, nil)
	s, dir := openTest(t)
	if v := recordedVersion(t, s); v != "1" {
		t.Fatalf("a new store records schema version %q, want 1", v)
	}
	p := newProject(t, s, "site")
	closeStore(t, s)

	var ran []int
	useMigrations(t, []migration{renameProjects(2, "-two", &ran), renameProjects(3, "-three", &ran)})
	s = reopen(t, dir)
	got, err := s.Project(p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ran, []int{2, 3}) || got.Name != "site-two-three" || recordedVersion(t, s) != "3" {
		t.Fatalf("after the upgrade: steps %v, name %q, version %q; want [2 3], site-two-three, 3", ran, got.Name, recordedVersion(t, s))
	}
	closeStore(t, s)

	s = reopen(t, dir)
	if got, _ := s.Project(p.ID); !slices.Equal(ran, []int{2, 3}) || got.Name != "site-two-three" {
		t.Fatalf("reopening ran the steps again: %v, name %q", ran, got.Name)
	}
}

func TestNewStoreSkipsMigrations(t *testing.T) {
	useMigrations(t, []migration{{version: 2, name: "must not run", apply: func(*bolt.Tx) error {
		return errors.New("a new store has nothing to migrate")
	}}})
	s, _ := openTest(t)
	if v := recordedVersion(t, s); v != "2" {
		t.Fatalf("a new store records schema version %q, want the latest, 2", v)
	}
}

func TestFailingMigrationLeavesStoreUnchanged(t *testing.T) {
	useMigrations(t, nil)
	s, dir := openTest(t)
	p := newProject(t, s, "site")
	closeStore(t, s)

	var ran []int
	boom := errors.New("boom")
	useMigrations(t, []migration{renameProjects(2, "-two", &ran),
		{version: 3, name: "fails", apply: func(*bolt.Tx) error { return boom }}})
	_, err := Open(dir, time.Second)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "schema version 3 (fails)") {
		t.Fatalf("open with a failing step: %v", err)
	}
	if !slices.Equal(ran, []int{2}) {
		t.Fatalf("steps run: %v, want [2]", ran)
	}

	migrations = nil
	s = reopen(t, dir)
	got, err := s.Project(p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "site" || recordedVersion(t, s) != "1" {
		t.Fatalf("after the failed upgrade: name %q, version %q; want site, 1", got.Name, recordedVersion(t, s))
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	useMigrations(t, []migration{{version: 2, name: "newer", apply: func(*bolt.Tx) error { return nil }}})
	closeStore(t, reopen(t, dir))

	migrations = nil
	_, err := Open(dir, time.Second)
	if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "schema version is 2 and this miaobu knows versions up to 1") {
		t.Fatalf("open of a newer store: %v", err)
	}
}

func TestMigrationsMustBeConsecutive(t *testing.T) {
	noop := func(*bolt.Tx) error { return nil }
	useMigrations(t, []migration{{version: 2, name: "two", apply: noop}, {version: 4, name: "four", apply: noop}})
	_, err := Open(filepath.Join(t.TempDir(), "data"), time.Second)
	if err == nil || !strings.Contains(err.Error(), `migration "four" has version 4 where 3 belongs`) {
		t.Fatalf("open with a gap in the migrations: %v", err)
	}
}
