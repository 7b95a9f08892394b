package oss

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// hashCacheHeader opens every hash cache file, so a file of another format is rejected, not misread.
const hashCacheHeader = "miaobu-hashcache 2"

// cacheKey identifies a file state whose MD5 is already known: a file with the same path, size
// and modification time is assumed to hold the same bytes, as make and rsync assume. The inode and
// change time guard against builds that pin modification times (reproducible builds set them all
// to one value), where an edit of the same length would otherwise go unseen.
type cacheKey struct {
	path  string
	size  int64
	mtime int64 // nanoseconds since the Unix epoch
	ctime int64 // nanoseconds since the Unix epoch, zero where unknown
	ino   uint64
}

// hashCache maps file states to their MD5.
type hashCache map[cacheKey][16]byte

// parseHashCache reads the cache format: a header line, then one line per file with the hex MD5,
// the size, the modification and change times in nanoseconds, the inode and the Go-quoted
// site-relative path.
func parseHashCache(data []byte) (hashCache, error) {
	c := hashCache{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	if !sc.Scan() || sc.Text() != hashCacheHeader {
		return nil, errors.New("not a hash cache file")
	}
	line := 1
	for sc.Scan() {
		line++
		fields := strings.SplitN(sc.Text(), " ", 6)
		if len(fields) != 6 {
			return nil, fmt.Errorf("line %d: want 6 fields", line)
		}
		var sum [16]byte
		if len(fields[0]) != 32 {
			return nil, fmt.Errorf("line %d: bad md5", line)
		}
		if _, err := hex.Decode(sum[:], []byte(fields[0])); err != nil {
			return nil, fmt.Errorf("line %d: bad md5", line)
		}
		size, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("line %d: bad size", line)
		}
		mtime, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: bad modification time", line)
		}
		ctime, err := strconv.ParseInt(fields[3], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: bad change time", line)
		}
		ino, err := strconv.ParseUint(fields[4], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: bad inode", line)
		}
		p, err := strconv.Unquote(fields[5])
		if err != nil {
			return nil, fmt.Errorf("line %d: bad path", line)
		}
		c[cacheKey{p, size, mtime, ctime, ino}] = sum
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// encode writes the cache in the format parseHashCache reads, sorted so equal caches give equal bytes.
func (c hashCache) encode() []byte {
	keys := make([]cacheKey, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b cacheKey) int {
		return cmp.Or(strings.Compare(a.path, b.path), cmp.Compare(a.size, b.size), cmp.Compare(a.mtime, b.mtime),
			cmp.Compare(a.ctime, b.ctime), cmp.Compare(a.ino, b.ino))
	})
	var b bytes.Buffer
	b.WriteString(hashCacheHeader + "\n")
	for _, k := range keys {
		sum := c[k]
		fmt.Fprintf(&b, "%s %d %d %d %d %s\n", hex.EncodeToString(sum[:]), k.size, k.mtime, k.ctime, k.ino, strconv.Quote(k.path))
	}
	return b.Bytes()
}

// loadHashCache reads the cache at path; a missing or unreadable cache is empty, as it only saves time.
func loadHashCache(path string) hashCache {
	if path == "" {
		return hashCache{}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return hashCache{}
	}
	c, err := parseHashCache(data)
	if err != nil {
		return hashCache{}
	}
	return c
}

// saveHashCache replaces the cache at path atomically, readable only by its owner.
func saveHashCache(path string, c hashCache) error {
	if path == "" {
		return nil
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".hashcache-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(c.encode()); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
