package hooklinetest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/hooklinetest"
	"github.com/hookline/hookline/hooklinetype"
)

// testBundle is what each test shares: a database with one table that the
// handlers below write to.
type testBundle struct {
	pool *pgxpool.Pool
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	ctx := context.Background()
	pool := hooklinetest.Database(ctx, t)
	_, err := pool.Exec(ctx, `CREATE TABLE seen (event_id text PRIMARY KEY, n int NOT NULL)`)
	require.NoError(t, err)
	return &testBundle{pool: pool}
}

func record(ctx context.Context, tx pgx.Tx, ev hooklinetype.Event) error {
	_, err := tx.Exec(ctx, `INSERT INTO seen VALUES ($1, 1)`, ev.EventID)
	return err
}

func seen(t *testing.T, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, eventID string) bool {
	t.Helper()
	var ok bool
	require.NoError(t, q.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM seen WHERE event_id = $1)`, eventID).Scan(&ok))
	return ok
}

func TestApply(t *testing.T) {
	t.Parallel()
	bundle := setup(t)
	ctx := context.Background()

	tests := []struct {
		name       string
		handler    hooklinetype.Handler
		wantErr    error
		wantEffect bool
	}{
		{"the handler's writes are visible through the test's transaction",
			hooklinetype.HandlerFunc(record), nil, true},
		{"a failed handler leaves no effect, as its rolled-back transaction would not",
			hooklinetype.HandlerFunc(func(ctx context.Context, tx pgx.Tx, ev hooklinetype.Event) error {
				if err := record(ctx, tx, ev); err != nil {
					return err
				}
				return errors.New("downstream refused")
			}), nil, false},
		{"a handler that swallows a failed statement is reported, and the test's transaction stays usable",
			hooklinetype.HandlerFunc(func(ctx context.Context, tx pgx.Tx, ev hooklinetype.Event) error {
				if err := record(ctx, tx, ev); err != nil {
					return err
				}
				_, _ = tx.Exec(ctx, `INSERT INTO no_such_table VALUES (1)`)
				return nil
			}), hooklinetest.ErrFailedStatement, false},
		{"a handler that commits its transaction is reported",
			hooklinetype.HandlerFunc(func(ctx context.Context, tx pgx.Tx, ev hooklinetype.Event) error {
				if err := record(ctx, tx, ev); err != nil {
					return err
				}
				return tx.Commit(ctx)
			}), hooklinetest.ErrTransactionEnded, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tx := hooklinetest.Tx(ctx, t, bundle.pool)
			ev := hooklinetest.NewEvent("stripe", "invoice.paid", []byte(`{}`))
			err := hooklinetest.Apply(ctx, tx, tt.handler, ev)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			} else if !tt.wantEffect {
				require.ErrorContains(t, err, "downstream refused")
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tt.wantEffect, seen(t, tx, ev.EventID))
		})
	}
}

func TestTxRollsBackWhenTheTestEnds(t *testing.T) {
	t.Parallel()
	bundle := setup(t)
	ctx := context.Background()
	ev := hooklinetest.NewEvent("bank", "transfer.settled", []byte(`{}`))
	t.Run("apply", func(t *testing.T) {
		tx := hooklinetest.Tx(ctx, t, bundle.pool)
		require.NoError(t, hooklinetest.Apply(ctx, tx, hooklinetype.HandlerFunc(record), ev))
		require.True(t, seen(t, tx, ev.EventID))
	})
	require.False(t, seen(t, bundle.pool, ev.EventID), "the effect went with the subtest's transaction")
}

func TestApplyRoutesThroughAMux(t *testing.T) {
	t.Parallel()
	bundle := setup(t)
	ctx := context.Background()
	mux := hooklinetype.NewMux()
	mux.RegisterFunc("stripe", "invoice.paid", record)
	tx := hooklinetest.Tx(ctx, t, bundle.pool)

	paid := hooklinetest.NewEvent("stripe", "invoice.paid", []byte(`{}`))
	require.NoError(t, hooklinetest.Apply(ctx, tx, mux, paid))
	require.True(t, seen(t, tx, paid.EventID))

	other := hooklinetest.NewEvent("stripe", "invoice.voided", []byte(`{}`))
	require.NoError(t, hooklinetest.Apply(ctx, tx, mux, other), "NotFound completes an unhandled event without effect")
	require.False(t, seen(t, tx, other.EventID))
}

type batchRecorder struct{ hooklinetype.HandlerFunc }

func (batchRecorder) HandleBatch(ctx context.Context, tx pgx.Tx, evs []hooklinetype.Event) error {
	for _, ev := range evs {
		if err := record(ctx, tx, ev); err != nil {
			return err
		}
	}
	return nil
}

func TestApplyBatchRollsBackTheWholeGroupOnFailure(t *testing.T) {
	t.Parallel()
	bundle := setup(t)
	ctx := context.Background()
	tx := hooklinetest.Tx(ctx, t, bundle.pool)
	a := hooklinetest.NewEvent("bank", "transfer.settled", []byte(`{}`))
	b := hooklinetest.NewEvent("bank", "transfer.settled", []byte(`{}`))
	h := batchRecorder{hooklinetype.HandlerFunc(record)}

	require.NoError(t, hooklinetest.ApplyBatch(ctx, tx, h, []hooklinetype.Event{a, b}))
	require.True(t, seen(t, tx, a.EventID))
	require.True(t, seen(t, tx, b.EventID))

	c := hooklinetest.NewEvent("bank", "transfer.settled", []byte(`{}`))
	err := hooklinetest.ApplyBatch(ctx, tx, h, []hooklinetype.Event{c, a}) // a again: primary key violation
	require.Error(t, err)
	require.False(t, seen(t, tx, c.EventID), "c's write went with the failed group")
	require.True(t, seen(t, tx, a.EventID), "the earlier group is untouched")
}

func TestDatabaseIsMigratedAndDroppedWhenTheTestEnds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var name string
	t.Run("use", func(t *testing.T) {
		pool := hooklinetest.Database(ctx, t)
		require.NoError(t, pool.QueryRow(ctx, `SELECT current_database()`).Scan(&name))
		var migrated bool
		require.NoError(t, pool.QueryRow(ctx, `SELECT to_regclass('inbox_events') IS NOT NULL AND to_regclass('river_job') IS NOT NULL`).Scan(&migrated))
		require.True(t, migrated)
	})
	other := hooklinetest.Database(ctx, t)
	var exists bool
	require.NoError(t, other.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists))
	require.False(t, exists, "database %s dropped", name)
}

func TestNewEventGivesEachEventItsOwnID(t *testing.T) {
	t.Parallel()
	a := hooklinetest.NewEvent("stripe", "invoice.paid", nil)
	b := hooklinetest.NewEvent("stripe", "invoice.paid", nil)
	require.NotEqual(t, a.EventID, b.EventID)
	require.NotEqual(t, a.InboxID, b.InboxID)
	require.Positive(t, a.InboxID)
	require.False(t, a.ReceivedAt.IsZero())
}

func TestEnqueueStoresTheEventWithItsJobOnceAndNamesTheJobOnTheRow(t *testing.T) {
	t.Parallel()
	bundle := setup(t)
	ctx := context.Background()
	tx := hooklinetest.Tx(ctx, t, bundle.pool)
	ev := hooklinetest.NewEvent("stripe", "invoice.paid", []byte(`{"id":"evt"}`))

	stored, err := hooklinetest.Enqueue(ctx, tx, ev)
	require.NoError(t, err)
	require.NotEqual(t, ev.InboxID, stored.InboxID, "the stored row's id replaces the made-up one")
	var jobs int
	require.NoError(t, tx.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = $1 AND (args->>'inbox_id')::bigint = $2`,
		hooklinetype.JobKind, stored.InboxID).Scan(&jobs))
	require.Equal(t, 1, jobs)
	// As the receiver does, the row names its job, for hookctl events.
	var named int
	require.NoError(t, tx.QueryRow(ctx, `SELECT count(*) FROM inbox_events e JOIN river_job j ON j.id = e.job_id
		WHERE e.id = $1 AND (j.args->>'inbox_id')::bigint = e.id`, stored.InboxID).Scan(&named))
	require.Equal(t, 1, named)

	_, err = hooklinetest.Enqueue(ctx, tx, ev)
	require.ErrorIs(t, err, hooklinetest.ErrDuplicate)
}
