package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Ingest holds the group-commit metrics of ingest.Batcher. It is the
// ingest.Observer of cmd/receiver in batch mode.
type Ingest struct {
	size     prometheus.Histogram
	wait     prometheus.Histogram
	commit   prometheus.Histogram
	failures prometheus.Counter
}

// NewIngest registers the batch metrics with reg.
func NewIngest(reg prometheus.Registerer) *Ingest {
	m := &Ingest{
		size: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hookline_ingest_batch_size",
			Help: "Events per flushed batch, after dropping those whose requests had gone.",
			// INGEST_BATCH_MAX_SIZE is 100 by default and at most 10000.
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hookline_ingest_batch_wait_seconds",
			Help:    "Time from a batch's first event to the start of its flush: INGEST_BATCH_MAX_WAIT, plus any wait for a free flusher.",
			Buckets: []float64{.0001, .00025, .0005, .001, .002, .003, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hookline_ingest_commit_duration_seconds",
			Help:    "Duration of each batch transaction, committed or failed.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookline_ingest_batch_failures_total",
			Help: "Batch transactions that failed; each answered 503 to all of its requests.",
		}),
	}
	reg.MustRegister(m.size, m.wait, m.commit, m.failures)
	return m
}

// ObserveFlush implements ingest.Observer.
func (m *Ingest) ObserveFlush(size int, waited, commit time.Duration, err error) {
	m.size.Observe(float64(size))
	m.wait.Observe(waited.Seconds())
	m.commit.Observe(commit.Seconds())
	if err != nil {
		m.failures.Inc()
	}
}
