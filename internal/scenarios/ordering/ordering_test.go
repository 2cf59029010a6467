package ordering_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/pgtest"
)

// t0 is the time of the first event.
var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

// setup returns a migrated database with the handler's tables, and a
// function that stores an event of subscription sub_1 with its job, as the
// receiver does.
func setup(t *testing.T) (*pgtest.DB, func(t *testing.T, id string, n int)) {
	t.Helper()
	db := pgtest.NewDB(t)
	_, err := db.Pool.Exec(context.Background(), orderTables)
	require.NoError(t, err)
	insertOnly, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{})
	require.NoError(t, err)
	ing := ingest.NewSingle(db.Pool, insertOnly)
	return db, func(t *testing.T, id string, n int) {
		outcome, err := ing.Ingest(context.Background(), inbox.NewEvent{
			Source: "stripe", EventID: id, Type: "customer.subscription.updated", Payload: []byte(`{}`),
			Time: t0.Add(time.Duration(n) * time.Second), Object: "sub_1",
		})
		require.NoError(t, err)
		require.Equal(t, ingest.Accepted, outcome)
	}
}

// waitCompleted waits until n jobs are completed, and fails on a job that
// can no longer complete.
func waitCompleted(t *testing.T, db *pgtest.DB, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var done, dead int
		require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE state = 'completed'),
			count(*) FILTER (WHERE state IN ('discarded', 'cancelled')) FROM river_job`).Scan(&done, &dead))
		require.Zero(t, dead, "jobs discarded or cancelled")
		if done >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d jobs completed within %s", done, n, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// run is one execution of the handler.
type run struct {
	eventID       string
	pid           int
	entered, left time.Time
	leftAtAll     bool
}

func runs(t *testing.T, db *pgtest.DB) []run {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(),
		`SELECT event_id, pid, entered_at, coalesce(left_at, 'infinity'), left_at IS NOT NULL FROM order_runs ORDER BY entered_at, id`)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (run, error) {
		var r run
		err := row.Scan(&r.eventID, &r.pid, &r.entered, &r.left, &r.leftAtAll)
		return r, err
	})
	require.NoError(t, err)
	return out
}

func appliedCount(t *testing.T, db *pgtest.DB) map[string]int {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT event_id, count(*) FROM order_applied GROUP BY 1`)
	require.NoError(t, err)
	out := map[string]int{}
	var id string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&id, &n}, func() error { out[id] = n; return nil })
	require.NoError(t, err)
	return out
}

// TestFiftyEventsOfOneObjectOnTwoWorkerProcessesNeverOverlap stores 50
// events of one subscription, with event times in a random order, from 50
// goroutines at once, while two worker processes (each working 10 jobs at
// once) take them. The handler records each execution's entry and exit: no
// execution may enter before the one before it left, the object's final
// state must be the newest event's, and every event is either applied once
// or stale.
func TestFiftyEventsOfOneObjectOnTwoWorkerProcessesNeverOverlap(t *testing.T) {
	t.Parallel()
	for _, group := range []string{"0", "1"} {
		t.Run("group="+group, func(t *testing.T) {
			db, store := setup(t)
			startWorker(t, db, "ORDER_WORKER_GROUP="+group)
			startWorker(t, db, "ORDER_WORKER_GROUP="+group)

			const n = 50
			times := rand.Perm(n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { store(t, fmt.Sprintf("evt_%02d", times[i]), times[i]) })
			}
			wg.Wait()
			waitCompleted(t, db, n, 60*time.Second)

			rs := runs(t, db)
			require.NotEmpty(t, rs)
			for i := 1; i < len(rs); i++ {
				require.True(t, rs[i-1].leftAtAll, "run of %s never left", rs[i-1].eventID)
				require.False(t, rs[i].entered.Before(rs[i-1].left),
					"%s (pid %d) entered at %s, before %s (pid %d) left at %s",
					rs[i].eventID, rs[i].pid, rs[i].entered, rs[i-1].eventID, rs[i-1].pid, rs[i-1].left)
			}
			// The applied events' times only go up: each was the newest yet.
			for i := 1; i < len(rs); i++ {
				require.Greater(t, rs[i].eventID, rs[i-1].eventID)
			}

			var final string
			require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT event_id FROM object_state WHERE object = 'sub_1'`).Scan(&final))
			require.Equal(t, fmt.Sprintf("evt_%02d", n-1), final)

			applied := appliedCount(t, db)
			var stale, processed, clients int
			require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE superseded_by IS NOT NULL),
				count(*) FILTER (WHERE processed_at IS NOT NULL) FROM inbox_events`).Scan(&stale, &processed))
			require.Equal(t, n, processed)
			require.Equal(t, n, len(applied)+stale, "each event is applied or stale")
			for id, k := range applied {
				require.Equal(t, 1, k, "%s applied %d times", id, k)
			}
			require.NoError(t, db.Pool.QueryRow(context.Background(),
				`SELECT count(DISTINCT attempted_by[1]) FROM river_job`).Scan(&clients))
			require.Equal(t, 2, clients, "both worker processes worked jobs")
			t.Logf("%d applied, %d stale, %d executions", len(applied), stale, len(rs))
		})
	}
}

