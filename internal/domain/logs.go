package domain

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/miaobu/miaobu/internal/store"
)

// logPollInterval is how often a followed log is checked for new lines.
const logPollInterval = 200 * time.Millisecond

// FollowLog reads deployment id's build log as it is written and calls emit with the deployment as
// last read and the bytes added since the previous call (none at times), until the deployment has
// ended and its whole log was emitted, ctx is done, stop is closed or emit fails. The first call
// comes at once.
func (s *Service) FollowLog(ctx context.Context, id int64, stop <-chan struct{}, emit func(d *store.Deployment, chunk []byte) error) error {
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	for {
		// The status is read before the file: the log is complete once the deployment has ended.
		d, err := s.store.Deployment(id)
		if err != nil {
			return storeError(err, "Deployment not found")
		}
		if f == nil {
			if f, err = os.Open(s.LogPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		var chunk []byte
		if f != nil {
			if chunk, err = io.ReadAll(f); err != nil {
				return err
			}
		}
		if err := emit(d, chunk); err != nil {
			return err
		}
		if d.Terminal() {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-stop:
			return nil
		case <-time.After(logPollInterval):
		}
	}
}
