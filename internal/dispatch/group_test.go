package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
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
	"github.com/hookline/hookline/internal/pgtest"
)

// groupRecorder is a GroupObserver that keeps every report.
type groupRecorder struct {
	mu       sync.Mutex
	sizes    []int
	fellBack []bool
}

func (r *groupRecorder) ObserveGroup(size int, _, _ time.Duration, fellBack bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sizes, r.fellBack = append(r.sizes, size), append(r.fellBack, fellBack)
}

func (r *groupRecorder) snapshot() ([]int, []bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.sizes...), append([]bool(nil), r.fellBack...)
}

type groupBundle struct {
	db       *pgtest.DB
	client   *river.Client[pgx.Tx]
	observer *groupRecorder
	events   <-chan *river.Event
}

// setupGroups stores events of type "t" from source "grp" with their jobs,
// then starts a River client whose worker groups them: every job is fetched
// at once and waits up to 300ms for its group to fill, so the events share
// one group.
func setupGroups(t *testing.T, mux *hooklinetype.Mux, ids ...string) *groupBundle {
	t.Helper()
	db := pgtest.NewDB(t)
	_, err := db.Pool.Exec(context.Background(), `CREATE TABLE applied (event_id text NOT NULL, job_id bigint NOT NULL)`)
	require.NoError(t, err)
	logger := slog.New(slog.DiscardHandler)
	insertOnly, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{Logger: logger})
	require.NoError(t, err)
	for _, id := range ids {
		outcome, err := ingest.NewSingle(db.Pool, insertOnly).Ingest(context.Background(), inbox.NewEvent{Source: "grp", EventID: id, Type: "t", Payload: []byte(`{}`)})
		require.NoError(t, err)
		require.Equal(t, ingest.Accepted, outcome)
	}
	rec := &groupRecorder{}
	client, events := startWorker(t, db, mux, dispatch.WorkerOpts{
		GroupMaxSize: max(2, len(ids)), GroupMaxWait: 300 * time.Millisecond, Observer: rec,
	}, len(ids))
	return &groupBundle{db: db, client: client, observer: rec, events: events}
}

// record is a handler that notes each application in the applied table.
func record(ctx context.Context, tx pgx.Tx, ev hooklinetype.Event) error {
	_, err := tx.Exec(ctx, `INSERT INTO applied VALUES ($1, 0)`, ev.EventID)
	return err
}

// applications returns how many times each event was applied.
func (b *groupBundle) applications(t *testing.T) map[string]int {
	t.Helper()
	rows, err := b.db.Pool.Query(context.Background(), `SELECT event_id, count(*) FROM applied GROUP BY 1`)
	require.NoError(t, err)
	out := map[string]int{}
	var id string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&id, &n}, func() error { out[id] = n; return nil })
	require.NoError(t, err)
	return out
}

// waitFinal waits until n jobs have reached a final state, and returns
// them by event id.
func (b *groupBundle) waitFinal(t *testing.T, n int) map[string]*rivertype.JobRow {
	t.Helper()
	out := map[string]*rivertype.JobRow{}
	timeout := time.After(20 * time.Second)
	for len(out) < n {
		select {
		case ev := <-b.events:
			if ev.Kind == river.EventKindJobFailed && ev.Job.State != rivertype.JobStateDiscarded {
				continue // retried
			}
			var args hooklinetype.JobArgs
			require.NoError(t, json.Unmarshal(ev.Job.EncodedArgs, &args))
			out[args.EventID] = ev.Job
		case <-timeout:
			t.Fatalf("%d of %d jobs finished within 20s", len(out), n)
		}
	}
	return out
}

func TestGroupAppliesItsEventsInOneTransaction(t *testing.T) {
	t.Parallel()
	mux := hooklinetype.NewMux()
	mux.RegisterWith("grp", "t", hooklinetype.HandlerFunc(record), hooklinetype.HandlerOpts{Group: true})
	ids := []string{"e1", "e2", "e3", "e4", "e5"}
	b := setupGroups(t, mux, ids...)

	for id, job := range b.waitFinal(t, len(ids)) {
		require.Equal(t, rivertype.JobStateCompleted, job.State, id)
	}
	sizes, fellBack := b.observer.snapshot()
	require.Equal(t, []int{5}, sizes, "the five jobs fetched together share one transaction")
	require.Equal(t, []bool{false}, fellBack)
	require.Equal(t, map[string]int{"e1": 1, "e2": 1, "e3": 1, "e4": 1, "e5": 1}, b.applications(t))
}

// TestAFailingHandlerDoesNotFailItsGroupMates fails one event's handler on
// its first attempt. The group rolls back and its events are applied one
// transaction each: the others at once and exactly once, the failing one on
// River's retry.
func TestAFailingHandlerDoesNotFailItsGroupMates(t *testing.T) {
	t.Parallel()
	var failed atomic.Bool
	mux := hooklinetype.NewMux()
	mux.RegisterWith("grp", "t", hooklinetype.HandlerFunc(func(ctx context.Context, tx pgx.Tx, ev hooklinetype.Event) error {
		if err := record(ctx, tx, ev); err != nil {
			return err
		}
		if ev.EventID == "e3" && failed.CompareAndSwap(false, true) {
			return errors.New("downstream hiccup")
		}
		return nil
	}), hooklinetype.HandlerOpts{Group: true})
	ids := []string{"e1", "e2", "e3", "e4", "e5"}
	b := setupGroups(t, mux, ids...)

	for id, job := range b.waitFinal(t, len(ids)) {
		require.Equal(t, rivertype.JobStateCompleted, job.State, id)
		if id == "e3" {
			require.Equal(t, 2, job.Attempt, "the failing event is retried by River")
		} else {
			require.Equal(t, 1, job.Attempt, "its group-mates are not")
		}
	}
	sizes, fellBack := b.observer.snapshot()
	require.Equal(t, 5, sizes[0])
	require.True(t, fellBack[0], "the group fell back to one transaction per event")
	require.Equal(t, map[string]int{"e1": 1, "e2": 1, "e3": 1, "e4": 1, "e5": 1}, b.applications(t),
		"every effect exactly once: the rolled-back group left nothing behind")
}

