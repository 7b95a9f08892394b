package store

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// iterateFixture fills a bucket with JSON values under keys that share and straddle prefixes, and
// an index bucket with empty values.
func iterateFixture(t *testing.T, s *Store) {
	t.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error {
		values, err := tx.CreateBucket([]byte("test_values"))
		if err != nil {
			return err
		}
		for _, k := range []string{"a", "b\x00", "b\x01", "b\xff", "b\xff\x01", "c"} {
			if err := put(values, []byte(k), fmt.Sprintf("value of %q", k)); err != nil {
				return err
			}
		}
		index, err := tx.CreateBucket([]byte("test_index"))
		if err != nil {
			return err
		}
		for _, k := range []string{"x1", "x2", "y1"} {
			if err := index.Put([]byte(k), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestIterate(t *testing.T) {
	s, _ := openTest(t)
	iterateFixture(t, s)
	for _, tc := range []struct {
		prefix            string
		forward, backward []string
	}{
		{"", []string{"a", "b\x00", "b\x01", "b\xff", "b\xff\x01", "c"}, []string{"c", "b\xff\x01", "b\xff", "b\x01", "b\x00", "a"}},
		{"b", []string{"b\x00", "b\x01", "b\xff", "b\xff\x01"}, []string{"b\xff\x01", "b\xff", "b\x01", "b\x00"}},
		{"b\xff", []string{"b\xff", "b\xff\x01"}, []string{"b\xff\x01", "b\xff"}},
		{"c", []string{"c"}, []string{"c"}},
		{"bb", nil, nil},
		{"d", nil, nil},
	} {
		var prefix []byte
		if tc.prefix != "" {
			prefix = []byte(tc.prefix)
		}
		for _, walk := range []struct {
			name string
			fn   func(*bolt.Bucket, []byte, func([]byte, string) (bool, error)) error
			want []string
		}{{"iterate", iterate[string], tc.forward}, {"iterateBackward", iterateBackward[string], tc.backward}} {
			var keys []string
			err := s.db.View(func(tx *bolt.Tx) error {
				return walk.fn(tx.Bucket([]byte("test_values")), prefix, func(k []byte, v string) (bool, error) {
					if want := fmt.Sprintf("value of %q", k); v != want {
						return false, fmt.Errorf("key %q decoded to %q, want %q", k, v, want)
					}
					keys = append(keys, string(k))
					return true, nil
				})
			})
			if err != nil || !slices.Equal(keys, walk.want) {
				t.Errorf("%s(%q) visited %q (%v), want %q", walk.name, tc.prefix, keys, err, walk.want)
			}
		}
	}
}

func TestIterateStopsAndFails(t *testing.T) {
	s, _ := openTest(t)
	iterateFixture(t, s)
	var keys []string
	boom := errors.New("boom")
	err := s.db.View(func(tx *bolt.Tx) error {
		index := tx.Bucket([]byte("test_index"))
		if err := iterate(index, []byte("x"), func(k []byte, _ struct{}) (bool, error) {
			keys = append(keys, string(k))
			return false, nil
		}); err != nil {
			return err
		}
		return iterate(index, nil, func([]byte, struct{}) (bool, error) { return true, boom })
	})
	if !errors.Is(err, boom) || !slices.Equal(keys, []string{"x1"}) {
		t.Fatalf("visited %q, error %v; want only x1, then boom", keys, err)
	}
	// Index values are empty: decoding them as records is an error, not a zero value.
	err = s.db.View(func(tx *bolt.Tx) error {
		return iterate(tx.Bucket([]byte("test_index")), nil, func([]byte, string) (bool, error) { return true, nil })
	})
	if err == nil {
		t.Fatal("empty values decoded as strings without an error")
	}
}

func TestPrefixEnd(t *testing.T) {
	for in, want := range map[string]string{"": "", "a": "b", "a\xff": "b", "\xff\xff": "", "a\x00": "a\x01"} {
		if got := string(prefixEnd([]byte(in))); got != want {
			t.Errorf("prefixEnd(%q) = %q, want %q", in, got, want)
		}
	}
}
