package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// migration is one step of the schema: apply converts a store at version-1 into one at version,
// inside the transaction that opens the store.
type migration struct {
	version int
	name    string
	apply   func(tx *bolt.Tx) error
}

// baseSchemaVersion is the first schema version, the layout in the package doc before any migration.
const baseSchemaVersion = 1

// migrations are the schema's steps after the base version, in order. A change to how stored data is
// shaped appends the next version here and updates the package doc; a new bucket needs no step,
// since Open creates the buckets of the current layout on every start.
var migrations = []migration{
	{version: 2, name: "push history for the stale-delivery rule", apply: func(tx *bolt.Tx) error {
		return fillPushHistory(tx.Bucket(rootBucket))
	}},
	{version: 3, name: "production and preview aliases", apply: migrateAliases},
	{version: 4, name: "GitHub deployments already handled", apply: fillGitHubDeployments},
}

// ErrNewerSchema is returned by Open for a store that a newer miaobu has migrated.
var ErrNewerSchema = errors.New("the store was written by a newer miaobu")

// latestVersion returns the schema version that steps lead to.
func latestVersion(steps []migration) int {
	if len(steps) == 0 {
		return baseSchemaVersion
	}
	return steps[len(steps)-1].version
}

// migrate brings the store in tx to the latest schema: it creates the root bucket and the buckets of
// the current layout, runs in order every step newer than the recorded version and records the
// version reached. A new store is recorded at the latest version at once, with nothing to convert.
// Run in one write transaction, a failing step leaves the store as it was.
func migrate(tx *bolt.Tx, steps []migration) error {
	for i, m := range steps {
		if want := baseSchemaVersion + 1 + i; m.version != want {
			return fmt.Errorf("migration %q has version %d where %d belongs", m.name, m.version, want)
		}
	}
	latest := latestVersion(steps)
	root, err := tx.CreateBucketIfNotExists(rootBucket)
	if err != nil {
		return err
	}
	for _, name := range allBuckets {
		if _, err := root.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	meta := root.Bucket(metaBucket)
	current := latest
	if recorded := meta.Get(schemaKey); recorded != nil {
		if current, err = strconv.Atoi(string(recorded)); err != nil || current < baseSchemaVersion {
			return fmt.Errorf("store schema version %q is not one miaobu writes", recorded)
		}
	}
	if current > latest {
		return fmt.Errorf("%w: its schema version is %d and this miaobu knows versions up to %d; run a newer miaobu, or restore a backup this version wrote",
			ErrNewerSchema, current, latest)
	}
	for _, m := range steps[current-baseSchemaVersion:] {
		if err := m.apply(tx); err != nil {
			return fmt.Errorf("migrating the store to schema version %d (%s): %w", m.version, m.name, err)
		}
	}
	return meta.Put(schemaKey, []byte(strconv.Itoa(latest)))
}

// migrateAliases is schema version 3: deployments gain an environment and an alias, all of them so
// far production's (alias ""); the commits and deployed_commits indexes are keyed by alias too;
// projects get the preview settings' defaults. Values are edited as JSON objects, so that the step
// keeps meaning what it means whatever the types become later.
func migrateAliases(tx *bolt.Tx) error {
	if err := editObjects(bucket(tx, deploymentsBucket), func(d map[string]json.RawMessage) {
		d["environment"] = json.RawMessage(`"production"`)
	}); err != nil {
		return err
	}
	if err := editObjects(bucket(tx, projectsBucket), func(p map[string]json.RawMessage) {
		p["pr_previews"] = json.RawMessage(`true`)
		p["fork_previews"] = json.RawMessage(`"approve"`)
	}); err != nil {
		return err
	}
	for _, name := range [][]byte{commitsBucket, deployedCommitsBucket} {
		b := bucket(tx, name)
		type entry struct{ key, id []byte }
		var old []entry
		err := iterate(b, nil, func(k []byte, _ struct{}) (bool, error) {
			// A key without alias is project id ‖ commit SHA: hex, no NUL after the id.
			if len(k) > 8 && k[8] != 0 {
				old = append(old, entry{append([]byte(nil), k...), append([]byte(nil), b.Get(k)...)})
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		for _, e := range old {
			if err := b.Delete(e.key); err != nil {
				return err
			}
			if err := b.Put(commitKey(btoi(e.key[:8]), "", string(e.key[8:])), e.id); err != nil {
				return err
			}
		}
	}
	return nil
}

// fillGitHubDeployments is schema version 4: the GitHub deployments that deployments were built for
// are recorded as handled.
func fillGitHubDeployments(tx *bolt.Tx) error {
	handled := bucket(tx, githubDeploymentsBucket)
	return iterate(bucket(tx, deploymentsBucket), nil, func(_ []byte, d Deployment) (bool, error) {
		if d.Trigger != TriggerGitHubDeployment || d.GitHubDeploymentID == 0 {
			return true, nil
		}
		return true, handled.Put(pairKey(d.ProjectID, d.GitHubDeploymentID), itob(d.ID))
	})
}

// editObjects rewrites every value of b, a JSON object, with edit.
func editObjects(b *bolt.Bucket, edit func(map[string]json.RawMessage)) error {
	type entry struct {
		key   []byte
		value map[string]json.RawMessage
	}
	var edited []entry
	err := iterate(b, nil, func(k []byte, v map[string]json.RawMessage) (bool, error) {
		edit(v)
		edited = append(edited, entry{append([]byte(nil), k...), v})
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, e := range edited {
		if err := put(b, e.key, e.value); err != nil {
			return err
		}
	}
	return nil
}
