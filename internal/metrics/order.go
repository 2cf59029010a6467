package metrics

import "github.com/prometheus/client_golang/prometheus"

// Order counts the events that ordered handlers completed as stale. It is
// the dispatch.StaleObserver of cmd/worker.
type Order struct {
	stale *prometheus.CounterVec
}

// NewOrder registers the ordering metrics with reg.
func NewOrder(reg prometheus.Registerer) *Order {
	m := &Order{stale: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookline_worker_stale_events_total",
		Help: "Events of ordered handlers completed without running the handler, because a newer event of the same object had already been applied; by source and type.",
	}, []string{"source", "type"})}
	reg.MustRegister(m.stale)
	return m
}

// ObserveStale implements dispatch.StaleObserver. Its labels are bounded
// by the routes registered Ordered: only their events can be stale.
func (m *Order) ObserveStale(source, eventType string) {
	m.stale.WithLabelValues(source, eventType).Inc()
}
