package dispatch_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/dispatch"
	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/pgtest"
)

// orderTables are the tables of the ordered test handler: the object's
// state as its handler leaves it (overwritten by every run, so a stale
// event that ran would show), each committed application, and each
// execution's entry and exit, recorded outside the handler's transaction so
// that runs which roll back are seen too.
const orderTables = `
	CREATE TABLE object_state (object text PRIMARY KEY, event_id text NOT NULL, event_time timestamptz NOT NULL);
	CREATE TABLE order_applied (event_id text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
	CREATE TABLE order_runs (id bigserial PRIMARY KEY, event_id text NOT NULL, pid int NOT NULL,
		entered_at timestamptz NOT NULL, left_at timestamptz);`

// orderHandler writes its event's id and time as its object's state.
type orderHandler struct {
	// runs, if set, receives the entry and exit of each execution.
	runs *pgxpool.Pool
	// hold is how long each execution lasts, to make overlaps likely.
	hold time.Duration
	// stall, if set, is an event whose execution never ends by itself.
	stall string
}

func (h *orderHandler) Handle(ctx context.Context, tx pgx.Tx, ev hooklinetype.Event) error {
	var run int64
	if h.runs != nil {
		if err := h.runs.QueryRow(ctx, `INSERT INTO order_runs (event_id, pid, entered_at) VALUES ($1, $2, clock_timestamp()) RETURNING id`,
			ev.EventID, os.Getpid()).Scan(&run); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO order_applied (event_id) VALUES ($1)`, ev.EventID); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO object_state VALUES ($1, $2, $3)
		ON CONFLICT (object) DO UPDATE SET event_id = excluded.event_id, event_time = excluded.event_time`,
		ev.Object, ev.EventID, ev.Time); err != nil {
		return err
	}
	if ev.EventID == h.stall {
		<-ctx.Done()
		return ctx.Err()
	}
	time.Sleep(h.hold)
	if h.runs != nil {
		if _, err := h.runs.Exec(ctx, `UPDATE order_runs SET left_at = clock_timestamp() WHERE id = $1`, run); err != nil {
			return err
		}
	}
	return nil
}

// staleCounter is a StaleObserver that counts.
type staleCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *staleCounter) ObserveStale(source, eventType string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[source+"/"+eventType]++
}

func (c *staleCounter) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

type orderBundle struct {
	db     *pgtest.DB
	client *river.Client[pgx.Tx]
	insert *river.Client[pgx.Tx]
	events <-chan *river.Event
	stale  *staleCounter
}

// t0 is the time of the tests' first event.
var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

// subEvent is the nth event of a subscription, created n seconds after t0.
func subEvent(id string, n int, object string) inbox.NewEvent {
	return inbox.NewEvent{Source: "stripe", EventID: id, Type: "customer.subscription.updated",
		Payload: []byte(`{}`), Time: t0.Add(time.Duration(n) * time.Second), Object: object}
}

// setupOrdered creates the ordered handler's tables and stores evs with
// their jobs, then starts a River client working them with mux: with
// grouping, every job is fetched at once and waits up to 300ms for its
// group to fill.
func setupOrdered(t *testing.T, mux *hooklinetype.Mux, group bool, evs ...inbox.NewEvent) *orderBundle {
	t.Helper()
	return setupOrderedAfter(t, mux, group, nil, evs...)
}

// setupOrderedAfter is setupOrdered, calling before, if set, once the
// events are stored and before the worker starts.
func setupOrderedAfter(t *testing.T, mux *hooklinetype.Mux, group bool, before func(*pgtest.DB), evs ...inbox.NewEvent) *orderBundle {
	t.Helper()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	_, err := db.Pool.Exec(ctx, orderTables)
	require.NoError(t, err)
	logger := slog.New(slog.DiscardHandler)
	insertOnly, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{Logger: logger})
	require.NoError(t, err)
	b := &orderBundle{db: db, insert: insertOnly, stale: &staleCounter{}}
	for _, ev := range evs {
		b.ingest(t, ev)
	}
	if before != nil {
		before(db)
	}
	opts := dispatch.WorkerOpts{GroupMaxSize: 1, Stale: b.stale}
	if group {
		opts.GroupMaxSize, opts.GroupMaxWait = max(2, len(evs)), 300*time.Millisecond
	}
	b.client, b.events = startWorker(t, db, mux, opts, max(5, len(evs)))
	return b
}

func (b *orderBundle) ingest(t *testing.T, ev inbox.NewEvent) {
	t.Helper()
	outcome, err := ingest.NewSingle(b.db.Pool, b.insert).Ingest(context.Background(), ev)
	require.NoError(t, err)
	require.Equal(t, ingest.Accepted, outcome)
}

