package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Catchup holds the metrics of the worker's periodic catch-up. It is the
// catchup.Observer of cmd/worker.
type Catchup struct {
	recovered *prometheus.CounterVec
	runs      *prometheus.CounterVec
}

// NewCatchup registers the catch-up metrics with reg.
func NewCatchup(reg prometheus.Registerer) *Catchup {
	m := &Catchup{
		recovered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_catchup_recovered_events_total",
			Help: "Events that periodic catch-up stored from a provider's API because the inbox lacked them: events the webhook path missed. Any increase deserves a look.",
		}, []string{"source"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_catchup_runs_total",
			Help: "Periodic catch-up runs, by result: ok, or error (the API or the database failed; what was stored before is kept).",
		}, []string{"source", "result"}),
	}
	reg.MustRegister(m.recovered, m.runs)
	return m
}

// ObserveCatchup implements catchup.Observer.
func (m *Catchup) ObserveCatchup(source string, recovered int, err error) {
	m.recovered.WithLabelValues(source).Add(float64(recovered))
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.runs.WithLabelValues(source, result).Inc()
}
