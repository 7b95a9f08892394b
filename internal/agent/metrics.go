package agent

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the agent's Prometheus collectors, in a registry of its own so tests can run many agents.
type metrics struct {
	registry          *prometheus.Registry
	deliveries        *prometheus.CounterVec
	signatureFailures prometheus.Counter
	webhookLatency    prometheus.Histogram
}

// newMetrics registers the agent's collectors with the Go and process collectors.
func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "miaobu_webhook_deliveries_total",
			Help: "Webhook deliveries by event (push, ping, other) and outcome.",
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
	}
	m.registry.MustRegister(m.deliveries, m.signatureFailures, m.webhookLatency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// handler serves the registry in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
