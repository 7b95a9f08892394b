package agent_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/proctest"
)

// errAcceptBroke is what a breakingListener's Accept returns once broken.
var errAcceptBroke = errors.New("accept: the listener broke")

// breakingListener is a loopback listener whose Accept fails with errAcceptBroke once broken, as a
// listener whose socket went away does.
type breakingListener struct {
	net.Listener
	once   sync.Once
	broken chan struct{}
}

func (l *breakingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	select {
	case <-l.broken:
		if c != nil {
			c.Close()
		}
		return nil, errAcceptBroke
	default:
		return c, err
	}
}

// breakNow makes the Accept under way, and every later one, fail.
func (l *breakingListener) breakNow() {
	l.once.Do(func() {
		close(l.broken)
		l.Listener.Close()
	})
}

func TestListenerFailureShutsDownLikeASignal(t *testing.T) {
	t.Parallel()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &breakingListener{Listener: inner, broken: make(chan struct{})}
	ta := agenttest.StartWith(t, agenttest.Config(t), agenttest.Options{Listener: ln})
	marker := fmt.Sprintf("miaobu-listener-%d", time.Now().UnixNano())
	_, id := startSlowBuild(t, ta, marker)

	ln.breakNow()
	select {
	case <-ta.Done():
	case <-time.After(ta.Config.ShutdownTimeout + 10*time.Second):
		t.Fatal("Serve did not return after its listener failed")
	}
	err = ta.Stop()
	if !errors.Is(err, errAcceptBroke) {
		t.Fatalf("Serve returned %v, want the listener's error", err)
	}
	// What Run does next is close the store: by now the build must have stopped and been queued
	// again, not be left running against a closed store.
	d, err := ta.Store.Deployment(id)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != api.StatusQueued {
		t.Errorf("when Serve returned the deployment was %s, want it queued again", d.Status)
	}
	if left := proctest.WithMarker(marker); len(left) > 0 {
		t.Errorf("build processes left running: %v", left)
	}
	if log, _ := os.ReadFile(ta.Domain().LogPath(id)); !strings.Contains(string(log), "queued again") {
		t.Errorf("the build log does not say the deployment was queued again:\n%s", log)
	}
}
