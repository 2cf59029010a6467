package ingest_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/pgtest"
)

type batchBundle struct {
	db       *pgtest.DB
	batcher  *ingest.Batcher
	observer *flushRecorder
}

func setupBatch(t *testing.T, opts ingest.BatchOptions) *batchBundle {
	t.Helper()
	db := pgtest.NewDB(t)
	rc := newRiverClient(t, db.Pool)
	rec := &flushRecorder{}
	opts.Observer = rec
	b := ingest.NewBatcher(db.Pool, rc, slog.New(slog.DiscardHandler), opts)
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return &batchBundle{db: db, batcher: b, observer: rec}
}

func (b *batchBundle) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n))
	return n
}

// holdKey inserts event id's row in a transaction it leaves open, so that
// a flusher inserting the same key waits on it until the returned
// transaction rolls back.
func (b *batchBundle) holdKey(ctx context.Context, t *testing.T, id string) pgx.Tx {
	t.Helper()
	blocker, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	// A failed test must still give the connection back, or closing the
	// pool would wait for it forever.
	t.Cleanup(func() { _ = blocker.Rollback(context.Background()) })
	_, err = inbox.InsertMany(ctx, blocker, []inbox.NewEvent{event(id)}, nil)
	require.NoError(t, err)
	return blocker
}

// waitForALockWait waits until a session of the test's database waits on
// a lock: a flusher has reached a held key.
func (b *batchBundle) waitForALockWait(ctx context.Context, t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		var waiting int
		_ = b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		return waiting > 0
	}, 10*time.Second, 10*time.Millisecond, "a flusher waits on the held key")
}

// ingestAll submits evs concurrently and returns each one's outcome and error.
func (b *batchBundle) ingestAll(ctx context.Context, evs []inbox.NewEvent) ([]ingest.Outcome, []error) {
	outcomes, errs := make([]ingest.Outcome, len(evs)), make([]error, len(evs))
	var wg sync.WaitGroup
	for i, ev := range evs {
		wg.Go(func() { outcomes[i], errs[i] = b.batcher.Ingest(ctx, ev) })
	}
	wg.Wait()
	return outcomes, errs
}

type flushRecorder struct {
	mu    sync.Mutex
	sizes []int
	errs  int
}

func (r *flushRecorder) ObserveFlush(size int, _, _ time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sizes = append(r.sizes, size)
	if err != nil {
		r.errs++
	}
}

func (r *flushRecorder) snapshot() ([]int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.sizes...), r.errs
}

func events(prefix string, n int) []inbox.NewEvent {
	evs := make([]inbox.NewEvent, n)
	for i := range evs {
		evs[i] = event(fmt.Sprintf("%s_%03d", prefix, i))
	}
	return evs
}

func TestBatcherGivesEachConcurrentCallerItsOwnOutcome(t *testing.T) {
	t.Parallel()
	b := setupBatch(t, ingest.BatchOptions{MaxSize: 50, MaxWait: 5 * time.Millisecond})
	ctx := context.Background()

	// Ten events already stored, then 200 callers: 190 new, 10 replays.
	_, errs := b.ingestAll(ctx, events("tr", 10))
	for _, err := range errs {
		require.NoError(t, err)
	}
	evs := events("tr", 200)
	outcomes, errs := b.ingestAll(ctx, evs)
	for i := range evs {
		require.NoError(t, errs[i], "caller %d", i)
		want := ingest.Accepted
		if i < 10 {
			want = ingest.Duplicate
		}
		require.Equal(t, want, outcomes[i], "caller %d (%s)", i, evs[i].EventID)
	}
	require.Equal(t, 200, b.count(t, "inbox_events"))
	require.Equal(t, 200, b.count(t, "river_job"))
	sizes, _ := b.observer.snapshot()
	require.Greater(t, len(sizes), 1)
	for _, s := range sizes {
		require.LessOrEqual(t, s, 50, "no batch exceeds MaxSize")
	}
}

