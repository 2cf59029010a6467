package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river/rivertype"

	"github.com/hookline/hookline/internal/logging"
	"github.com/hookline/hookline/internal/riverdb"
	"github.com/hookline/hookline/internal/throttle"
)

// Querier runs a query; *pgxpool.Pool is one.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// queueStates are the states the collector reports, riverdb.LiveStates.
// Final states (completed, cancelled, discarded) are left out: completed
// rows can number millions until the cleaner removes them, and counting
// them on every scrape would cost more than it tells.
var queueStates = riverdb.LiveStates()

// Queue is a prometheus.Collector that reports one River queue's backlog,
// read from river_job at scrape time (riverdb.CountJobs: one index-only
// pass), so the numbers are never stale and cost nothing between scrapes.
// It splits the running jobs with the gate counts the live workers last
// wrote in worker_processes (a sum over a few rows).
type Queue struct {
	db      Querier
	queue   string
	timeout time.Duration
	logger  *slog.Logger
	jobs    *prometheus.Desc
	running *prometheus.Desc
	oldest  *prometheus.Desc
	errors  prometheus.Counter

	// failures logs failed queries when they start, then once a minute:
	// every scrape of a worker whose database is down would write a line.
	failures *logging.Failures
}

// NewQueue returns a collector for queue; register it with the process's
// registry. Each scrape's query is limited to timeout.
func NewQueue(db Querier, queue string, timeout time.Duration, logger *slog.Logger) *Queue {
	return &Queue{
		db:      db,
		queue:   queue,
		timeout: timeout,
		logger:  logger,
		jobs: prometheus.NewDesc("hookline_queue_jobs",
			"Jobs in the events queue in each non-final state. running includes the jobs waiting at the workers' throttle gates: see hookline_queue_running_jobs.", []string{"state"}, nil),
		running: prometheus.NewDesc("hookline_queue_running_jobs",
			"The events queue's running jobs by phase, from the workers' heartbeats: executing, waiting_at_gate (fetched, waiting for a slot under hookctl throttle), or unreported (fetched, or finished and not yet recorded by River's batched completer, since the last heartbeat; or held by a worker that died). The phases add up to hookline_queue_jobs{state=\"running\"}.",
			[]string{"phase"}, nil),
		oldest: prometheus.NewDesc("hookline_queue_oldest_available_age_seconds",
			"How long the oldest available job has been ready to run; 0 when none is.", nil, nil),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookline_queue_query_errors_total",
			Help: "Scrapes whose queue query failed; the queue series are missing from those scrapes.",
		}),

		failures: logging.NewFailures(logger, "queue metrics query failed", logging.DefaultEvery),
	}
}

// Describe implements prometheus.Collector.
func (q *Queue) Describe(ch chan<- *prometheus.Desc) {
	ch <- q.jobs
	ch <- q.running
	ch <- q.oldest
	q.errors.Describe(ch)
}

// Collect implements prometheus.Collector. When the query fails, the queue
// series are left out rather than reported as zero, which would read as an
// empty queue.
func (q *Queue) Collect(ch chan<- prometheus.Metric) {
	counts, running, oldest, err := q.query()
	if err != nil {
		q.errors.Inc()
		q.failures.Fail(err, "queue", q.queue)
	} else {
		q.failures.OK()
		for _, s := range queueStates {
			ch <- prometheus.MustNewConstMetric(q.jobs, prometheus.GaugeValue, float64(counts[s]), string(s))
		}
		for phase, n := range map[string]int64{
			PhaseExecuting: running.Executing, PhaseWaitingAtGate: running.WaitingAtGate, PhaseUnreported: running.Unreported,
		} {
			ch <- prometheus.MustNewConstMetric(q.running, prometheus.GaugeValue, float64(n), phase)
		}
		ch <- prometheus.MustNewConstMetric(q.oldest, prometheus.GaugeValue, oldest)
	}
	ch <- q.errors
}

func (q *Queue) query() (map[rivertype.JobState]int64, throttle.Running, float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), q.timeout)
	defer cancel()
	counts, err := riverdb.CountJobs(ctx, q.db, q.queue, queueStates)
	if err != nil {
		return nil, throttle.Running{}, 0, err
	}
	executing, waiting, err := throttle.GateCounts(ctx, q.db, throttle.AnnouncedWithin)
	if err != nil {
		return nil, throttle.Running{}, 0, err
	}
	var oldest float64
	if counts.OldestAvailableSeconds != nil {
		oldest = *counts.OldestAvailableSeconds
	}
	running := throttle.SplitRunning(counts.ByState[rivertype.JobStateRunning], executing, waiting)
	return counts.ByState, running, oldest, nil
}
