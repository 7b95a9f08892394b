package store

import (
	"io"

	bolt "go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the whole store, a bbolt file, to the writer that begin returns;
// begin is called first with the copy's size. Writes go on meanwhile: the copy is the store as it
// was when Backup started.
func (s *Store) Backup(begin func(size int64) io.Writer) error {
	return s.db.View(func(tx *bolt.Tx) error {
		_, err := tx.WriteTo(begin(tx.Size()))
		return err
	})
}
