package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Receiver holds the receiver's request metrics. It is the
// receiver.Recorder of cmd/receiver.
type Receiver struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewReceiver registers the request metrics with reg.
func NewReceiver(reg prometheus.Registerer) *Receiver {
	r := &Receiver{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_receiver_requests_total",
			Help: "Webhook requests answered, by source and outcome (the outcome of the request log line).",
		}, []string{"source", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hookline_receiver_request_duration_seconds",
			Help: "Time from the start of a webhook request to its answer, by source.",
			// From a lone event's batch wait (2ms by default) to the
			// ingest timeout (5s by default) and beyond.
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"source"}),
	}
	reg.MustRegister(r.requests, r.duration)
	return r
}

// Request records one answered webhook request. source is empty for an
// unknown source: the path segment comes from the sender, and would let
// anyone create series at will.
func (r *Receiver) Request(source, outcome string, d time.Duration) {
	r.requests.WithLabelValues(source, outcome).Inc()
	r.duration.WithLabelValues(source).Observe(d.Seconds())
}
