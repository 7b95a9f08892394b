package domain

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"github.com/miaobu/miaobu/internal/store"
)

// LogPollInterval is how often a followed log is checked for new lines.
const LogPollInterval = 200 * time.Millisecond

// logChunkBytes bounds what FollowLog reads at a time, so that a follower of a long log holds only
// that much of it.
const logChunkBytes = 32 << 10

// logChunks are the buffers FollowLog reads into, held only while a chunk is emitted: a follower
// that waits for more of the log holds none.
var logChunks = sync.Pool{New: func() any { return new([logChunkBytes]byte) }}

// FollowLog reads deployment id's build log from byte offset from as it is written and calls emit
// with the deployment as last read, the next bytes of the log (none at times, at most
// logChunkBytes, valid only during the call) and done, set on the last call: the deployment has
// ended and its whole log was emitted. It returns then, or when ctx is done, stop is closed or emit fails. The first call comes
// at once.
func (s *Service) FollowLog(ctx context.Context, id, from int64, stop <-chan struct{}, emit func(d *store.Deployment, chunk []byte, done bool) error) error {
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	var d *store.Deployment
	behind := false // the last read filled buf: more of the log is waiting
	for {
		if !behind {
			// The status is read before the file: the log is complete once the deployment has ended.
			var err error
			if d, err = s.store.Deployment(id); err != nil {
				return storeError(err, "Deployment not found")
			}
		}
		if f == nil {
			var err error
			if f, err = os.Open(s.LogPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			if f != nil {
				if _, err := f.Seek(from, io.SeekStart); err != nil {
					return err
				}
			}
		}
		buf := logChunks.Get().(*[logChunkBytes]byte)
		n := 0
		var err error
		if f != nil {
			if n, err = io.ReadFull(f, buf[:]); err == io.EOF || err == io.ErrUnexpectedEOF {
				err = nil
			}
		}
		behind = n == len(buf)
		done := d.Terminal() && !behind
		if err == nil {
			err = emit(d, buf[:n], done)
		}
		logChunks.Put(buf)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		wait := LogPollInterval
		if behind {
			wait = 0
		}
		select {
		case <-ctx.Done():
			return nil
		case <-stop:
			return nil
		case <-time.After(wait):
		}
	}
}
