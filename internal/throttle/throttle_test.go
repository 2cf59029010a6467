package throttle_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/dbpool"
	"github.com/hookline/hookline/internal/dispatch"
	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/pgtest"
	"github.com/hookline/hookline/internal/throttle"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// startWorker runs one in-process "worker process": a River client whose
// jobs pass a Gate kept at its share of the global limit by a Controller.
func startWorker(t *testing.T, db *pgtest.DB, mux *hooklinetype.Mux, concurrency int) *throttle.Controller {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	// A connection per job in flight, as the worker binary sizes its pool.
	pool, err := dbpool.New(context.Background(), db.URL, concurrency+5, 0, "")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	gate := throttle.NewGate(hooklinetype.Queue, concurrency, 30*time.Second)
	workers := river.NewWorkers()
	river.AddWorker(workers, dispatch.NewWorker(pool, mux, logger, dispatch.WorkerOpts{}))
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		FetchCooldown: 5 * time.Millisecond, FetchPollInterval: 50 * time.Millisecond,
		Logger: logger, Middleware: []rivertype.Middleware{gate},
		Queues:   map[string]river.QueueConfig{hooklinetype.Queue: {MaxWorkers: concurrency}},
		TestOnly: true, Workers: workers,
	})
	require.NoError(t, err)
	ctl := throttle.NewController(pool, gate, concurrency, logger)
	ctl.Interval = 200 * time.Millisecond
	ctl.StaleAfter = 5 * time.Second // a loaded CI machine can delay a heartbeat
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = ctl.Run(ctx); close(done) }()
	require.NoError(t, client.Start(context.Background()))
	t.Cleanup(func() {
		stopCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
		defer stop()
		_ = client.StopAndCancel(stopCtx)
		cancel()
		<-done
	})
	return ctl
}

// inflight counts jobs inside their handler, across every worker.
type inflight struct{ now, peak atomic.Int32 }

