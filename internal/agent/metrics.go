package agent

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/domain"
	"github.com/miaobu/miaobu/internal/poll"
	"github.com/miaobu/miaobu/internal/store"
)

// metrics are the agent's Prometheus collectors, in a registry of its own so tests can run many agents.
type metrics struct {
	registry          *prometheus.Registry
	deliveries        *prometheus.CounterVec
	signatureFailures prometheus.Counter
	webhookLatency    prometheus.Histogram
	deployments       *prometheus.CounterVec
	buildDuration     prometheus.Histogram
	publishDuration   *prometheus.HistogramVec
	polls             *prometheus.CounterVec
	certFailures      prometheus.Counter
	handshakeErrors   prometheus.Counter
}

// durationBuckets span a few seconds to the default build timeout.
var durationBuckets = []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 900}

// newMetrics registers the agent's collectors with the Go and process collectors; queueDepth,
// running and rateRemaining are read at each scrape.
func newMetrics(queueDepth, running, rateRemaining func() float64) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "miaobu_webhook_deliveries_total",
			Help: "Webhook deliveries by event (push, pull_request, deployment, ping, other) and outcome.",
		}, []string{"event", "outcome"}),
		signatureFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "miaobu_webhook_signature_failures_total",
			Help: "Webhook deliveries refused for a missing or wrong signature.",
		}),
		webhookLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "miaobu_webhook_duration_seconds",
			Help:    "Time from receiving a webhook to answering it.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, 1},
		}),
		deployments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "miaobu_deployments_total",
			Help: "Deployments that ended, by final status: deployed, failed, or cancelled (by a user or superseded, queued or running).",
		}, []string{"status"}),
		buildDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "miaobu_build_duration_seconds",
			Help:    "Time to clone, install and build a deployment, successful or not.",
			Buckets: durationBuckets,
		}),
		publishDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "miaobu_publish_duration_seconds",
			Help:    "Time to publish a built deployment (upload and purge on the oss target), by target.",
			Buckets: []float64{.01, .05, .1, .5, 1, 2, 5, 10, 30, 60, 300},
		}, []string{"target"}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "miaobu_polls_total",
			Help: "Checks of projects with trigger poll for new commits, by result: changed, unchanged or error.",
		}, []string{"result"}),
		certFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "miaobu_tls_certificate_failures_total",
			Help: "Certificates that could not be obtained, renewed or stored (tls.enabled).",
		}),
		handshakeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "miaobu_tls_handshake_errors_total",
			Help: "TLS handshakes of the agent's HTTPS listener that failed, such as those for names it does not serve (tls.enabled).",
		}),
	}
	// Every label value is exported from the start, at zero, so that the first event is an increase.
	for _, status := range []store.Status{store.StatusDeployed, store.StatusFailed, store.StatusCancelled} {
		m.deployments.WithLabelValues(string(status))
	}
	for _, event := range eventLabels {
		for _, outcome := range domain.Outcomes {
			m.deliveries.WithLabelValues(event, string(outcome))
		}
	}
	for _, target := range []string{"local", "oss"} {
		m.publishDuration.WithLabelValues(target)
	}
	for _, result := range []string{poll.ResultChanged, poll.ResultUnchanged, poll.ResultError} {
		m.polls.WithLabelValues(result)
	}
	m.registry.MustRegister(m.deliveries, m.signatureFailures, m.webhookLatency, m.deployments, m.buildDuration, m.publishDuration, m.polls, m.certFailures, m.handshakeErrors,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "miaobu_queue_depth", Help: "Deployments waiting for a worker."}, queueDepth),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "miaobu_builds_running", Help: "Builds running in this agent."}, running),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "miaobu_github_rate_limit_remaining",
			Help: "Requests the GitHub token has left in its hourly rate limit, as polling last saw it (NaN before)."}, rateRemaining),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// handler serves the registry in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// tokenlessHandler serves GET /metrics and nothing else, for the metrics listener, which asks for no token.
func (m *metrics) tokenlessHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+api.PathMetrics, m.handler())
	return mux
}
