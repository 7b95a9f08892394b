package dashboard

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/miaobu/miaobu/internal/store"
)

// errSessionEnded ends a live log whose session has ended.
var errSessionEnded = errors.New("the session has ended")

// logStream sends a deployment's build log as Server-Sent Events until the deployment ends: "line"
// events of rendered lines, each batch's id the log's byte offset after it, "status" when the
// deployment's status changes and "end" with its final status. Lines before the offset in ?from=
// or Last-Event-ID (a reconnect) are rendered, for their colours, but not sent.
func (d *Dashboard) logStream(w http.ResponseWriter, r *http.Request) error {
	dep, _, err := d.opts.Domain.Deployment(r.PathValue("id"))
	if err != nil {
		return err
	}
	from, _ := strconv.Atoi(r.URL.Query().Get("from"))
	if resumed, err := strconv.Atoi(r.Header.Get("Last-Event-ID")); err == nil {
		from = resumed
	}
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
	offset := 0
	status := ""
	// Once the answer has begun, a failure (the client gone, the deployment deleted) can only end it.
	_ = d.opts.Domain.FollowLog(r.Context(), dep.ID, d.opts.Stopping, func(current *store.Deployment, chunk []byte) error {
		// A stream ends with its session (a sign-out, everywhere or here).
		if valid, err := d.opts.Sessions.SessionValid(session(r), time.Now()); err != nil || !valid {
			return errSessionEnded
		}
		pending = append(pending, chunk...)
		if current.Terminal() && len(pending) > 0 && pending[len(pending)-1] != '\n' {
			pending = append(pending, '\n')
		}
		var event strings.Builder
		for {
			i := bytes.IndexByte(pending, '\n')
			if i < 0 {
				break
			}
			line := renderer.line(string(pending[:i]))
			pending = pending[i+1:]
			offset += i + 1
			if offset > from {
				event.WriteString("data: " + line + "\n")
			}
		}
		if event.Len() > 0 {
			event.WriteString("id: " + strconv.Itoa(offset) + "\nevent: line\n\n")
		}
		if s := string(current.Status); s != status {
			status = s
			event.WriteString("event: status\ndata: " + s + "\n\n")
		}
		if current.Terminal() {
			event.WriteString("event: end\ndata: " + status + "\n\n")
		}
		if _, err := fmt.Fprint(w, event.String()); err != nil {
			return err
		}
		return rc.Flush()
	})
	return nil
}
