package metrics_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/metrics"
	"github.com/hookline/hookline/internal/pgtest"
)

func TestQueueCollectorReportsJobsByStateAndOldestAvailableAge(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	// Insert-only and never started: the jobs stay where they are put.
	rc, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{Logger: discard})
	require.NoError(t, err)
	ctx := context.Background()
	insert := func(opts *river.InsertOpts) int64 {
		res, err := rc.Insert(ctx, hooklinetype.JobArgs{InboxID: 1, Source: "bank", EventID: "e"}, opts)
		require.NoError(t, err)
		return res.Job.ID
	}
	insert(nil)
	insert(nil)
	oldest := insert(nil)
	insert(&river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
	elsewhere := insert(&river.InsertOpts{Queue: "elsewhere"})
	// River inserts any job given a ScheduledAt as scheduled, even in the
	// past, so age the available ones by hand.
	_, err = db.Pool.Exec(ctx, `UPDATE river_job SET scheduled_at = now() - interval '1 hour' WHERE id = $1`, oldest)
	require.NoError(t, err)
	_, err = db.Pool.Exec(ctx, `UPDATE river_job SET scheduled_at = now() - interval '1 day' WHERE id = $1`, elsewhere)
	require.NoError(t, err)
	reg := metrics.NewRegistry()
	reg.MustRegister(metrics.NewQueue(db.Pool, hooklinetype.Queue, 2*time.Second, discard))

	mfs := gather(t, reg)
	jobs := func(state string) float64 {
		return sample(t, mfs, "hookline_queue_jobs", map[string]string{"state": state}).GetGauge().GetValue()
	}
	require.Equal(t, 3.0, jobs("available"))
	require.Equal(t, 1.0, jobs("scheduled"))
	require.Zero(t, jobs("running"), "states with no jobs still report zero")
	age := sample(t, mfs, "hookline_queue_oldest_available_age_seconds", nil).GetGauge().GetValue()
	require.InDelta(t, time.Hour.Seconds(), age, 60)
	require.Zero(t, sample(t, mfs, "hookline_queue_query_errors_total", nil).GetCounter().GetValue())
}

func TestQueueCollectorReportsNoAgeForAnEmptyQueue(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	reg := metrics.NewRegistry()
	reg.MustRegister(metrics.NewQueue(db.Pool, hooklinetype.Queue, 2*time.Second, discard))

	mfs := gather(t, reg)
	require.Zero(t, sample(t, mfs, "hookline_queue_jobs", map[string]string{"state": "available"}).GetGauge().GetValue())
	require.Zero(t, sample(t, mfs, "hookline_queue_oldest_available_age_seconds", nil).GetGauge().GetValue())
}

type failingQuerier struct{}

func (failingQuerier) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, errors.New("connection refused")
}

func TestQueueCollectorLeavesOutQueueSeriesAndCountsTheErrorWhenTheQueryFails(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	reg.MustRegister(metrics.NewQueue(failingQuerier{}, hooklinetype.Queue, time.Second, discard))

	mfs := gather(t, reg)
	require.Nil(t, family(mfs, "hookline_queue_jobs"), "a failed query must not read as an empty queue")
	require.Nil(t, family(mfs, "hookline_queue_oldest_available_age_seconds"))
	require.Equal(t, 1.0, sample(t, mfs, "hookline_queue_query_errors_total", nil).GetCounter().GetValue())
}

// TestQueueCollectorSplitsRunningJobsByWhatTheWorkersGatesReported: River
// counts jobs waiting at a throttle gate as running; the split says how
// many of them execute.
func TestQueueCollectorSplitsRunningJobsByWhatTheWorkersGatesReported(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	rc, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{Logger: discard})
	require.NoError(t, err)
	ctx := context.Background()
	for range 10 {
		_, err := rc.Insert(ctx, hooklinetype.JobArgs{InboxID: 1, Source: "bank", EventID: "e"}, nil)
		require.NoError(t, err)
	}
	_, err = db.Pool.Exec(ctx, `
		UPDATE river_job SET state = 'running', attempt = 1, attempted_at = now() WHERE queue = 'events';
		INSERT INTO worker_processes (id, host, pid, configured_limit, effective_limit, jobs_executing, jobs_waiting, last_seen_at) VALUES
			('a', 'host-a', 1, 8, 1, 1, 4, now()),
			('b', 'host-b', 2, 8, 1, 1, 3, now()),
			('dead', 'host-c', 3, 8, 1, 5, 5, now() - interval '10 minutes')`)
	require.NoError(t, err)
	reg := metrics.NewRegistry()
	reg.MustRegister(metrics.NewQueue(db.Pool, hooklinetype.Queue, 2*time.Second, discard))

	mfs := gather(t, reg)
	running := func(phase string) float64 {
		return sample(t, mfs, "hookline_queue_running_jobs", map[string]string{"phase": phase}).GetGauge().GetValue()
	}
	require.Equal(t, 10.0, sample(t, mfs, "hookline_queue_jobs", map[string]string{"state": "running"}).GetGauge().GetValue())
	require.Equal(t, 2.0, running("executing"))
	require.Equal(t, 7.0, running("waiting_at_gate"))
	require.Equal(t, 1.0, running("unreported"), "the dead process's report is too old to count")
}

// gateCounts is a fixed throttle gate.
type gateCounts struct{ executing, waiting int }

func (g gateCounts) Counts() (int, int) { return g.executing, g.waiting }

func TestGateCollectorReportsTheJobsExecutingAndWaitingAtTheGate(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	reg.MustRegister(metrics.NewGate(gateCounts{executing: 2, waiting: 46}))
	mfs := gather(t, reg)
	jobs := func(phase string) float64 {
		return sample(t, mfs, "hookline_worker_jobs_running", map[string]string{"phase": phase}).GetGauge().GetValue()
	}
	require.Equal(t, 2.0, jobs("executing"))
	require.Equal(t, 46.0, jobs("waiting_at_gate"))
}
