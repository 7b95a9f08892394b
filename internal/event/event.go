// Package event names what happens to a deployment that notification targets can subscribe to:
// the store raises these events, package notify tells them and the CLI offers them.
package event

// Events, as users type them and receivers read them.
const (
	DeployStarted   = "deploy.started"
	DeploySucceeded = "deploy.succeeded"
	DeployFailed    = "deploy.failed"
	// DeployRecovered is a production deployment that succeeded after the previous one failed, told
	// besides DeploySucceeded.
	DeployRecovered = "deploy.recovered"
	PreviewReady    = "preview.ready"
	PreviewRemoved  = "preview.removed"
)

// All lists every event, in the order they are documented.
var All = []string{DeployStarted, DeploySucceeded, DeployFailed, DeployRecovered, PreviewReady, PreviewRemoved}

// Defaults are the events of a target added without a list of its own.
var Defaults = []string{DeployFailed, DeployRecovered, PreviewReady}
