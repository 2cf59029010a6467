package retention_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/ops"
	"github.com/hookline/hookline/internal/pgtest"
	"github.com/hookline/hookline/internal/retention"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestPeriodicRetentionEmptiesOldPayloadsAndKeepsTheirKeys(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	ctx := context.Background()
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO inbox_events (source, event_id, payload, received_at, processed_at) VALUES
		  ('bank', 'old',     '{"old":1}',  now() - interval '10 days', now() - interval '10 days'),
		  ('bank', 'ancient', '{"a":1}',    now() - interval '100 days', now() - interval '100 days'),
		  ('bank', 'new',     '{"new":1}',  now(), now()),
		  ('bank', 'pending', '{"p":1}',    now() - interval '10 days', NULL)`)
	require.NoError(t, err)

	logger := slog.New(slog.DiscardHandler)
	w, err := retention.NewWorker(db.Pool, ops.PruneOpts{OlderThan: 7 * 24 * time.Hour, KeepKeysFor: 30 * 24 * time.Hour}, logger)
	require.NoError(t, err)
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	client, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{
		Logger: logger, PeriodicJobs: []*river.PeriodicJob{retention.Periodic(time.Hour)},
		Queues: map[string]river.QueueConfig{retention.Queue: {MaxWorkers: 1}}, TestOnly: true, Workers: workers,
	})
	require.NoError(t, err)
	done, cancel := client.Subscribe(river.EventKindJobCompleted)
	defer cancel()
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() { _ = client.Stop(context.Background()) })

	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the periodic retention job did not run on start")
	}

	rows, err := db.Pool.Query(ctx, `SELECT event_id, octet_length(payload) FROM inbox_events ORDER BY event_id`)
	require.NoError(t, err)
	left := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		require.NoError(t, rows.Scan(&id, &n))
		left[id] = n
	}
	require.Equal(t, map[string]int{"new": 9, "old": 0, "pending": 7}, left,
		"old payload emptied with its key kept; ancient row deleted; new and unprocessed untouched")
}

func TestNewWorkerRefusesKeysThatDieBeforePayloads(t *testing.T) {
	t.Parallel()
	_, err := retention.NewWorker(nil, ops.PruneOpts{OlderThan: 48 * time.Hour, KeepKeysFor: 24 * time.Hour}, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "must be longer than")
}

// TestACompletedRunDoesNotHoldBackTheNextPeriodsRun: River's default
// unique states include completed, under which the periodic enqueuer's
// next run was skipped as a duplicate of the last completed one until
// River's cleaner deleted it, a day later. A live run still holds it back.
func TestACompletedRunDoesNotHoldBackTheNextPeriodsRun(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	ctx := context.Background()
	client, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)

	first, err := client.Insert(ctx, retention.Args{}, nil)
	require.NoError(t, err)
	require.False(t, first.UniqueSkippedAsDuplicate)
	again, err := client.Insert(ctx, retention.Args{}, nil)
	require.NoError(t, err)
	require.True(t, again.UniqueSkippedAsDuplicate, "a second run while the first is queued")

	// As River's completer leaves a run that has finished.
	_, err = db.Pool.Exec(ctx, `UPDATE river_job SET state = 'completed', finalized_at = now() WHERE id = $1`, first.Job.ID)
	require.NoError(t, err)
	next, err := client.Insert(ctx, retention.Args{}, nil)
	require.NoError(t, err)
	require.False(t, next.UniqueSkippedAsDuplicate, "the next period's run after a completed one")
}
