package ingest_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type testBundle struct {
	db       *pgtest.DB
	ingester *ingest.Single
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	db := pgtest.NewDB(t)
	rc := newRiverClient(t, db.Pool)
	return &testBundle{db: db, ingester: ingest.NewSingle(db.Pool, rc)}
}

// newRiverClient returns an insert-only River client on pool with the
// receiver's JobIDs middleware, as the receiver builds its own.
func newRiverClient(tb testing.TB, pool *pgxpool.Pool) *river.Client[pgx.Tx] {
	tb.Helper()
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Logger:     slog.New(slog.DiscardHandler),
		Middleware: []rivertype.Middleware{&ingest.JobIDs{}},
	})
	require.NoError(tb, err)
	return rc
}

func (b *testBundle) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM `+pgx.Identifier{table}.Sanitize()).Scan(&n))
	return n
}

func event(id string) inbox.NewEvent {
	return inbox.NewEvent{Source: "bank", EventID: id, Type: "transfer.settled", Payload: []byte(`{"id":"` + id + `"}`)}
}

func TestSingleAcceptsNewEventThenReportsDuplicate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	outcome, err := b.ingester.Ingest(ctx, event("tr_1"))
	require.NoError(t, err)
	require.Equal(t, ingest.Accepted, outcome)

	outcome, err = b.ingester.Ingest(ctx, event("tr_1"))
	require.NoError(t, err)
	require.Equal(t, ingest.Duplicate, outcome)

	require.Equal(t, 1, b.count(t, "inbox_events"))
	require.Equal(t, 1, b.count(t, "river_job"))
}

// If the job cannot be enqueued, the inbox row must not survive either:
// a stored event with no job would be acknowledged and never processed.
func TestSingleStoresNothingWhenEnqueueFails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, err := b.db.Pool.Exec(ctx, `ALTER TABLE river_job ADD CONSTRAINT refuse_all CHECK (false) NOT VALID`)
	require.NoError(t, err)

	_, err = b.ingester.Ingest(ctx, event("tr_halfway"))
	require.ErrorContains(t, err, "enqueue event bank/tr_halfway")
	require.Equal(t, 0, b.count(t, "inbox_events"))
}

func TestSingleReturnsErrorWhenContextIsDone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := b.ingester.Ingest(ctx, event("tr_cancelled"))
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 0, b.count(t, "inbox_events"))
}

func TestSingleCountsADuplicate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for range 3 {
		_, err := b.ingester.Ingest(ctx, event("tr_dup"))
		require.NoError(t, err)
	}
	var dups int
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT coalesce(sum(count), 0) FROM inbox_duplicates WHERE source = 'bank'`).Scan(&dups))
	require.Equal(t, 2, dups)
}
