package metrics

import "github.com/prometheus/client_golang/prometheus"

// GateCounter is the throttle gate as the metrics see it (throttle.Gate).
type GateCounter interface {
	// Counts returns the jobs past the gate and those waiting at it.
	Counts() (executing, waiting int)
}

// The phases of a running job in hookline_worker_jobs_running and
// hookline_queue_running_jobs.
const (
	PhaseExecuting     = "executing"
	PhaseWaitingAtGate = "waiting_at_gate"
	// PhaseUnreported is a job River counts as running that no live
	// worker reported (hookline_queue_running_jobs only).
	PhaseUnreported = "unreported"
)

// Gate is a prometheus.Collector that reports, at scrape time, what this
// process's throttle gate holds. River counts the jobs waiting at the gate
// as running, so without this split a throttled worker looks busy.
type Gate struct {
	gate GateCounter
	desc *prometheus.Desc
}

// NewGate returns a collector over gate; register it with the process's
// registry.
func NewGate(gate GateCounter) *Gate {
	return &Gate{gate: gate, desc: prometheus.NewDesc("hookline_worker_jobs_running",
		"Jobs of the events queue that River counts as running in this process, by phase: executing (past the throttle gate) or waiting_at_gate (fetched, waiting for a slot under hookctl throttle).",
		[]string{"phase"}, nil)}
}

// Describe implements prometheus.Collector.
func (g *Gate) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

// Collect implements prometheus.Collector.
func (g *Gate) Collect(ch chan<- prometheus.Metric) {
	executing, waiting := g.gate.Counts()
	ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(executing), PhaseExecuting)
	ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(waiting), PhaseWaitingAtGate)
}
