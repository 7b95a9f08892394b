package store

import (
	bolt "go.etcd.io/bbolt"
)

// iterate calls fn with each key of b that starts with prefix, in key order, and its value decoded
// with the store's encoding; fn returns false to stop. A nil prefix visits the whole bucket. For an
// index bucket, whose values are empty, T is struct{} and values are not decoded. key is only valid
// inside the transaction, and fn must not change b (the cursor would lose its place).
func iterate[T any](b *bolt.Bucket, prefix []byte, fn func(key []byte, v T) (bool, error)) error {
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
		if more, err := visit(k, v, fn); err != nil || !more {
			return err
		}
	}
	return nil
}

// iterateBackward is iterate from the last key that starts with prefix to the first.
func iterateBackward[T any](b *bolt.Bucket, prefix []byte, fn func(key []byte, v T) (bool, error)) error {
	c := b.Cursor()
	k, v := c.Last()
	if after := prefixEnd(prefix); after != nil {
		if k, _ = c.Seek(after); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
	}
	for ; k != nil && hasPrefix(k, prefix); k, v = c.Prev() {
		if more, err := visit(k, v, fn); err != nil || !more {
			return err
		}
	}
	return nil
}

// visit decodes one value for iterate and passes it to fn.
func visit[T any](k, data []byte, fn func(key []byte, v T) (bool, error)) (bool, error) {
	var v T
	if _, index := any(&v).(*struct{}); !index {
		if err := decode(data, &v); err != nil {
			return false, err
		}
	}
	return fn(k, v)
}

// prefixEnd returns the smallest key greater than every key that starts with prefix, or nil when
// there is none (an empty prefix, or one of only 0xff bytes).
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// hasPrefix reports whether b starts with prefix.
func hasPrefix(b, prefix []byte) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == string(prefix)
}
