package cluster

import (
	"errors"
	"io"
)

// errNoBackup says why a cluster makes no backup file.
var errNoBackup = errors.New("a cluster keeps no single store file to back up: its state is replicated on every node " +
	"(under <data_dir>/jetstream), so a node that loses its disk is filled again by the others")

// Backup refuses: a cluster's state is in JetStream, replicated on three nodes, not in one file.
func (s *Store) Backup(func(size int64) io.Writer) error { return errNoBackup }
