package dispatch

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/pgtest"
)

// TestGroupsThatLockRowsInOppositeOrdersBothComplete runs two groups at
// once whose handlers update the same two accounts in opposite orders, and
// holds each after its first update until the other has made its own: a
// certain deadlock. Postgres aborts one group; it must be tried again, not
// reported as a failure to any job, and every event applied once.
func TestGroupsThatLockRowsInOppositeOrdersBothComplete(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	ctx := context.Background()
	_, err := db.Pool.Exec(ctx, `CREATE TABLE accounts (name text PRIMARY KEY, n int NOT NULL);
		INSERT INTO accounts VALUES ('A', 0), ('B', 0)`)
	require.NoError(t, err)

	// Each event names the account it adds 1 to.
	var ids []int64
	for _, acc := range []string{"A", "B", "B", "A"} {
		var id int64
		require.NoError(t, db.Pool.QueryRow(ctx, `INSERT INTO inbox_events (source, event_id, event_type, payload)
			VALUES ('grp', gen_random_uuid()::text, 't', $1) RETURNING id`, []byte(acc)).Scan(&id))
		ids = append(ids, id)
	}

	// Both groups' first updates must be made before either makes its
	// second; only on the first try, so that a retry runs freely.
	var bothLocked sync.WaitGroup
	bothLocked.Add(2)
	waits := map[int64]*sync.Once{ids[0]: {}, ids[2]: {}}
	mux := hooklinetype.NewMux()
	mux.RegisterWith("grp", "t", hooklinetype.HandlerFunc(func(ctx context.Context, tx pgx.Tx, ev hooklinetype.Event) error {
		if _, err := tx.Exec(ctx, `UPDATE accounts SET n = n + 1 WHERE name = $1`, string(ev.Payload)); err != nil {
			return err
		}
		if once, ok := waits[ev.InboxID]; ok {
			once.Do(func() { bothLocked.Done(); bothLocked.Wait() })
		}
		return nil
	}), hooklinetype.HandlerOpts{Group: true})
	obs := &deadlockObserver{}
	w := NewWorker(db.Pool, mux, slog.New(slog.DiscardHandler), WorkerOpts{GroupMaxSize: 2, Transactions: 2, Observer: obs})

	job := func(jobID, inboxID int64) *member {
		return &member{ctx: ctx, done: make(chan error, 1), job: &river.Job[hooklinetype.JobArgs]{
			JobRow: &rivertype.JobRow{ID: jobID, Attempt: 1},
			Args:   hooklinetype.JobArgs{InboxID: inboxID, Source: "grp", Type: "t"},
		}}
	}
	// Group 1 updates A then B; group 2, B then A.
	g1 := &group{first: time.Now(), members: []*member{job(1, ids[0]), job(2, ids[1])}}
	g2 := &group{first: time.Now(), members: []*member{job(3, ids[2]), job(4, ids[3])}}
	var flushes sync.WaitGroup
	for _, g := range []*group{g1, g2} {
		flushes.Go(func() { w.flush(g) })
	}
	flushes.Wait()

	for _, g := range []*group{g1, g2} {
		for _, m := range g.members {
			require.NoError(t, <-m.done, "job %d", m.job.ID)
		}
	}
	var a, b int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT (SELECT n FROM accounts WHERE name = 'A'), (SELECT n FROM accounts WHERE name = 'B')`).Scan(&a, &b))
	require.Equal(t, [2]int{2, 2}, [2]int{a, b}, "each event applied exactly once")
	var unapplied int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM inbox_events WHERE processed_at IS NULL`).Scan(&unapplied))
	require.Zero(t, unapplied)
	// Backends report their statistics within a second or so.
	require.Eventually(t, func() bool {
		var deadlocks int64
		require.NoError(t, db.Pool.QueryRow(ctx, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`).Scan(&deadlocks))
		return deadlocks > 0
	}, 10*time.Second, 50*time.Millisecond, "the groups did deadlock")
	// Usually the loser commits as a group on its second try; under heavy
	// load a second deadlock can send its events through one transaction
	// each instead. Either way, no job saw an error.
	require.Equal(t, int32(2), obs.groups.Load())
	require.LessOrEqual(t, obs.fellBack.Load(), int32(1))
}

type deadlockObserver struct{ groups, fellBack atomic.Int32 }

func (o *deadlockObserver) ObserveGroup(_ int, _, _ time.Duration, fellBack bool) {
	o.groups.Add(1)
	if fellBack {
		o.fellBack.Add(1)
	}
}

// TestTwoJobsForOneEventInAGroup: a group can hold two jobs for one event,
// a stray second job, or a replay beside it. The stray one applies nothing;
// the replay applies the event again, as replays do.
func TestTwoJobsForOneEventInAGroup(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		replay bool
		want   int
	}{
		{"a stray second job applies nothing", false, 1},
		{"a replay beside the first job applies it again", true, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := pgtest.NewDB(t)
			ctx := context.Background()
			var id int64
			require.NoError(t, db.Pool.QueryRow(ctx, `INSERT INTO inbox_events (source, event_id, event_type, payload)
				VALUES ('grp', 'e1', 't', '{}') RETURNING id`).Scan(&id))
			var applied atomic.Int32
			mux := hooklinetype.NewMux()
			mux.RegisterWith("grp", "t", hooklinetype.HandlerFunc(func(context.Context, pgx.Tx, hooklinetype.Event) error {
				applied.Add(1)
				return nil
			}), hooklinetype.HandlerOpts{Group: true})
			w := NewWorker(db.Pool, mux, slog.New(slog.DiscardHandler), WorkerOpts{GroupMaxSize: 2, Transactions: 1})
			job := func(jobID int64, replay bool) *member {
				return &member{ctx: ctx, done: make(chan error, 1), job: &river.Job[hooklinetype.JobArgs]{
					JobRow: &rivertype.JobRow{ID: jobID, Attempt: 1},
					Args:   hooklinetype.JobArgs{InboxID: id, Source: "grp", Type: "t", Replay: replay},
				}}
			}
			g := &group{first: time.Now(), members: []*member{job(1, false), job(2, tt.replay)}}
			w.flush(g)
			for _, m := range g.members {
				require.NoError(t, <-m.done)
			}
			require.Equal(t, int32(tt.want), applied.Load())
		})
	}
}
