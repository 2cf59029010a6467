package hookline_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/hookline/hookline"
	"github.com/hookline/hookline/hooklinetest"
	"github.com/hookline/hookline/internal/pgtest"
)

// appArgs is a job of the application's own, worked by the same client.
type appArgs struct{}

func (appArgs) Kind() string { return "app_job" }

type appWorker struct {
	river.WorkerDefaults[appArgs]
	done chan struct{}
}

func (w *appWorker) Work(context.Context, *river.Job[appArgs]) error {
	close(w.done)
	return nil
}

func TestNewRiverWorkerAppliesEventsInAnApplicationsOwnRiverClient(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := pgtest.NewDB(t)
	_, err := db.Pool.Exec(ctx, `CREATE TABLE paid (invoice text PRIMARY KEY, times int NOT NULL)`)
	require.NoError(t, err)

	mux := hookline.NewMux()
	mux.RegisterFunc("stripe", "invoice.paid", func(ctx context.Context, tx pgx.Tx, ev hookline.Event) error {
		_, err := tx.Exec(ctx, `INSERT INTO paid VALUES ($1, 1) ON CONFLICT (invoice) DO UPDATE SET times = paid.times + 1`, ev.EventID)
		return err
	})
	app := &appWorker{done: make(chan struct{})}
	workers := river.NewWorkers()
	river.AddWorker(workers, app)
	w, err := hookline.NewRiverWorker(db.Pool, mux, hookline.RiverWorkerOpts{})
	require.NoError(t, err)
	river.AddWorker(workers, w)
	rc, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{
		Queues: map[string]river.QueueConfig{
			river.QueueDefault: {MaxWorkers: 2},
			hookline.Queue:     {MaxWorkers: 10},
		},
		Workers: workers,
	})
	require.NoError(t, err)
	events, cancelSub := rc.Subscribe(river.EventKindJobCompleted)
	defer cancelSub()
	require.NoError(t, rc.Start(ctx))
	t.Cleanup(func() { _ = rc.Stop(context.Background()) })

	// Store the event as the receiver does: the inbox row and its job in
	// one transaction.
	ev := hooklinetest.NewEvent("stripe", "invoice.paid", []byte(`{}`))
	ev.EventID = "evt_1"
	require.NoError(t, pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		_, err := hooklinetest.Enqueue(ctx, tx, ev)
		return err
	}))
	_, err = rc.Insert(ctx, appArgs{}, nil)
	require.NoError(t, err)

	for kinds := map[string]bool{}; !kinds[hookline.JobKind]; {
		select {
		case ev := <-events:
			kinds[ev.Job.Kind] = true
		case <-ctx.Done():
			t.Fatalf("event job not completed: %v", ctx.Err())
		}
	}
	<-app.done

	var times int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT times FROM paid WHERE invoice = 'evt_1'`).Scan(&times))
	require.Equal(t, 1, times)
	var applied bool
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT processed_at IS NOT NULL FROM inbox_events WHERE source = 'stripe' AND event_id = 'evt_1'`).Scan(&applied))
	require.True(t, applied, "the inbox row is marked in the handler's transaction")
}

func TestNewRiverWorkerRefusesOptionsItCannotHonour(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	for name, opts := range map[string]hookline.RiverWorkerOpts{
		"negative transactions":         {Transactions: -1},
		"more transactions than conns":  {Transactions: int(db.Pool.Config().MaxConns) + 1},
		"a group larger than the limit": {GroupMaxSize: 10_001},
		"a negative group wait":         {GroupMaxWait: -time.Millisecond},
	} {
		_, err := hookline.NewRiverWorker(db.Pool, hookline.NewMux(), opts)
		require.Error(t, err, name)
	}
}

func TestNewRiverWorkerJoinsTheTraceStoredWithTheJob(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := pgtest.NewDB(t)
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))

	mux := hookline.NewMux()
	mux.RegisterFunc("stripe", "invoice.paid", func(context.Context, pgx.Tx, hookline.Event) error { return nil })
	w, err := hookline.NewRiverWorker(db.Pool, mux, hookline.RiverWorkerOpts{TracerProvider: tp})
	require.NoError(t, err)
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	rc, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{
		Middleware: []rivertype.Middleware{hookline.JobTraceMiddleware()},
		Queues:     map[string]river.QueueConfig{hookline.Queue: {MaxWorkers: 2}},
		Workers:    workers,
	})
	require.NoError(t, err)
	events, cancelSub := rc.Subscribe(river.EventKindJobCompleted)
	defer cancelSub()
	require.NoError(t, rc.Start(ctx))
	t.Cleanup(func() { _ = rc.Stop(context.Background()) })

	// The application's own span stands for the receiver's commit.
	spanCtx, parent := tp.Tracer("test").Start(ctx, "commit")
	ev := hooklinetest.NewEvent("stripe", "invoice.paid", []byte(`{}`))
	ev.EventID = "evt_traced"
	require.NoError(t, pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		_, err := hooklinetest.Enqueue(spanCtx, tx, ev)
		return err
	}))
	parent.End()
	select {
	case <-events:
	case <-ctx.Done():
		t.Fatalf("event job not completed: %v", ctx.Err())
	}

	var handle sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		for _, s := range sr.Ended() {
			if s.Name() == "hookline.handle" {
				handle = s
				return true
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond, "no handle span")
	require.Equal(t, parent.SpanContext().TraceID(), handle.SpanContext().TraceID(), "the handler's span is in another trace")
	require.Equal(t, parent.SpanContext().SpanID(), handle.Parent().SpanID())
}
