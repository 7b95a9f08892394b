package dashboard

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/miaobu/miaobu/internal/store"
)

// maxStreamsPerSession bounds the live logs one session may have open at once: each holds a
// connection and a buffer of the log.
const maxStreamsPerSession = 8

// streamCounts counts the live logs open by session.
type streamCounts struct {
	mu        sync.Mutex
	bySession map[string]int
}

// open counts one more stream of session and reports whether it is within maxStreamsPerSession.
func (c *streamCounts) open(session []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bySession[string(session)] >= maxStreamsPerSession {
		return false
	}
	c.bySession[string(session)]++
	return true
}

// close counts one stream of session fewer.
func (c *streamCounts) close(session []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bySession[string(session)]--; c.bySession[string(session)] <= 0 {
		delete(c.bySession, string(session))
	}
}

// errSessionEnded ends a live log whose session has ended.
var errSessionEnded = errors.New("the session has ended")

// logStream sends a deployment's build log from the byte offset in ?from= or Last-Event-ID (a
// reconnect) as Server-Sent Events until the deployment ends: "line" events of rendered lines, each
// batch's id the log's byte offset after it, "status" when the deployment's status changes and "end"
// with its final status. It ends too when its session does.
func (d *Dashboard) logStream(w http.ResponseWriter, r *http.Request) error {
	dep, _, err := d.opts.Domain.Deployment(r.PathValue("id"))
	if err != nil {
		return err
	}
	from, _ := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64)
	if resumed, err := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64); err == nil {
		from = resumed
	}
	from = max(0, from)
	if !d.streams.open(session(r)) {
		d.errorPage(w, http.StatusTooManyRequests, fmt.Sprintf("This session already follows %d live logs: close some of their pages.", maxStreamsPerSession))
		return nil
	}
	defer d.streams.close(session(r))
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	// nginx would otherwise hold the events back.
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	// Browsers otherwise wait seconds before reconnecting.
	if _, err := fmt.Fprint(w, "retry: 1000\n\n"); err != nil {
		return nil
	}
	renderer := newLogRenderer()
	var pending []byte
	offset := from
	status := ""
	// Once the answer has begun, a failure (the client gone, the deployment deleted) can only end it.
	_ = d.opts.Domain.FollowLog(r.Context(), dep.ID, from, d.opts.Stopping, func(current *store.Deployment, chunk []byte, done bool) error {
		// A stream ends with its session (a sign-out, here or everywhere).
		if valid, err := d.opts.Sessions.SessionValid(session(r), time.Now()); err != nil || !valid {
			return errSessionEnded
		}
		pending = append(pending, chunk...)
		if done && len(pending) > 0 && pending[len(pending)-1] != '\n' {
			pending = append(pending, '\n')
		}
		// Written as it is rendered, rather than gathered first, so that a stream holds no more than
		// a chunk of the log while a slow client keeps it waiting.
		var err error
		write := func(parts ...string) {
			for _, part := range parts {
				if err == nil {
					_, err = io.WriteString(w, part)
				}
			}
		}
		rest := pending
		for {
			i := bytes.IndexByte(rest, '\n')
			if i < 0 {
				break
			}
			write("data: ", renderer.line(string(rest[:i])), "\n")
			rest = rest[i+1:]
			offset += int64(i + 1)
		}
		if len(rest) < len(pending) {
			write("id: ", strconv.FormatInt(offset, 10), "\nevent: line\n\n")
		}
		// What is left is the start of a line still being written; it is moved to the front, so
		// that pending never holds more than a chunk and that line.
		pending = append(pending[:0], rest...)
		if s := string(current.Status); s != status {
			status = s
			write("event: status\ndata: ", s, "\n\n")
		}
		if done {
			write("event: end\ndata: ", status, "\n\n")
		}
		if err != nil {
			return err
		}
		return rc.Flush()
	})
	return nil
}
