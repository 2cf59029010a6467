package ops_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/ops"
	"github.com/hookline/hookline/internal/pgtest"
)

// benchEvents is how many events, each with its job, BenchmarkEvents
// stores: HOOKLINE_BENCH_EVENTS, or a million.
func benchEvents(b *testing.B) int {
	if s := os.Getenv("HOOKLINE_BENCH_EVENTS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(b, err, "HOOKLINE_BENCH_EVENTS")
		return n
	}
	return 1_000_000
}

// oldListQuery is the list's query before the inbox recorded each event's
// job: every listed event searched river_job.args for its inbox id. It is
// kept here to measure what the change saved, on the same data.
const oldListQuery = `
	SELECT e.id, e.source, e.event_id, e.event_type, e.received_at, e.processed_at, e.pruned_at,
	       j.id, j.state::text, j.attempt, j.max_attempts, coalesce((j.args->>'replay')::boolean, false),
	       j.created_at, j.finalized_at, coalesce(j.errors[array_length(j.errors, 1)]->>'error', '')
	FROM inbox_events e
	LEFT JOIN LATERAL (
		SELECT * FROM (
			SELECT id, state, attempt, max_attempts, args, created_at, finalized_at, errors
			FROM river_job
			WHERE kind = $1 AND args @> jsonb_build_object('inbox_id', e.id)
			OFFSET 0) jobs
		ORDER BY id DESC LIMIT 1) j ON true
	WHERE true
	ORDER BY e.id DESC LIMIT $2`

// BenchmarkEvents times hookctl events list and get at a million events
// and a million jobs (HOOKLINE_BENCH_EVENTS): a page of 50 events, newest,
// deep in the inbox and filtered by status, and one event with its jobs.
// Old/ runs the list's former query, which searched river_job.args, on the
// same data.
//
// Each runs twice. Fresh/ is the tables as loaded and analyzed: River's
// GIN index on args still holds the last inserts in its pending list,
// which every search through it reads, as it does on a busy queue between
// two merges. Vacuumed/ is after VACUUM merged it. Run it with
// `make bench-events`; the figures are in docs/BENCHMARKS.md.
func BenchmarkEvents(b *testing.B) {
	n := benchEvents(b)
	db := pgtest.NewDB(b)
	ctx := context.Background()
	start := time.Now()
	const chunk = 100_000
	for from := 1; from <= n; from += chunk {
		seedEvents(b, db.Pool, from, min(from+chunk-1, n))
	}
	b.Logf("stored %d events and %d jobs in %s", n, n+n/500, time.Since(start).Round(time.Second))

	client, err := ops.New(db.Pool)
	require.NoError(b, err)
	list := func(f ops.EventFilter) func(*testing.B) {
		return func(b *testing.B) {
			for b.Loop() {
				evs, err := client.ListEvents(ctx, f)
				require.NoError(b, err)
				require.Len(b, evs, f.Limit)
			}
		}
	}
	get := func(eventID string, jobs int) func(*testing.B) {
		return func(b *testing.B) {
			for b.Loop() {
				ev, err := client.GetEvent(ctx, "stripe", eventID, false)
				require.NoError(b, err)
				require.Len(b, ev.Jobs, jobs)
			}
		}
	}
	oldList := func(b *testing.B) {
		for b.Loop() {
			var rows int
			err := pgx.BeginTxFunc(ctx, db.Pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
					return err
				}
				r, err := tx.Query(ctx, oldListQuery, "process_event", 50)
				if err != nil {
					return err
				}
				for r.Next() {
					rows++
				}
				return r.Err()
			})
			require.NoError(b, err)
			require.Equal(b, 50, rows)
		}
	}
	runAll := func(state string) {
		b.Run(state+"/List/Newest50", list(ops.EventFilter{Limit: 50}))
		b.Run(state+"/List/50BeforeTheMiddle", list(ops.EventFilter{Limit: 50, Before: int64(n / 2)}))
		b.Run(state+"/List/Processed50", list(ops.EventFilter{Limit: 50, Status: ops.StatusProcessed}))
		b.Run(state+"/List/Failed50", list(ops.EventFilter{Limit: 50, Status: "failed"}))
		b.Run(state+"/Get/ReplayedDeadLetter", get("evt_500", 2))
		b.Run(state+"/Get/Processed", get("evt_777", 1))
		b.Run(state+"/Old/List/Newest50", oldList)
	}
	runAll("Fresh")
	_, err = db.Pool.Exec(ctx, `VACUUM ANALYZE river_job, inbox_events, replay_audit`)
	require.NoError(b, err)
	runAll("Vacuumed")
}
