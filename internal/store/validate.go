package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// DamagedError says that the store file cannot be trusted and how to restore it; Open returns it
// instead of starting over a store that was lost or damaged.
type DamagedError struct {
	Path   string
	Reason string // what is wrong with the file, e.g. "is empty (0 bytes)"
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("store %s %s, so the agent will not start over it: to restore a backup made with `miaobu backup FILE`, put that file in place of %s (with the agent stopped) and start the agent",
		e.Path, e.Reason, e.Path)
}

// damaged returns a *DamagedError for the store file at path, its reason formatted.
func damaged(path, format string, args ...any) error {
	return &DamagedError{Path: path, Reason: fmt.Sprintf(format, args...)}
}

// checkExisting looks through an existing store file before it is opened for writing: bbolt
// initialises an empty file as a new store, faults on pages cut off by a truncation and panics, in a
// goroutine no caller can recover, on pages that are garbage. It returns a *DamagedError for such a
// file, and nil for one that is sound or missing.
func checkExisting(path string, timeout time.Duration) error {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening store: %w", err)
	}
	if info.Size() == 0 {
		return damaged(path, "is empty (0 bytes)")
	}
	// Read-only, bbolt validates the meta pages and maps the file without walking it.
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return lockedError(path)
	}
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return fmt.Errorf("opening store: %w", err)
	}
	if err != nil {
		return damaged(path, "is damaged (%v)", err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		if need := tx.Size(); need > info.Size() {
			return damaged(path, "is truncated (%d bytes, but its pages need %d)", info.Size(), need)
		}
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("opening store: %w", err)
		}
		defer f.Close()
		pageSize := db.Info().PageSize
		w := &pageWalker{file: f, pageSize: pageSize, highWater: uint64(tx.Size()) / uint64(pageSize), seen: map[uint64]bool{}}
		if _, err := w.page(uint64(tx.Cursor().Bucket().Root()), nil, nil); err != nil {
			return damaged(path, "is damaged (%v)", err)
		}
		if first, _ := tx.Cursor().First(); first != nil && tx.Bucket(rootBucket) == nil {
			return damaged(path, "is not a miaobu store (it has no %q bucket)", rootBucket)
		}
		return nil
	})
}

// The parts of bbolt's file format (version 2) that pageWalker checks; numbers are in the byte
// order of the machine, as bbolt writes them.
const (
	pageHeaderSize   = 16 // id uint64, flags uint16, count uint16, overflow uint32
	elementSize      = 16 // branch: pos, ksize uint32, child pgid uint64; leaf: flags, pos, ksize, vsize uint32
	bucketHeaderSize = 16 // root pgid uint64 (0: the bucket's page follows inline), sequence uint64
	branchPage       = 0x01
	leafPage         = 0x02
	bucketElement    = 0x01
)

// pageWalker checks, reading the file rather than mapping it, every page that bbolt follows from a
// bucket: that it lies within the pages in use, says it is the page it was reached as, is a branch
// or a leaf, is reached once, that its elements, keys and values lie inside it, and that keys are in
// order. Where this does not hold, bbolt reads wild memory or crashes in a goroutine of its own.
type pageWalker struct {
	file      io.ReaderAt
	pageSize  int
	highWater uint64 // the pages in use are 0 up to here
	seen      map[uint64]bool
}

// page checks page id and the pages below it, whose keys must lie in [low, high) (nil: unbounded),
// and returns the largest key below it.
func (w *pageWalker) page(id uint64, low, high []byte) ([]byte, error) {
	if id < 2 || id >= w.highWater {
		return nil, fmt.Errorf("a reference to page %d, outside the %d pages in use", id, w.highWater)
	}
	buf := make([]byte, w.pageSize)
	if _, err := w.file.ReadAt(buf, int64(id)*int64(w.pageSize)); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	if self := binary.NativeEndian.Uint64(buf); self != id {
		return nil, fmt.Errorf("page %d says it is page %d", id, self)
	}
	overflow := uint64(binary.NativeEndian.Uint32(buf[12:]))
	if overflow >= w.highWater-id {
		return nil, fmt.Errorf("page %d runs past the %d pages in use", id, w.highWater)
	}
	for p := id; p <= id+overflow; p++ {
		if w.seen[p] {
			return nil, fmt.Errorf("page %d is reached twice", p)
		}
		w.seen[p] = true
	}
	if overflow > 0 {
		buf = make([]byte, (overflow+1)*uint64(w.pageSize))
		if _, err := w.file.ReadAt(buf, int64(id)*int64(w.pageSize)); err != nil {
			return nil, fmt.Errorf("page %d: %w", id, err)
		}
	}
	return w.elements(buf, id, low, high)
}

