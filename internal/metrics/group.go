package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Group holds the metrics of the worker's group transactions. It is the
// dispatch.GroupObserver of cmd/worker.
type Group struct {
	size      prometheus.Histogram
	wait      prometheus.Histogram
	commit    prometheus.Histogram
	fallbacks prometheus.Counter
}

// NewGroup registers the group metrics with reg.
func NewGroup(reg prometheus.Registerer) *Group {
	m := &Group{
		size: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hookline_worker_group_size",
			Help: "Events per group transaction of grouped handlers.",
			// WORKER_GROUP_MAX_SIZE is 100 by default and at most 10000.
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hookline_worker_group_wait_seconds",
			Help:    "Time from a group's first event to the start of its transaction: WORKER_GROUP_MAX_WAIT, plus any wait for a free transaction slot.",
			Buckets: []float64{.0001, .00025, .0005, .001, .002, .003, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hookline_worker_group_commit_duration_seconds",
			Help:    "Duration of each group transaction, handlers included, committed or rolled back.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookline_worker_group_fallbacks_total",
			Help: "Groups rolled back because a handler failed (or a deadlock persisted), whose events were then applied one transaction each.",
		}),
	}
	reg.MustRegister(m.size, m.wait, m.commit, m.fallbacks)
	return m
}

// ObserveGroup implements dispatch.GroupObserver.
func (m *Group) ObserveGroup(size int, waited, took time.Duration, fellBack bool) {
	m.size.Observe(float64(size))
	m.wait.Observe(waited.Seconds())
	m.commit.Observe(took.Seconds())
	if fellBack {
		m.fallbacks.Inc()
	}
}
