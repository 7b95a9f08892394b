package domain

import (
	"bytes"
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

// BuildLog is a deployment's build log opened for reading.
type BuildLog interface {
	io.ReadSeekCloser
	io.ReaderAt
}

// sharedCopy is a copy of a build log that another node of a cluster shares, as it was when read.
type sharedCopy struct{ *bytes.Reader }

// Close releases nothing: the copy is in memory.
func (sharedCopy) Close() error { return nil }

// OpenLog opens deployment d's build log: this agent's file or, on a cluster, for a deployment
// another node builds or built, the copy that node shares; nil when there is none yet.
func (s *Service) OpenLog(ctx context.Context, d *store.Deployment) (BuildLog, error) {
	if s.sharedLog != nil {
		data, shared, err := s.sharedLog(ctx, d)
		switch {
		case err != nil:
			return nil, err
		case shared && data == nil:
			return nil, nil
		case shared:
			return sharedCopy{bytes.NewReader(data)}, nil
		}
	}
	f, err := os.Open(s.LogPath(d.ID))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// FollowLog reads deployment id's build log from byte offset from as it is written and calls emit
// with the deployment as last read, the next bytes of the log (none at times, at most
// logChunkBytes, valid only during the call) and done, set on the last call: the deployment has
// ended and its whole log was emitted. It returns then, or when ctx is done, stop is closed or emit
// fails. The first call comes at once. A log another node of a cluster shares is read again from
// where it was left each time its last copy has been read.
func (s *Service) FollowLog(ctx context.Context, id, from int64, stop <-chan struct{}, emit func(d *store.Deployment, chunk []byte, done bool) error) error {
	var f BuildLog
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	var d *store.Deployment
	behind := false // the last read filled buf: more of the log is waiting
	for {
		if !behind {
			// The status is read before the log: the log is complete once the deployment has ended.
			var err error
			if d, err = s.store.Deployment(id); err != nil {
				return storeError(err, "Deployment not found")
			}
		}
		if f == nil {
			var err error
			if f, err = s.OpenLog(ctx, d); err != nil {
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
		from += int64(n)
		behind = n == len(buf)
		if _, growing := f.(*os.File); f != nil && !growing && !behind {
			// A shared copy is read to its end: the next round reads a newer one.
			f.Close()
			f = nil
		}
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