func TestAPermanentErrorInAGroupCancelsOnlyItsJob(t *testing.T) {
	t.Parallel()
	mux := hooklinetype.NewMux()
	mux.RegisterWith("grp", "t", hooklinetype.HandlerFunc(func(ctx context.Context, tx pgx.Tx, ev hooklinetype.Event) error {
		if ev.EventID == "e2" {
			return hooklinetype.Permanent(errors.New("missing field"))
		}
		return record(ctx, tx, ev)
	}), hooklinetype.HandlerOpts{Group: true})
	b := setupGroups(t, mux, "e1", "e2", "e3")

	jobs := b.waitFinal(t, 3)
	require.Equal(t, rivertype.JobStateCancelled, jobs["e2"].State)
	require.Equal(t, rivertype.JobStateCompleted, jobs["e1"].State)
	require.Equal(t, rivertype.JobStateCompleted, jobs["e3"].State)
	require.Equal(t, map[string]int{"e1": 1, "e3": 1}, b.applications(t))
}

// TestAJobRunAgainAfterItsEffectCommittedAppliesNothing runs a completed
// job, and a completed replay job, a second time (JobRetry), as River
// does when a worker dies between the effect's commit and the job's
// completion. Only a new replay job applies the event again.
func TestAJobRunAgainAfterItsEffectCommittedAppliesNothing(t *testing.T) {
	t.Parallel()
	for _, grouped := range []bool{false, true} {
		t.Run(fmt.Sprintf("grouped=%v", grouped), func(t *testing.T) {
			t.Parallel()
			mux := hooklinetype.NewMux()
			mux.RegisterWith("grp", "t", hooklinetype.HandlerFunc(record), hooklinetype.HandlerOpts{Group: grouped})
			b := setupGroups(t, mux, "e1")
			ctx := context.Background()
			first := b.waitFinal(t, 1)["e1"]
			require.Equal(t, map[string]int{"e1": 1}, b.applications(t))

			rerun := func(jobID int64) {
				t.Helper()
				_, err := b.client.JobRetry(ctx, jobID)
				require.NoError(t, err)
				require.Equal(t, rivertype.JobStateCompleted, b.waitFinal(t, 1)["e1"].State)
			}
			rerun(first.ID)
			require.Equal(t, map[string]int{"e1": 1}, b.applications(t), "the original job run again")

			var args hooklinetype.JobArgs
			require.NoError(t, json.Unmarshal(first.EncodedArgs, &args))
			args.Replay = true
			replay, err := b.client.Insert(ctx, args, nil)
			require.NoError(t, err)
			require.Equal(t, rivertype.JobStateCompleted, b.waitFinal(t, 1)["e1"].State)
			require.Equal(t, map[string]int{"e1": 2}, b.applications(t), "a replay applies the event again")

			rerun(replay.Job.ID)
			require.Equal(t, map[string]int{"e1": 2}, b.applications(t), "the same replay job run again applies nothing")

			replay, err = b.client.Insert(ctx, args, nil)
			require.NoError(t, err)
			require.Equal(t, rivertype.JobStateCompleted, b.waitFinal(t, 1)["e1"].State)
			require.Equal(t, map[string]int{"e1": 3}, b.applications(t), "a new replay job applies it once more")

			var by int64
			require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT processed_by_job FROM inbox_events WHERE event_id = 'e1'`).Scan(&by))
			require.Equal(t, replay.Job.ID, by)
		})
	}
}

// batchRecorder is a BatchHandler that notes each application and each call.
type batchRecorder struct {
	batches, singles atomic.Int32
	// fail makes HandleBatch fail, as a batch with one bad event would.
	fail bool
}

func (r *batchRecorder) Handle(ctx context.Context, tx pgx.Tx, ev hooklinetype.Event) error {
	r.singles.Add(1)
	return record(ctx, tx, ev)
}

func (r *batchRecorder) HandleBatch(ctx context.Context, tx pgx.Tx, evs []hooklinetype.Event) error {
	r.batches.Add(1)
	if r.fail {
		return errors.New("one of these is bad")
	}
	for _, ev := range evs {
		if err := record(ctx, tx, ev); err != nil {
			return err
		}
	}
	return nil
}

func TestABatchHandlerGetsTheGroupsEventsInOneCall(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name                   string
		fail                   bool
		wantBatches, wantAlone int32
	}{
		{"one call for the group", false, 1, 0},
		{"a failed batch falls back to one transaction per event", true, 1, 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := &batchRecorder{fail: tt.fail}
			mux := hooklinetype.NewMux()
			mux.RegisterWith("grp", "t", h, hooklinetype.HandlerOpts{Group: true})
			b := setupGroups(t, mux, "e1", "e2", "e3", "e4")
			for id, job := range b.waitFinal(t, 4) {
				require.Equal(t, rivertype.JobStateCompleted, job.State, id)
				require.Equal(t, 1, job.Attempt, id)
			}
			require.Equal(t, tt.wantBatches, h.batches.Load())
			require.Equal(t, tt.wantAlone, h.singles.Load())
			require.Equal(t, map[string]int{"e1": 1, "e2": 1, "e3": 1, "e4": 1}, b.applications(t))
		})
	}
}
