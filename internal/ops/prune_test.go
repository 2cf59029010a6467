package ops_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/ops"
	"github.com/hookline/hookline/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// addProcessed stores n events received and processed ago, with no jobs,
// and returns their ids.
func addProcessed(t *testing.T, db *pgtest.DB, n int, ago time.Duration) []int64 {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `
		INSERT INTO inbox_events (source, event_id, payload, headers, received_at, processed_at)
		SELECT 'stripe', 'evt_' || g || '_' || $2::text, 'body', '{"A":"b"}', now() - $1::interval, now() - $1::interval
		FROM generate_series(1, $3) g
		RETURNING id`, ago, ago.String(), n)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	return ids
}

func prunedCount(t *testing.T, db *pgtest.DB) int {
	t.Helper()
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM inbox_events WHERE pruned_at IS NOT NULL AND payload = ''`).Scan(&n))
	return n
}

func TestPruneWorksThroughEveryBatch(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	addProcessed(t, db, 7, 10*24*time.Hour)
	addProcessed(t, db, 5, 40*24*time.Hour)

	res, err := ops.Prune(context.Background(), db.Pool, ops.PruneOpts{
		OlderThan: 7 * 24 * time.Hour, KeepKeysFor: 30 * 24 * time.Hour, BatchSize: 2,
	})
	require.NoError(t, err)
	require.Equal(t, int64(7), res.PayloadsPruned)
	require.Equal(t, int64(5), res.RowsDeleted)
	require.Equal(t, 7, prunedCount(t, db))
}

func TestPruneInsideACallersTransactionCommitsWithIt(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	addProcessed(t, db, 3, 10*24*time.Hour)
	opts := ops.PruneOpts{OlderThan: 24 * time.Hour, KeepKeysFor: 30 * 24 * time.Hour}
	ctx := context.Background()

	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	res, err := ops.Prune(ctx, tx, opts)
	require.NoError(t, err)
	require.Equal(t, int64(3), res.PayloadsPruned)
	require.NoError(t, tx.Rollback(ctx))
	require.Zero(t, prunedCount(t, db), "rolled back with the caller's transaction")

	require.NoError(t, pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		_, err := ops.Prune(ctx, tx, opts)
		return err
	}))
	require.Equal(t, 3, prunedCount(t, db))
}

func TestPruneSkipsARowAWorkerHoldsInsteadOfWaiting(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	ids := addProcessed(t, db, 3, 10*24*time.Hour)
	ctx := context.Background()

	// A worker replaying ids[1] holds its row, as inbox.ClaimMany does.
	worker, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer worker.Rollback(ctx) //nolint:errcheck
	_, err = worker.Exec(ctx, `SELECT 1 FROM inbox_events WHERE id = $1 FOR UPDATE`, ids[1])
	require.NoError(t, err)

	pruneCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := ops.Prune(pruneCtx, db.Pool, ops.PruneOpts{OlderThan: 24 * time.Hour, KeepKeysFor: 30 * 24 * time.Hour})
	require.NoError(t, err)
	require.Equal(t, int64(2), res.PayloadsPruned)
	var prunedAt *time.Time
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT pruned_at FROM inbox_events WHERE id = $1`, ids[1]).Scan(&prunedAt))
	require.Nil(t, prunedAt, "the next run takes it")
}

func TestPruneOptsValidate(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	tests := []struct {
		name    string
		opts    ops.PruneOpts
		wantErr string
	}{
		{"Valid", ops.PruneOpts{OlderThan: 7 * day, KeepKeysFor: 30 * day}, ""},
		{"ZeroOlderThan", ops.PruneOpts{KeepKeysFor: 30 * day}, "older-than must be positive"},
		{"KeysEqualPayloads", ops.PruneOpts{OlderThan: 7 * day, KeepKeysFor: 7 * day}, "must be longer than older-than"},
		{"KeysShorter", ops.PruneOpts{OlderThan: 7 * day, KeepKeysFor: day}, "must be longer than older-than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.opts.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			_, err = ops.Prune(context.Background(), nil, tt.opts)
			require.ErrorContains(t, err, tt.wantErr, "Prune validates before touching the database")
		})
	}
}
