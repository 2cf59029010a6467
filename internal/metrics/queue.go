package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river/rivertype"

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

// One index-only pass over river_job_prioritized_fetching_index, (state,
// queue, priority, scheduled_at, id), which covers every column used here;
// riverdb.Names tells why $1 lets the planner use it. The database's clock
// measures the age, so the worker's clock skew cannot.
const queueSQL = `
SELECT state::text, count(*), extract(epoch FROM now() - min(scheduled_at))::float8
FROM river_job
WHERE state = ANY($1) AND queue = $2
GROUP BY state`

// Queue is a prometheus.Collector that reports one River queue's backlog,
// read from river_job at scrape time, so the numbers are never stale and
// cost nothing between scrapes.
type Queue struct {
	db      Querier
	queue   string
	timeout time.Duration
	logger  *slog.Logger
	jobs    *prometheus.Desc
	oldest  *prometheus.Desc
	errors  prometheus.Counter
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
		q.logger.Warn("queue metrics query failed", "queue", q.queue, "error", err)
	} else {
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
	rows, err := q.db.Query(ctx, queueSQL, riverdb.Names(queueStates), q.queue)
	if err != nil {
		return nil, 0, err
	}
	counts := make(map[rivertype.JobState]int64, len(queueStates))
	var oldest float64
	var (
		state rivertype.JobState
		n     int64
		age   float64
	)
	_, err = pgx.ForEachRow(rows, []any{&state, &n, &age}, func() error {
		counts[state] = n
		if state == rivertype.JobStateAvailable {
			// A job snoozed for less than River's scheduler interval is
			// available with a scheduled_at just ahead: not yet waiting.
			oldest = max(0, age)
		}
		return nil
	})
	return counts, oldest, err
}
