package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/dispatch"
	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/ops"
	"github.com/hookline/hookline/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testBundle is a test's own database, an insert-only River client on it,
// and the environment hookctl sees.
type testBundle struct {
	db     *pgtest.DB
	river  *river.Client[pgx.Tx]
	getenv func(string) string
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	db := pgtest.NewDB(t)
	// As the receiver's, with the job ids that the inbox rows reserve.
	rc, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{
		Logger:     slog.New(slog.DiscardHandler),
		Middleware: []rivertype.Middleware{&ingest.JobIDs{}},
	})
	require.NoError(t, err)
	env := map[string]string{"DATABASE_URL": db.URL, "USER": "tester"}
	return &testBundle{db: db, river: rc, getenv: func(k string) string { return env[k] }}
}

// withEnv returns b's environment with vars added.
func (b *testBundle) withEnv(vars map[string]string) func(string) string {
	base := b.getenv
	return func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		return base(k)
	}
}

// hookctl runs the command line args through the cobra tree, as main does.
func (b *testBundle) hookctl(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, append([]string{"hookctl"}, args...), b.getenv, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// hookctlJSON runs args, requires success, and decodes stdout into v.
func (b *testBundle) hookctlJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	stdout, stderr, err := b.hookctl(t, args...)
	require.NoError(t, err, "stderr: %s", stderr)
	require.NoError(t, json.Unmarshal([]byte(stdout), v), "stdout: %s", stdout)
}

// addEvent stores an event and enqueues its job in one transaction, as the
// receiver does, and returns the inbox and job ids.
func (b *testBundle) addEvent(t *testing.T, source, eventID, eventType string) (int64, int64) {
	t.Helper()
	ctx := context.Background()
	var inboxID, jobID int64
	err := pgx.BeginFunc(ctx, b.db.Pool, func(tx pgx.Tx) error {
		row, created, err := inbox.Insert(ctx, tx, inbox.NewEvent{
			Source: source, EventID: eventID, Type: eventType,
			Payload: []byte(`{"id":"` + eventID + `"}`), Headers: map[string]string{"Content-Type": "application/json"},
		})
		if err != nil {
			return err
		}
		require.True(t, created, "event %s/%s already stored", source, eventID)
		inboxID = row.ID
		jobs, err := ingest.Enqueue(ctx, b.river, tx, []inbox.Inserted{row}, nil)
		if err != nil {
			return err
		}
		jobID = jobs[0]
		return nil
	})
	require.NoError(t, err)
	return inboxID, jobID
}

// exec runs SQL on the test database.
func (b *testBundle) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	_, err := b.db.Pool.Exec(context.Background(), sql, args...)
	require.NoError(t, err)
}

// setJob puts a job in state, as River would leave it, with errs as the
// errors of its failed attempts.
func (b *testBundle) setJob(t *testing.T, jobID int64, state string, errs ...string) {
	t.Helper()
	errors := make([]map[string]any, len(errs))
	for i, e := range errs {
		errors[i] = map[string]any{"at": time.Now(), "attempt": i + 1, "error": e, "trace": ""}
	}
	b.exec(t, `
		UPDATE river_job SET
			state = $2::river_job_state,
			attempt = greatest(cardinality($3::jsonb[]), CASE WHEN $2 IN ('available', 'scheduled', 'pending') THEN 0 ELSE 1 END),
			attempted_at = CASE WHEN $2 IN ('available', 'scheduled', 'pending') THEN NULL ELSE now() END,
			attempted_by = CASE WHEN $2 IN ('available', 'scheduled', 'pending') THEN NULL ELSE ARRAY['test-client'] END,
			errors = CASE WHEN cardinality($3::jsonb[]) > 0 THEN $3::jsonb[] END,
			finalized_at = CASE WHEN $2 IN ('completed', 'cancelled', 'discarded') THEN now() END
		WHERE id = $1`, jobID, state, errors)
}