func TestBatcherStoresAnEventRepeatedWithinOneBatchOnce(t *testing.T) {
	t.Parallel()
	// A long MaxWait and a MaxSize equal to the number of callers make all
	// of them share one batch.
	b := setupBatch(t, ingest.BatchOptions{MaxSize: 20, MaxWait: time.Hour})
	evs := make([]inbox.NewEvent, 20)
	for i := range evs {
		evs[i] = event("tr_same")
	}
	outcomes, errs := b.ingestAll(context.Background(), evs)
	accepted := 0
	for i := range evs {
		require.NoError(t, errs[i])
		if outcomes[i] == ingest.Accepted {
			accepted++
		}
	}
	require.Equal(t, 1, accepted, "exactly one caller owns the new event")
	sizes, _ := b.observer.snapshot()
	require.Equal(t, []int{20}, sizes)
	require.Equal(t, 1, b.count(t, "inbox_events"))
	require.Equal(t, 1, b.count(t, "river_job"))
}

func TestBatcherFailedBatchStoresNothingAndFailsOnlyItsOwnCallers(t *testing.T) {
	t.Parallel()
	b := setupBatch(t, ingest.BatchOptions{MaxSize: 5, MaxWait: time.Hour})
	ctx := context.Background()

	// The inbox rows insert, then the job COPY fails: the batch must leave
	// no row behind.
	_, err := b.db.Pool.Exec(ctx, `ALTER TABLE river_job ADD CONSTRAINT refuse_all CHECK (false) NOT VALID`)
	require.NoError(t, err)
	_, errs := b.ingestAll(ctx, events("tr_fail", 5))
	for _, err := range errs {
		require.ErrorContains(t, err, "enqueue 5 jobs")
	}
	require.Equal(t, 0, b.count(t, "inbox_events"), "nothing half-stored")

	// The batcher goes on: the next batch commits.
	_, err = b.db.Pool.Exec(ctx, `ALTER TABLE river_job DROP CONSTRAINT refuse_all`)
	require.NoError(t, err)
	outcomes, errs := b.ingestAll(ctx, events("tr_ok", 5))
	for i := range errs {
		require.NoError(t, errs[i])
		require.Equal(t, ingest.Accepted, outcomes[i])
	}
	require.Equal(t, 5, b.count(t, "inbox_events"))
	_, failures := b.observer.snapshot()
	require.Equal(t, 1, failures)
}

func TestBatcherDropsCallersWhoLeftBeforeTheFlush(t *testing.T) {
	t.Parallel()
	b := setupBatch(t, ingest.BatchOptions{MaxSize: 3, MaxWait: time.Hour})
	gone, leave := context.WithCancel(context.Background())

	errc := make(chan error, 1)
	go func() {
		_, err := b.batcher.Ingest(gone, event("tr_gone"))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond) // the event joins the open batch
	leave()
	require.ErrorIs(t, <-errc, context.Canceled, "a caller who leaves is answered at once")

	// Two more callers fill the batch to MaxSize; the one who left must not
	// be stored, and must not spoil the others.
	outcomes, errs := b.ingestAll(context.Background(), events("tr_stay", 2))
	for i := range errs {
		require.NoError(t, errs[i])
		require.Equal(t, ingest.Accepted, outcomes[i])
	}
	require.Equal(t, 2, b.count(t, "inbox_events"))
	sizes, _ := b.observer.snapshot()
	require.Equal(t, []int{2}, sizes, "the batch flushed without the caller who left")
}

