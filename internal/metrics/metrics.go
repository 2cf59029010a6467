// Package metrics defines Hookline's Prometheus metrics.
//
// Nothing here is global: each process builds its own registry in main with
// NewRegistry, registers the collectors it needs, and passes them down. Tests
// can then run in parallel, each with a registry of its own.
package metrics

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a registry that already holds the Go runtime and
// process collectors, to which a process adds its own metrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Handler serves reg's metrics in the Prometheus exposition format.
func Handler(reg *prometheus.Registry, logger *slog.Logger) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		// A collector that fails (the queue query, say) loses its own
		// series, not the whole scrape with every other metric in it.
		ErrorHandling: promhttp.ContinueOnError,
		// Scrapes that hit the database must not pile up behind a slow one.
		MaxRequestsInFlight: 4,
		// Counts failed scrapes as promhttp_metric_handler_errors_total.
		Registry: reg,
	})
}