// markProcessed completes the job and marks the event processed at t.
func (b *testBundle) markProcessed(t *testing.T, inboxID, jobID int64, at time.Time) {
	t.Helper()
	b.setJob(t, jobID, "completed")
	b.exec(t, `UPDATE inbox_events SET processed_at = $2 WHERE id = $1`, inboxID, at)
}

// startWorker starts a River client that works the events queue with
// dispatch.Worker over mux (or an empty mux), and stops it when t ends.
func (b *testBundle) startWorker(t *testing.T, mux *hooklinetype.Mux) *river.Client[pgx.Tx] {
	t.Helper()
	if mux == nil {
		mux = hooklinetype.NewMux()
	}
	workers := river.NewWorkers()
	logger := slog.New(slog.DiscardHandler)
	river.AddWorker(workers, dispatch.NewWorker(b.db.Pool, mux, logger, dispatch.WorkerOpts{}))
	rc, err := river.NewClient(riverpgxv5.New(b.db.Pool), &river.Config{
		FetchCooldown:     10 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		Logger:            logger,
		Queues:            map[string]river.QueueConfig{hooklinetype.Queue: {MaxWorkers: 4}},
		Workers:           workers,
	})
	require.NoError(t, err)
	require.NoError(t, rc.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, rc.Stop(ctx))
	})
	return rc
}

// processedAt returns the event's processed_at.
func (b *testBundle) processedAt(t *testing.T, inboxID int64) *time.Time {
	t.Helper()
	var at *time.Time
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `SELECT processed_at FROM inbox_events WHERE id = $1`, inboxID).Scan(&at))
	return at
}

type statusJSON struct {
	ops.Status
	Notes []string `json:"notes"`
}

func TestStatusCountsJobsInEachState(t *testing.T) {
	t.Parallel()
	b := setup(t)
	states := []string{"available", "available", "running", "retryable", "scheduled", "pending", "discarded", "completed", "completed", "cancelled"}
	for i, state := range states {
		inboxID, jobID := b.addEvent(t, "stripe", "evt_"+strings.Repeat("x", i+1), "charge.succeeded")
		if state == "completed" {
			b.markProcessed(t, inboxID, jobID, time.Now())
			continue
		}
		b.setJob(t, jobID, state)
	}
	// An old event, outside the last hour, with a job in another queue.
	b.exec(t, `INSERT INTO inbox_events (source, event_id, payload, received_at) VALUES ('bank', 'tr_old', '', now() - interval '2 hours')`)
	_, err := b.river.Insert(context.Background(), hooklinetype.JobArgs{InboxID: 1, Source: "x", EventID: "y"}, &river.InsertOpts{Queue: "other"})
	require.NoError(t, err)
	b.exec(t, `UPDATE river_job SET scheduled_at = now() - interval '90 seconds' WHERE id = (SELECT min(id) FROM river_job WHERE state = 'available' AND queue = 'events')`)
	b.exec(t, `INSERT INTO inbox_duplicates (source, count, at) VALUES ('stripe', 2, now()), ('bank', 1, now()), ('bank', 5, now() - interval '2 hours')`)

	var st statusJSON
	b.hookctlJSON(t, &st, "status", "--json")
	require.Equal(t, ops.StateCounts{
		Backlog:   ops.Backlog{Available: 2, Running: 1, Retryable: 1, Scheduled: 1, Pending: 1},
		Discarded: 1, Completed: 2, Cancelled: 1,
	}, st.Jobs)
	require.NotNil(t, st.OldestAvailableAgeSeconds)
	require.InDelta(t, 90, *st.OldestAvailableAgeSeconds, 10)
	require.InDelta(t, 2.0/60, st.CompletedPerSecond1m, 1e-9)
	require.InDelta(t, 2.0/300, st.CompletedPerSecond5m, 1e-9)
	require.Equal(t, int64(len(states)), st.InboxReceivedLastHour)
	require.False(t, st.Registered)
	require.False(t, st.Paused)
	require.Nil(t, st.Leader)
	require.Len(t, st.Workers, 1, "every job above was attempted by test-client")
	require.Equal(t, "test-client", st.Workers[0].ClientID)
	require.Equal(t, int64(1), st.Workers[0].Running)
	require.Equal(t, int64(2), st.Workers[0].CompletedLast5m)
	require.Equal(t, int64(2), st.Workers[0].FailedLast5m, "discarded and cancelled")
	require.NotEmpty(t, st.Connections)
	require.Equal(t, int64(3), st.DuplicatesLastHour, "duplicates of the last hour only")
}

