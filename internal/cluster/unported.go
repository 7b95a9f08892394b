package cluster

import "io"

// Backup refuses: a cluster's state is in JetStream, replicated on three nodes, not in one file.
func (s *Store) Backup(func(size int64) io.Writer) error { return errNotClustered }