func TestBatcherCloseFlushesTheOpenBatch(t *testing.T) {
	t.Parallel()
	b := setupBatch(t, ingest.BatchOptions{MaxSize: 100, MaxWait: time.Hour})

	type res struct {
		outcome ingest.Outcome
		err     error
	}
	results := make(chan res, 3)
	for _, ev := range events("tr_close", 3) {
		go func() {
			o, err := b.batcher.Ingest(context.Background(), ev)
			results <- res{o, err}
		}()
	}
	time.Sleep(50 * time.Millisecond) // the three wait in an open batch, far from MaxWait
	require.Zero(t, b.count(t, "inbox_events"))

	require.NoError(t, b.batcher.Close(context.Background()))
	for range 3 {
		r := <-results
		require.NoError(t, r.err)
		require.Equal(t, ingest.Accepted, r.outcome)
	}
	require.Equal(t, 3, b.count(t, "inbox_events"))

	_, err := b.batcher.Ingest(context.Background(), event("tr_late"))
	require.ErrorIs(t, err, ingest.ErrClosed)
}

func TestBatcherFlushesALoneEventAfterMaxWait(t *testing.T) {
	t.Parallel()
	b := setupBatch(t, ingest.BatchOptions{MaxSize: 100, MaxWait: 2 * time.Millisecond})
	outcome, err := b.batcher.Ingest(context.Background(), event("tr_alone"))
	require.NoError(t, err)
	require.Equal(t, ingest.Accepted, outcome)
	sizes, _ := b.observer.snapshot()
	require.Equal(t, []int{1}, sizes)
}

func TestBatcherClosesBatchesAtMaxSize(t *testing.T) {
	t.Parallel()
	b := setupBatch(t, ingest.BatchOptions{MaxSize: 10, MaxWait: time.Hour})
	_, errs := b.ingestAll(context.Background(), events("tr_size", 30))
	for _, err := range errs {
		require.NoError(t, err)
	}
	sizes, _ := b.observer.snapshot()
	require.Equal(t, []int{10, 10, 10}, sizes, "with an hour's wait, only size can close a batch")
}