// TestAWorkerKilledInsideAnOrderedHandlerNeitherSkipsNorDoublesTheEvent
// applies five events of one subscription, then stores a sixth, the
// newest, whose handler stalls; the worker process running it is killed
// with SIGKILL inside the handler, holding the object's lock and the
// uncommitted effect. River's rescuer, in the surviving process, runs the
// job again: the sixth event is then applied exactly once, is not stale,
// and is the object's state and mark.
func TestAWorkerKilledInsideAnOrderedHandlerNeitherSkipsNorDoublesTheEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, store := setup(t)
	_, err := db.Pool.Exec(ctx, `INSERT INTO order_stall VALUES ('evt_6')`)
	require.NoError(t, err)
	procs := []*proc{startWorker(t, db), startWorker(t, db)}
	for i := 1; i <= 5; i++ {
		store(t, fmt.Sprintf("evt_%d", i), i)
		waitCompleted(t, db, i, 30*time.Second)
	}
	store(t, "evt_6", 6)

	// Wait for the handler of evt_6 to be inside, then kill its process.
	var pid int
	require.Eventually(t, func() bool {
		err := db.Pool.QueryRow(ctx, `SELECT pid FROM order_runs WHERE event_id = 'evt_6'`).Scan(&pid)
		return err == nil
	}, 20*time.Second, 10*time.Millisecond)
	var victim *proc
	for _, p := range procs {
		if p.pid() == fmt.Sprint(pid) {
			victim = p
		}
	}
	require.NotNil(t, victim, "pid %d is not a worker of this test", pid)
	victim.kill(t)
	_, err = db.Pool.Exec(ctx, `DELETE FROM order_stall`)
	require.NoError(t, err)

	// The killed transaction rolled back: nothing of evt_6 is committed.
	var processed bool
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT processed_at IS NOT NULL FROM inbox_events WHERE event_id = 'evt_6'`).Scan(&processed))
	require.False(t, processed)
	require.Zero(t, appliedCount(t, db)["evt_6"])

	// The rescuer runs every 30s, and may first have to be elected.
	waitCompleted(t, db, 6, 90*time.Second)
	applied := appliedCount(t, db)
	require.Equal(t, map[string]int{"evt_1": 1, "evt_2": 1, "evt_3": 1, "evt_4": 1, "evt_5": 1, "evt_6": 1}, applied)
	var by *string
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT superseded_by FROM inbox_events WHERE event_id = 'evt_6'`).Scan(&by))
	require.Nil(t, by, "the rerun of the killed event is not stale: its own mark never committed")
	var state, mark string
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT s.event_id, w.event_id FROM object_state s, object_watermarks w
		WHERE s.object = 'sub_1' AND w.object_key = 'sub_1'`).Scan(&state, &mark))
	require.Equal(t, "evt_6", state)
	require.Equal(t, "evt_6", mark)
	var executions int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM order_runs WHERE event_id = 'evt_6'`).Scan(&executions))
	require.Equal(t, 2, executions, "killed once inside the handler, then run again")
}
