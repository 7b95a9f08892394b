package oss

import (
	"maps"
	"os"
	"path/filepath"
	"testing"
)

func TestHashCacheRoundTrip(t *testing.T) {
	t.Parallel()
	c := hashCache{
		{"index.html", 12, 1700000000123456789, 1700000000123456790, 42}: {1, 2, 3},
		{"docs/a b+c%41.html", 0, -5, 0, 0}:                              {0xff},
		{"odd\nname \"quoted\".txt", 1 << 40, 0, 1, 1 << 63}:             {9, 9, 9},
		{"日本語/ページ.html", 7, 1, 1, 7}:                                     {7},
	}
	path := filepath.Join(t.TempDir(), "sub", "hashes")
	if err := saveHashCache(path, c); err != nil {
		t.Fatal(err)
	}
	if got := loadHashCache(path); !maps.Equal(got, c) {
		t.Errorf("loaded %v, want %v", got, c)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", info.Mode().Perm())
	}
}

func TestHashCacheRejectsDamage(t *testing.T) {
	t.Parallel()
	for _, data := range []string{
		"",
		"something else\n",
		hashCacheHeader + "\nnot enough fields\n",
		hashCacheHeader + "\nzz000000000000000000000000000000 1 1 1 1 \"a\"\n",
		hashCacheHeader + "\n00000000000000000000000000000000 -1 1 1 1 \"a\"\n",
		hashCacheHeader + "\n00000000000000000000000000000000 1 1 1 -1 \"a\"\n",
		hashCacheHeader + "\n00000000000000000000000000000000 1 1 1 1 unquoted\n",
		"miaobu-hashcache 1\n00000000000000000000000000000000 1 1 \"a\"\n",
	} {
		if _, err := parseHashCache([]byte(data)); err == nil {
			t.Errorf("parseHashCache(%q) succeeded", data)
		}
	}
	path := filepath.Join(t.TempDir(), "hashes")
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c := loadHashCache(path); len(c) != 0 {
		t.Errorf("a damaged cache loaded %d entries", len(c))
	}
}

func FuzzParseHashCache(f *testing.F) {
	f.Add(hashCache{{"a b.html", 3, 4, 5, 6}: {1}}.encode())
	f.Add([]byte(hashCacheHeader + "\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseHashCache(data)
		if err != nil {
			return
		}
		again, err := parseHashCache(c.encode())
		if err != nil {
			t.Fatalf("re-parsing an encoded cache: %v", err)
		}
		if !maps.Equal(c, again) {
			t.Fatalf("round trip changed the cache: %v != %v", c, again)
		}
	})
}