// waitCompleted waits for n jobs to complete; any other final state fails.
func (b *orderBundle) waitCompleted(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for range n {
		select {
		case ev := <-b.events:
			require.Equal(t, rivertype.JobStateCompleted, ev.Job.State, "job %d: %v", ev.Job.ID, ev.Job.Errors)
		case <-timeout:
			t.Fatal("jobs did not complete within 20s")
		}
	}
}

// state returns the event whose state the object holds.
func state(t *testing.T, db *pgtest.DB, object string) string {
	t.Helper()
	var id string
	require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT event_id FROM object_state WHERE object = $1`, object).Scan(&id))
	return id
}

// applied returns the events applied, in the order they were.
func applied(t *testing.T, db *pgtest.DB) []string {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT event_id FROM order_applied ORDER BY at`)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return ids
}

// superseded returns, per event, the newer event that made it stale ("" if
// it was applied).
func superseded(t *testing.T, db *pgtest.DB) map[string]string {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT event_id, coalesce(superseded_by, '') FROM inbox_events WHERE processed_at IS NOT NULL`)
	require.NoError(t, err)
	out := map[string]string{}
	var id, by string
	_, err = pgx.ForEachRow(rows, []any{&id, &by}, func() error { out[id] = by; return nil })
	require.NoError(t, err)
	return out
}

func orderedMux(h hooklinetype.Handler, opts hooklinetype.HandlerOpts) *hooklinetype.Mux {
	mux := hooklinetype.NewMux()
	mux.RegisterWith("stripe", "customer.subscription.updated", h, opts)
	return mux
}

// TestOrderedEventsDeliveredThreeOneTwoLeaveTheNewestState delivers the
// events of t1 < t2 < t3 for one subscription in the order 3, 1, 2, each
// after the one before was worked: the final state is t3's, 1 and 2 are
// completed as stale (their handler never ran) naming evt_3, and counted.
func TestOrderedEventsDeliveredThreeOneTwoLeaveTheNewestState(t *testing.T) {
	t.Parallel()
	for _, group := range []bool{false, true} {
		t.Run(fmt.Sprintf("group=%t", group), func(t *testing.T) {
			t.Parallel()
			b := setupOrdered(t, orderedMux(&orderHandler{}, hooklinetype.HandlerOpts{Ordered: true, Group: group}), group)
			for _, ev := range []inbox.NewEvent{subEvent("evt_3", 3, "sub_1"), subEvent("evt_1", 1, "sub_1"), subEvent("evt_2", 2, "sub_1")} {
				b.ingest(t, ev)
				b.waitCompleted(t, 1)
			}
			require.Equal(t, "evt_3", state(t, b.db, "sub_1"))
			require.Equal(t, []string{"evt_3"}, applied(t, b.db))
			require.Equal(t, map[string]string{"evt_3": "", "evt_1": "evt_3", "evt_2": "evt_3"}, superseded(t, b.db))
			require.Equal(t, 2, b.stale.count("stripe/customer.subscription.updated"))

			var markID string
			var markTime time.Time
			require.NoError(t, b.db.Pool.QueryRow(context.Background(),
				`SELECT event_id, event_time FROM object_watermarks WHERE source = 'stripe' AND object_key = 'sub_1'`).Scan(&markID, &markTime))
			require.Equal(t, "evt_3", markID)
			require.True(t, t0.Add(3*time.Second).Equal(markTime))
		})
	}
}

// TestInAGroupOneObjectsEventsApplyInEventTimeOrder stores 3, 1, 2 before
// the worker starts, so that they share a group: all three apply, in
// event-time order, and the object of another subscription, between them,
// keeps its place. An event older than all of them, delivered later, is
// stale.
func TestInAGroupOneObjectsEventsApplyInEventTimeOrder(t *testing.T) {
	t.Parallel()
	b := setupOrdered(t, orderedMux(&orderHandler{}, hooklinetype.HandlerOpts{Ordered: true, Group: true}), true,
		subEvent("evt_3", 3, "sub_1"), subEvent("other", 9, "sub_2"), subEvent("evt_1", 1, "sub_1"), subEvent("evt_2", 2, "sub_1"))
	b.waitCompleted(t, 4)
	require.Equal(t, []string{"evt_1", "other", "evt_2", "evt_3"}, applied(t, b.db))
	require.Equal(t, "evt_3", state(t, b.db, "sub_1"))
	require.Equal(t, "other", state(t, b.db, "sub_2"))

	b.ingest(t, subEvent("evt_0", 0, "sub_1"))
	b.waitCompleted(t, 1)
	require.Equal(t, "evt_3", superseded(t, b.db)["evt_0"])
	require.Equal(t, "evt_3", state(t, b.db, "sub_1"))
}

// TestEqualEventTimesAreOrderedByEventID: two events of one second (Stripe's
// created has no finer grain) are ordered by their ids' bytes, whichever
// comes first: the greater id wins, and the smaller is stale if it comes
// after.
func TestEqualEventTimesAreOrderedByEventID(t *testing.T) {
	t.Parallel()
	b := setupOrdered(t, orderedMux(&orderHandler{}, hooklinetype.HandlerOpts{Ordered: true}), false)
	b.ingest(t, subEvent("evt_B", 5, "sub_1"))
	b.waitCompleted(t, 1)
	b.ingest(t, subEvent("evt_A", 5, "sub_1"))
	b.waitCompleted(t, 1)
	b.ingest(t, subEvent("evt_C", 5, "sub_1"))
	b.waitCompleted(t, 1)
	require.Equal(t, []string{"evt_B", "evt_C"}, applied(t, b.db))
	require.Equal(t, "evt_B", superseded(t, b.db)["evt_A"])
	require.Equal(t, "evt_C", state(t, b.db, "sub_1"))
}

// TestAReplayOfAnOlderEventRunsItsOrderedHandler: an operator's replay is
// deliberate, so the stale guard lets it through; the mark keeps the
// newest event, so a later retry of another old event is still stale.
func TestAReplayOfAnOlderEventRunsItsOrderedHandler(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupOrdered(t, orderedMux(&orderHandler{}, hooklinetype.HandlerOpts{Ordered: true}), false)
	b.ingest(t, subEvent("evt_1", 1, "sub_1"))
	b.waitCompleted(t, 1)
	b.ingest(t, subEvent("evt_2", 2, "sub_1"))
	b.waitCompleted(t, 1)

	var inboxID int64
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT id FROM inbox_events WHERE event_id = 'evt_1'`).Scan(&inboxID))
	_, err := b.client.Insert(ctx, hooklinetype.JobArgs{InboxID: inboxID, Source: "stripe", EventID: "evt_1",
		Type: "customer.subscription.updated", Replay: true}, nil)
	require.NoError(t, err)
	b.waitCompleted(t, 1)
	require.Equal(t, []string{"evt_1", "evt_2", "evt_1"}, applied(t, b.db))
	require.Equal(t, "evt_1", state(t, b.db, "sub_1"), "the replay ran, as asked")
	require.Empty(t, superseded(t, b.db)["evt_1"])

	var mark string
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT event_id FROM object_watermarks WHERE object_key = 'sub_1'`).Scan(&mark))
	require.Equal(t, "evt_2", mark, "a replay never moves the mark back")
}

// TestEventsWithoutAnObjectOrAnUnorderedHandlerAreNeverStale: ordering
// applies only to Ordered routes, and only to events with an object key.
func TestEventsWithoutAnObjectOrAnUnorderedHandlerAreNeverStale(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		opts    hooklinetype.HandlerOpts
		object  string
		applied []string
	}{
		{"unordered", hooklinetype.HandlerOpts{}, "sub_1", []string{"evt_2", "evt_1"}},
		{"no object", hooklinetype.HandlerOpts{Ordered: true}, "", []string{"evt_2", "evt_1"}},
		{"ordered", hooklinetype.HandlerOpts{Ordered: true}, "sub_1", []string{"evt_2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupOrdered(t, orderedMux(&orderHandler{}, tt.opts), false)
			b.ingest(t, subEvent("evt_2", 2, tt.object))
			b.waitCompleted(t, 1)
			b.ingest(t, subEvent("evt_1", 1, tt.object))
			b.waitCompleted(t, 1)
			require.Equal(t, tt.applied, applied(t, b.db))
		})
	}
}

// TestABusyObjectIsLeftOutOfItsGroupAndAppliedAfter holds one object's
// lock, as another transaction applying it would: the group's other events
// commit without waiting for it, and the busy one is applied once the lock
// is released.
func TestABusyObjectIsLeftOutOfItsGroupAndAppliedAfter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var holder pgx.Tx
	b := setupOrderedAfter(t, orderedMux(&orderHandler{}, hooklinetype.HandlerOpts{Ordered: true, Group: true}), true,
		func(db *pgtest.DB) {
			var err error
			holder, err = db.Pool.Begin(ctx)
			require.NoError(t, err)
			_, err = holder.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, dispatch.ObjectLock("stripe", "sub_2"))
			require.NoError(t, err)
		},
		subEvent("evt_a", 1, "sub_1"), subEvent("evt_b", 1, "sub_2"), subEvent("evt_c", 1, "sub_3"))
	t.Cleanup(func() { _ = holder.Rollback(ctx) })

	b.waitCompleted(t, 2)
	require.ElementsMatch(t, []string{"evt_a", "evt_c"}, applied(t, b.db))
	require.NoError(t, holder.Rollback(ctx))
	b.waitCompleted(t, 1)
	require.ElementsMatch(t, []string{"evt_a", "evt_b", "evt_c"}, applied(t, b.db))
}

// store puts ev in the inbox and, unless at is zero, its job, to run at at
// (scheduled), as a retry or a late delivery would leave it.
func (b *orderBundle) store(t *testing.T, ev inbox.NewEvent, at time.Time) {
	t.Helper()
	ctx := context.Background()
	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	row, ok, err := inbox.Insert(ctx, tx, ev)
	require.NoError(t, err)
	require.True(t, ok)
	if !at.IsZero() {
		_, err = b.insert.InsertTx(ctx, tx, hooklinetype.JobArgs{InboxID: row.ID, Source: ev.Source, EventID: ev.EventID, Type: ev.Type, Object: ev.Object},
			&river.InsertOpts{ScheduledAt: at})
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit(ctx))
}

// TestHoldForLetsAnOlderQueuedEventApplyFirst stores evt_1 with its job due
// a second later (a retry, say) and evt_2, newer, due now: with HoldFor,
// evt_2's job is snoozed until evt_1 has applied, so both apply, in order,
// and neither is stale.
func TestHoldForLetsAnOlderQueuedEventApplyFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupOrdered(t, orderedMux(&orderHandler{}, hooklinetype.HandlerOpts{Ordered: true, HoldFor: 30 * time.Second}), false)
	b.store(t, subEvent("evt_1", 1, "sub_1"), time.Now().Add(time.Second))
	b.ingest(t, subEvent("evt_2", 2, "sub_1"))
	b.waitCompleted(t, 2)
	require.Equal(t, []string{"evt_1", "evt_2"}, applied(t, b.db))
	require.Equal(t, map[string]string{"evt_1": "", "evt_2": ""}, superseded(t, b.db))
	var snoozes int
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT coalesce((metadata->>'snoozes')::int, 0) FROM river_job WHERE args->>'event_id' = 'evt_2'`).Scan(&snoozes))
	require.Positive(t, snoozes)
}