func TestStatusShowsTheLeaderAndTheWorkersOfARunningWorker(t *testing.T) {
	t.Parallel()
	b := setup(t)
	worker := b.startWorker(t, nil)
	_, jobID := b.addEvent(t, "stripe", "evt_1", "charge.succeeded")
	// River completes the job just after the effect's commit.
	require.Eventually(t, func() bool { return b.jobState(t, jobID) == "completed" }, 10*time.Second, 20*time.Millisecond)

	var st statusJSON
	require.Eventually(t, func() bool {
		b.hookctlJSON(t, &st, "status", "--json")
		return st.Leader != nil
	}, 10*time.Second, 100*time.Millisecond, "a started worker is elected leader")
	require.Equal(t, worker.ID(), st.Leader.ID)
	require.True(t, st.Registered, "a started worker creates the queue's river_queue row")
	require.Len(t, st.Workers, 1)
	require.Equal(t, worker.ID(), st.Workers[0].ClientID)
	require.Equal(t, int64(1), st.Workers[0].CompletedLast5m)
	require.Equal(t, int64(1), st.Jobs.Completed)

	stdout, _, err := b.hookctl(t, "status")
	require.NoError(t, err)
	for _, want := range []string{"River leader", worker.ID(), "JOBS", "CONNECTIONS", "duplicate deliveries"} {
		require.Contains(t, stdout, want)
	}
}

func TestStatusFailsClearlyWithoutDatabaseURL(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"hookctl", "status"}, func(string) string { return "" }, &stdout, &stderr)
	require.ErrorContains(t, err, "DATABASE_URL (or DATABASE_URL_FILE) is not set")
}

// TestDatabaseURLCanComeFromAFile lets a systemd credential or a mounted
// secret hold the URL, with its password, as for the receiver and worker.
func TestDatabaseURLCanComeFromAFile(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDB(t)
	path := filepath.Join(t.TempDir(), "database_url")
	require.NoError(t, os.WriteFile(path, []byte(db.URL+"\n"), 0o600))
	env := map[string]string{"DATABASE_URL_FILE": path}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"hookctl", "migrate"}, func(k string) string { return env[k] }, &stdout, &stderr)
	require.NoError(t, err, "%s", stderr.String())
	require.Contains(t, stdout.String(), "migrated:")

	env["DATABASE_URL"] = db.URL
	err = run(context.Background(), []string{"hookctl", "status"}, func(k string) string { return env[k] }, &stdout, &stderr)
	require.ErrorContains(t, err, "both DATABASE_URL and DATABASE_URL_FILE are set")
}

func TestStatusListsOnlyRecentlyAnnouncedWorkerProcesses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, `
		INSERT INTO worker_processes (id, host, pid, configured_limit, effective_limit, last_seen_at) VALUES
			('host-a/1/1', 'host-a', 1, 50, 25, now()),
			('host-b/2/2', 'host-b', 2, 50, 25, now() - interval '5 minutes')`)
	var st statusJSON
	b.hookctlJSON(t, &st, "status", "--json")
	require.True(t, st.WorkerRegistry)
	require.Len(t, st.Announced, 1)
	require.Equal(t, "host-a", st.Announced[0].Host)
	require.Equal(t, 25, st.Announced[0].EffectiveLimit)

	stdout, _, err := b.hookctl(t, "status")
	require.NoError(t, err)
	require.Contains(t, stdout, "ANNOUNCED WORKERS")
	require.Contains(t, stdout, "host-a/1/1")
	require.NotContains(t, stdout, "host-b/2/2")
}