func TestBatcherCountsDuplicatesPerSourceInItsTransaction(t *testing.T) {
	t.Parallel()
	b := setupBatch(t, ingest.BatchOptions{MaxSize: 4, MaxWait: time.Hour})
	ctx := context.Background()
	// One batch: a new event, the same event again, and a replay of an
	// event stored by an earlier batch.
	_, errs := b.ingestAll(ctx, []inbox.NewEvent{event("tr_a"), event("tr_b"), event("tr_c"), event("tr_d")})
	for _, err := range errs {
		require.NoError(t, err)
	}
	_, errs = b.ingestAll(ctx, []inbox.NewEvent{event("tr_new"), event("tr_new"), event("tr_a"), event("tr_b")})
	for _, err := range errs {
		require.NoError(t, err)
	}
	var dups int
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT coalesce(sum(count), 0) FROM inbox_duplicates WHERE source = 'bank'`).Scan(&dups))
	require.Equal(t, 3, dups, "the repeat within the batch and the two replays")

	// A batch of two sources: each is counted on its own, and a source
	// whose every event was new gets no row at all.
	shop := func(id string) inbox.NewEvent { ev := event(id); ev.Source = "shop"; return ev }
	_, errs = b.ingestAll(ctx, []inbox.NewEvent{shop("sh_1"), shop("sh_2"), event("tr_c"), event("tr_e")})
	for _, err := range errs {
		require.NoError(t, err)
	}
	counts := map[string]int{}
	rows, err := b.db.Pool.Query(ctx, `SELECT source, sum(count)::int FROM inbox_duplicates GROUP BY source`)
	require.NoError(t, err)
	for rows.Next() {
		var source string
		var n int
		require.NoError(t, rows.Scan(&source, &n))
		counts[source] = n
	}
	require.NoError(t, rows.Err())
	require.Equal(t, map[string]int{"bank": 4}, counts, "tr_c again for bank; nothing for shop")
}

// TestBatcherWithFlushWhenFreeSendsALoneEventAtOnce: with FlushWhenFree, an
// event reaching an idle batcher is flushed at once, not MaxWait later.
func TestBatcherWithFlushWhenFreeSendsALoneEventAtOnce(t *testing.T) {
	t.Parallel()
	b := setupBatch(t, ingest.BatchOptions{MaxWait: time.Hour, Flushers: 1, FlushWhenFree: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	outcome, err := b.batcher.Ingest(ctx, event("lone"))
	require.NoError(t, err, "an hour's MaxWait must not hold a lone event")
	require.Equal(t, ingest.Accepted, outcome)
}

// TestBatcherWithFlushWhenFreeBatchesWhatArrivesDuringACommit: while the
// only flusher is busy, arriving events gather into one batch, which goes
// as soon as the flusher is free, long before MaxWait.
func TestBatcherWithFlushWhenFreeBatchesWhatArrivesDuringACommit(t *testing.T) {
	t.Parallel()
	b := setupBatch(t, ingest.BatchOptions{MaxWait: time.Hour, Flushers: 1, FlushWhenFree: true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	blocker := b.holdKey(ctx, t, "held")
	first := make(chan error, 1)
	go func() { _, err := b.batcher.Ingest(ctx, event("held")); first <- err }()
	b.waitForALockWait(ctx, t)

	rest := events("during", 5)
	done := make(chan []error, 1)
	go func() { _, errs := b.ingestAll(ctx, rest); done <- errs }()
	// The five are queued behind the busy flusher before it is freed.
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, blocker.Rollback(ctx))
	require.NoError(t, <-first)
	for _, err := range <-done {
		require.NoError(t, err, "the batch went when the flusher was free, not after MaxWait")
	}
	sizes, _ := b.observer.snapshot()
	require.Equal(t, []int{1, 5}, sizes)
}

// TestBatcherQueuesBatchesClosedWhileEveryFlusherIsBusy: batches that fill
// while the only flusher is held wait their turn, in order; a caller who
// leaves meanwhile is answered at once and left out of its batch; and Close
// waits for the queued batches to commit.
func TestBatcherQueuesBatchesClosedWhileEveryFlusherIsBusy(t *testing.T) {
	t.Parallel()
	b := setupBatch(t, ingest.BatchOptions{MaxSize: 2, MaxWait: time.Hour, Flushers: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	blocker := b.holdKey(ctx, t, "held")
	held := make(chan error, 2)
	for _, ev := range []inbox.NewEvent{event("held"), event("held_mate")} {
		go func() { _, err := b.batcher.Ingest(ctx, ev); held <- err }()
	}
	b.waitForALockWait(ctx, t)

	// Two full batches queue behind it; one of their callers leaves.
	gone, leave := context.WithCancel(ctx)
	left := make(chan error, 1)
	go func() { _, err := b.batcher.Ingest(gone, event("tr_gone")); left <- err }()
	time.Sleep(20 * time.Millisecond) // tr_gone opens the second batch
	queued := make(chan []error, 1)
	go func() { _, errs := b.ingestAll(ctx, events("tr_queued", 3)); queued <- errs }()
	time.Sleep(50 * time.Millisecond)
	leave()
	select {
	case err := <-left:
		require.ErrorIs(t, err, context.Canceled, "a caller who leaves a queued batch is answered at once")
	case <-time.After(5 * time.Second):
		t.Fatal("the caller who left waited for a busy flusher")
	}

	closed := make(chan error, 1)
	go func() { closed <- b.batcher.Close(ctx) }()
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, blocker.Rollback(ctx))
	require.NoError(t, <-closed)
	for range 2 {
		require.NoError(t, <-held)
	}
	for _, err := range <-queued {
		require.NoError(t, err, "every queued batch committed before Close returned")
	}
	require.Equal(t, 5, b.count(t, "inbox_events"), "held, held_mate and the three queued; not the one who left")
	sizes, _ := b.observer.snapshot()
	require.Equal(t, []int{2, 1, 2}, sizes, "the leaver's batch went without it")
}
