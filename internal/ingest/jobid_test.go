package ingest_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/ingest"
)

// requireEachRowRecordsItsJob checks that every inbox row names, in job_id,
// the job whose args point back at it: hookctl events list and get find an
// event's job by that id.
func requireEachRowRecordsItsJob(t *testing.T, pool *pgxpool.Pool, rows int) {
	t.Helper()
	var total, wrong int
	require.NoError(t, pool.QueryRow(context.Background(), `
		SELECT count(*), count(*) FILTER (WHERE j.id IS NULL OR (j.args->>'inbox_id')::bigint <> e.id)
		FROM inbox_events e LEFT JOIN river_job j ON j.id = e.job_id`).Scan(&total, &wrong))
	require.Equal(t, rows, total)
	require.Zero(t, wrong, "inbox rows whose job_id is not their job")
}

func TestSingleRecordsTheEventsJobOnItsInboxRow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := range 3 {
		_, err := b.ingester.Ingest(context.Background(), event(fmt.Sprintf("tr_%d", i)))
		require.NoError(t, err)
	}
	requireEachRowRecordsItsJob(t, b.db.Pool, 3)
}

// With ingest.JobIDs in its River client, the receiver writes each inbox
// row once: the job takes the id the row reserved. The first row of an
// empty table is at (0,1); updated, its visible version would be at (0,2).
func TestSingleWritesTheInboxRowOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.ingester.Ingest(context.Background(), event("tr_once"))
	require.NoError(t, err)
	var ctid string
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `SELECT ctid::text FROM inbox_events`).Scan(&ctid))
	require.Equal(t, "(0,1)", ctid)
	requireEachRowRecordsItsJob(t, b.db.Pool, 1)
}

// A River client without ingest.JobIDs gives jobs ids of its own; the rows
// are then updated to name them.
func TestSingleRecordsTheJobEvenWithoutTheMiddleware(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc, err := river.NewClient(riverpgxv5.New(b.db.Pool), &river.Config{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	plain := ingest.NewSingle(b.db.Pool, rc)
	for i := range 3 {
		_, err := plain.Ingest(context.Background(), event(fmt.Sprintf("tr_%d", i)))
		require.NoError(t, err)
	}
	requireEachRowRecordsItsJob(t, b.db.Pool, 3)
}

func TestBatcherRecordsEachEventsJobOnItsInboxRow(t *testing.T) {
	t.Parallel()
	b := setupBatch(t, ingest.BatchOptions{MaxSize: 20, MaxWait: 5 * time.Millisecond})
	// Some duplicates, so that the rows inserted are not the events sent.
	evs := append(events("tr", 60), events("tr", 30)...)
	_, errs := b.ingestAll(context.Background(), evs)
	for _, err := range errs {
		require.NoError(t, err)
	}
	requireEachRowRecordsItsJob(t, b.db.Pool, 60)
}
