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
type Queue struct {
	db      Querier
	queue   string
	timeout time.Duration
	logger  *slog.Logger
	jobs    *prometheus.Desc
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
			"Jobs in the events queue in each non-final state.", []string{"state"}, nil),
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
	ch <- q.oldest
	q.errors.Describe(ch)
}

// Collect implements prometheus.Collector. When the query fails, the queue
// series are left out rather than reported as zero, which would read as an
// empty queue.
func (q *Queue) Collect(ch chan<- prometheus.Metric) {
	counts, oldest, err := q.query()
	if err != nil {
		q.errors.Inc()
		q.failures.Fail(err, "queue", q.queue)
	} else {
		q.failures.OK()
		for _, s := range queueStates {
			ch <- prometheus.MustNewConstMetric(q.jobs, prometheus.GaugeValue, float64(counts[s]), string(s))
		}
		ch <- prometheus.MustNewConstMetric(q.oldest, prometheus.GaugeValue, oldest)
	}
	ch <- q.errors
}

func (q *Queue) query() (map[rivertype.JobState]int64, float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), q.timeout)
	defer cancel()
	counts, err := riverdb.CountJobs(ctx, q.db, q.queue, queueStates)
	if err != nil {
		return nil, 0, err
	}
	var oldest float64
	if counts.OldestAvailableSeconds != nil {
		oldest = *counts.OldestAvailableSeconds
	}
	return counts.ByState, oldest, nil
}