func (f *inflight) handler(ctx context.Context, _ pgx.Tx, _ hooklinetype.Event) error {
	n := f.now.Add(1)
	defer f.now.Add(-1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	select {
	case <-time.After(40 * time.Millisecond):
	case <-ctx.Done():
	}
	return nil
}

// peakDuring returns the most jobs seen in flight at once during d.
func (f *inflight) peakDuring(d time.Duration) int {
	f.peak.Store(f.now.Load())
	time.Sleep(d)
	return int(f.peak.Load())
}

func TestThrottleLowersJobsInFlightAcrossProcessesWithinTwoSeconds(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	ctx := context.Background()
	f := &inflight{}
	mux := hooklinetype.NewMux()
	mux.RegisterFunc("bank", "slow", f.handler)

	rc, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	in := ingest.NewSingle(db.Pool, rc)
	for i := range 3000 {
		_, err := in.Ingest(ctx, inbox.NewEvent{Source: "bank", EventID: fmt.Sprint("e", i), Type: "slow", Payload: []byte(`{}`)})
		require.NoError(t, err)
	}

	startWorker(t, db, mux, 8)
	startWorker(t, db, mux, 8)
	require.Eventually(t, func() bool { return f.now.Load() > 8 }, 10*time.Second, 10*time.Millisecond,
		"two processes of 8 run more than 8 jobs at once before the throttle")

	require.NoError(t, throttle.SetGlobalLimit(ctx, db.Pool, 3, "test"))
	time.Sleep(2 * time.Second) // the promise: applied within 2s
	require.LessOrEqual(t, f.peakDuring(time.Second), 3, "the global limit holds across both processes")

	procs, err := throttle.LiveProcesses(ctx, db.Pool, 5*time.Second)
	require.NoError(t, err)
	require.Len(t, procs, 2)
	require.Equal(t, 3, procs[0].EffectiveLimit+procs[1].EffectiveLimit, "the shares add up to the global limit")

	require.NoError(t, throttle.SetGlobalLimit(ctx, db.Pool, -1, "test"))
	require.Eventually(t, func() bool { return f.now.Load() > 8 }, 4*time.Second, 10*time.Millisecond,
		"resetting restores the configured concurrency")
}

func TestGateSnoozesJobsThatWaitTooLong(t *testing.T) {
	t.Parallel()
	gate := throttle.NewGate(hooklinetype.Queue, 0, 10*time.Millisecond)
	called := false
	err := gate.Work(context.Background(), &rivertype.JobRow{Queue: hooklinetype.Queue}, func(context.Context) error { called = true; return nil })
	var snooze *river.JobSnoozeError
	require.ErrorAs(t, err, &snooze)
	require.False(t, called)

	// Other queues are not throttled.
	require.NoError(t, gate.Work(context.Background(), &rivertype.JobRow{Queue: "maintenance"}, func(context.Context) error { called = true; return nil }))
	require.True(t, called)
}

// A database restart kills the controller's LISTEN connection; the
// controller must reconnect and keep applying changes, not freeze.
func TestControllerRecoversFromALostConnection(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	ctx := context.Background()
	pool, err := dbpool.New(ctx, db.URL, 4, 0, "")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	gate := throttle.NewGate(hooklinetype.Queue, 8, time.Second)
	ctl := throttle.NewController(pool, gate, 8, slog.New(slog.DiscardHandler))
	ctl.Interval = 100 * time.Millisecond
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = ctl.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	require.NoError(t, throttle.SetGlobalLimit(ctx, db.Pool, 2, "test"))
	require.Eventually(t, func() bool { return gate.Limit() == 2 }, 5*time.Second, 10*time.Millisecond)

	// Kill every session of the controller's pool, the LISTEN one included.
	_, err = db.Pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	require.NoError(t, err)

	require.NoError(t, throttle.SetGlobalLimit(ctx, db.Pool, 5, "test"))
	require.Eventually(t, func() bool { return gate.Limit() == 5 }, 10*time.Second, 10*time.Millisecond,
		"the controller reconnects and applies the new limit")
}

func TestGateCountsJobsWaitingForASlotApartFromThoseExecuting(t *testing.T) {
	t.Parallel()
	gate := throttle.NewGate(hooklinetype.Queue, 1, time.Minute)
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	results := make(chan error, 3)
	for range 3 {
		go func() {
			results <- gate.Work(ctx, &rivertype.JobRow{Queue: hooklinetype.Queue}, func(context.Context) error { <-release; return nil })
		}()
	}
	counts := func() [2]int { e, w := gate.Counts(); return [2]int{e, w} }
	require.Eventually(t, func() bool { return counts() == [2]int{1, 2} }, 5*time.Second, time.Millisecond,
		"one job executes and two wait")

	gate.SetLimit(2)
	require.Eventually(t, func() bool { return counts() == [2]int{2, 1} }, 5*time.Second, time.Millisecond,
		"a raised limit admits a waiting job")

	cancel() // shutdown: the waiting job leaves the gate, uncounted
	require.ErrorIs(t, <-results, context.Canceled)
	require.Equal(t, [2]int{2, 0}, counts())
	close(release)
	require.NoError(t, <-results)
	require.NoError(t, <-results)
	require.Equal(t, [2]int{0, 0}, counts())
}

func TestGateStopsCountingAJobItSnoozes(t *testing.T) {
	t.Parallel()
	gate := throttle.NewGate(hooklinetype.Queue, 0, 20*time.Millisecond)
	err := gate.Work(context.Background(), &rivertype.JobRow{Queue: hooklinetype.Queue}, func(context.Context) error { return nil })
	var snooze *river.JobSnoozeError
	require.ErrorAs(t, err, &snooze)
	executing, waiting := gate.Counts()
	require.Zero(t, executing)
	require.Zero(t, waiting)
}

func TestSplitRunningAddsUpToRiversCount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                        string
		running, executing, waiting int64
		want                        throttle.Running
	}{
		{"as reported", 48, 2, 46, throttle.Running{Executing: 2, WaitingAtGate: 46}},
		{"jobs no live worker reported", 10, 2, 5, throttle.Running{Executing: 2, WaitingAtGate: 5, Unreported: 3}},
		{"jobs finished since the heartbeat", 5, 4, 3, throttle.Running{Executing: 2, WaitingAtGate: 3}},
		{"more waiting reported than running", 2, 1, 4, throttle.Running{WaitingAtGate: 2}},
		{"nothing running", 0, 3, 3, throttle.Running{}},
		{"no worker reports", 7, 0, 0, throttle.Running{Unreported: 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := throttle.SplitRunning(tt.running, tt.executing, tt.waiting)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.running, got.Executing+got.WaitingAtGate+got.Unreported)
		})
	}
}

// TestControllerReportsItsGatesCountsWithItsHeartbeat: the counts that
// status and the queue metrics read come from each worker's heartbeat.
func TestControllerReportsItsGatesCountsWithItsHeartbeat(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	ctx := context.Background()
	gate := throttle.NewGate(hooklinetype.Queue, 1, time.Minute)
	ctl := throttle.NewController(db.Pool, gate, 1, slog.New(slog.DiscardHandler))
	ctl.Interval = 50 * time.Millisecond
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = ctl.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	release := make(chan struct{})
	defer close(release)
	for range 3 {
		go func() {
			_ = gate.Work(runCtx, &rivertype.JobRow{Queue: hooklinetype.Queue}, func(context.Context) error { <-release; return nil })
		}()
	}
	require.Eventually(t, func() bool {
		procs, err := throttle.LiveProcesses(ctx, db.Pool, 5*time.Second)
		require.NoError(t, err)
		return len(procs) == 1 && procs[0].Executing == 1 && procs[0].WaitingAtGate == 2
	}, 5*time.Second, 20*time.Millisecond)
	executing, waiting, err := throttle.GateCounts(ctx, db.Pool, 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, []int64{1, 2}, []int64{executing, waiting})
}