// elements checks the elements of a page held in buf (page id, or an inline bucket's page inside
// it) as page does.
func (w *pageWalker) elements(buf []byte, id uint64, low, high []byte) ([]byte, error) {
	if len(buf) < pageHeaderSize {
		return nil, fmt.Errorf("page %d is cut short", id)
	}
	flags, count := binary.NativeEndian.Uint16(buf[8:]), int(binary.NativeEndian.Uint16(buf[10:]))
	if flags != branchPage && flags != leafPage || flags == branchPage && count == 0 {
		return nil, fmt.Errorf("page %d is neither a branch nor a leaf (flags %#x, %d elements)", id, flags, count)
	}
	if pageHeaderSize+count*elementSize > len(buf) {
		return nil, fmt.Errorf("page %d: %d elements do not fit in it", id, count)
	}
	keys, values := make([][]byte, count), make([][]byte, count)
	for i := range count {
		at := pageHeaderSize + i*elementSize
		e := buf[at : at+elementSize]
		var err error
		if flags == branchPage {
			keys[i], _, err = element(buf, id, at, e[0:], e[4:], nil)
		} else {
			keys[i], values[i], err = element(buf, id, at, e[4:], e[8:], e[12:])
		}
		if err != nil {
			return nil, err
		}
	}
	// The same rules, and the same largest key of a subtree, as bbolt's own check.
	var largest []byte
	last := low
	for i, key := range keys {
		if i == 0 && last != nil && bytes.Compare(last, key) > 0 || i > 0 && bytes.Compare(last, key) >= 0 ||
			high != nil && bytes.Compare(key, high) >= 0 {
			return nil, fmt.Errorf("page %d: key %d is out of order", id, i)
		}
		e := buf[pageHeaderSize+i*elementSize:]
		if flags == branchPage {
			next := high
			if i+1 < count {
				next = keys[i+1]
			}
			sub, err := w.page(binary.NativeEndian.Uint64(e[8:]), key, next)
			if err != nil {
				return nil, err
			}
			largest, last = sub, sub
			continue
		}
		largest, last = key, key
		if binary.NativeEndian.Uint32(e)&bucketElement != 0 {
			if err := w.bucket(values[i], id); err != nil {
				return nil, err
			}
		}
	}
	return largest, nil
}

// bucket checks the bucket whose header is value, an element of page id.
func (w *pageWalker) bucket(value []byte, id uint64) error {
	if len(value) < bucketHeaderSize {
		return fmt.Errorf("page %d: a bucket of %d bytes", id, len(value))
	}
	var err error
	if root := binary.NativeEndian.Uint64(value); root != 0 {
		_, err = w.page(root, nil, nil)
	} else {
		_, err = w.elements(value[bucketHeaderSize:], id, nil, nil)
	}
	return err
}

// element returns the key and value of the element at offset at of buf, checking that they lie
// inside it; pos, ksize and vsize point at the element's fields (vsize nil for a branch element).
func element(buf []byte, id uint64, at int, pos, ksize, vsize []byte) (key, value []byte, err error) {
	start := uint64(at) + uint64(binary.NativeEndian.Uint32(pos))
	keyEnd := start + uint64(binary.NativeEndian.Uint32(ksize))
	end := keyEnd
	if vsize != nil {
		end += uint64(binary.NativeEndian.Uint32(vsize))
	}
	if end > uint64(len(buf)) {
		return nil, nil, fmt.Errorf("page %d: the element at byte %d points past the page", id, at)
	}
	return buf[start:keyEnd], buf[keyEnd:end], nil
}

// recoverDamage runs fn, turning a panic or a memory fault inside bbolt (what a damaged file causes)
// into a *DamagedError.
func recoverDamage(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = damaged(path, "is damaged (%v)", r)
		}
	}()
	return fn()
}
