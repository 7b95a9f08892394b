package agent

import (
	"io"

	"github.com/miaobu/miaobu/internal/dashboard"
	"github.com/miaobu/miaobu/internal/domain"
	"github.com/miaobu/miaobu/internal/notify"
	"github.com/miaobu/miaobu/internal/outbox"
	"github.com/miaobu/miaobu/internal/report"
	"github.com/miaobu/miaobu/internal/store"
)

// Store is the agent's durable state: *store.Store on a single agent, *cluster.Store on a cluster
// of agents. Besides the domain's operations it holds the build queue the workers drain, the
// outbox, and the hooks that count finished deployments and report their changes.
type Store interface {
	domain.Store
	report.Store
	notify.Store
	outbox.Store
	dashboard.Sessions

	// ClaimNext takes the oldest queued deployment whose project busy does not report (and, on a
	// cluster, whose project no other node builds), marks it cloning and returns it; nil when there
	// is nothing to claim.
	ClaimNext(busy func(projectID int64) bool) (*store.Deployment, error)
	// Requeue puts a deployment whose build was interrupted by a shutdown back in the queue.
	Requeue(id int64) error
	// Fail ends a deployment as failed or cancelled with a message.
	Fail(id int64, status store.Status, message string) error
	// Skip ends a deployment cancelled for a skip marker its build found in the commit's message.
	Skip(id int64, message string) error
	// RecoverInterrupted queues again, once, the deployments this agent was building when it stopped.
	RecoverInterrupted() ([]*store.Deployment, error)
	// RecordDetected records what the build of a running deployment detected.
	RecordDetected(id int64, detected store.DetectedSettings) error
	// PruneDeployments applies retention.deployments to a project and returns what it deleted.
	PruneDeployments(projectID int64, keep int) ([]*store.Deployment, error)
	// QueueDepth returns how many deployments wait for a worker.
	QueueDepth() (int, error)
	// Backup writes a consistent copy of the store to the writer begin returns.
	Backup(begin func(size int64) io.Writer) error

	OnFinish(fn func(status store.Status))
	OnTransition(report store.Reporter)
	OnNotify(fn store.Notifier)
}