// TestHoldForIsBounded: an older event that will never apply (stored, its
// job gone) holds a newer one for HoldFor, then no longer.
func TestHoldForIsBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupOrdered(t, orderedMux(&orderHandler{}, hooklinetype.HandlerOpts{Ordered: true, HoldFor: 1500 * time.Millisecond}), false)
	b.store(t, subEvent("evt_1", 1, "sub_1"), time.Time{})
	b.ingest(t, subEvent("evt_2", 2, "sub_1"))
	b.waitCompleted(t, 1)
	require.Equal(t, []string{"evt_2"}, applied(t, b.db))
	var held time.Duration
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT a.at - j.created_at FROM order_applied a, river_job j
		WHERE a.event_id = 'evt_2' AND j.args->>'event_id' = 'evt_2'`).Scan(&held))
	require.GreaterOrEqual(t, held, 1400*time.Millisecond, "held %s", held)
}

// TestJobsEnqueuedWithoutTheObjectAreStillOrdered: jobs enqueued before
// their args carried the object key take the object's lock after the
// claim, and read its mark then; they are ordered all the same.
func TestJobsEnqueuedWithoutTheObjectAreStillOrdered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, group := range []bool{false, true} {
		t.Run(fmt.Sprintf("group=%t", group), func(t *testing.T) {
			t.Parallel()
			b := setupOrdered(t, orderedMux(&orderHandler{}, hooklinetype.HandlerOpts{Ordered: true, Group: group}), group)
			b.ingest(t, subEvent("evt_2", 2, "sub_1"))
			b.waitCompleted(t, 1)

			old := subEvent("evt_1", 1, "sub_1")
			tx, err := b.db.Pool.Begin(ctx)
			require.NoError(t, err)
			row, ok, err := inbox.Insert(ctx, tx, old)
			require.NoError(t, err)
			require.True(t, ok)
			_, err = b.insert.InsertTx(ctx, tx, hooklinetype.JobArgs{InboxID: row.ID, Source: old.Source, EventID: old.EventID, Type: old.Type}, nil)
			require.NoError(t, err)
			require.NoError(t, tx.Commit(ctx))
			b.waitCompleted(t, 1)

			require.Equal(t, []string{"evt_2"}, applied(t, b.db))
			require.Equal(t, "evt_2", superseded(t, b.db)["evt_1"])
		})
	}
}
