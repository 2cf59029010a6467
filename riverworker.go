package hookline

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/internal/dispatch"
	"github.com/hookline/hookline/internal/tracing"
)

// RiverWorkerOpts tune NewRiverWorker. Zero fields take the defaults of
// the WorkerConfig settings of the same names.
type RiverWorkerOpts struct {
	// Logger receives the worker's logs. Default: slog.Default().
	Logger *slog.Logger
	// Transactions is the most handler transactions open at once; more
	// jobs wait for one. Default: pool's size less 6, at least 1 — so on a
	// small pool (pgxpool's default is max(4, CPUs)) set it, and size the
	// pool for it plus what the application's own River client needs.
	Transactions int
	// GroupMaxSize closes a group of grouped handlers' events when it
	// holds this many; 1 turns grouping off. Default 100.
	GroupMaxSize int
	// GroupMaxWait closes a group this long after its first event arrived.
	// Default 2ms.
	GroupMaxWait time.Duration
	// TracerProvider, if set, traces each job's handling (hookline.handle)
	// and each group transaction; see JobTraceMiddleware. Nil: no spans.
	TracerProvider trace.TracerProvider
}

// JobTraceMiddleware returns the River worker middleware that makes the
// span the receiver stored in a job's metadata the parent of the job's
// spans, so that the handler's span joins the event's trace. Put it first
// in river.Config.Middleware, before otelriver's middleware if there is
// one, whose work span then continues the trace too.
func JobTraceMiddleware() rivertype.WorkerMiddleware { return &tracing.JobContext{} }

// NewRiverWorker returns Hookline's event worker, for an application that
// already runs a River client and adds it there with river.AddWorker,
// instead of running RunWorker's client beside its own. The worker applies
// each stored event through mux, exactly once.
//
// The constraints, which RunWorker meets by itself:
//
//   - The client must work the Queue queue ("events"), which is where the
//     receiver enqueues JobArgs: add it to river.Config.Queues.
//   - pool, and the client's driver, must reach the database the receiver
//     writes to, migrated by Migrate (River's migrations and Hookline's).
//   - Transactions: a handler writes through the transaction it is given,
//     which also marks the event's inbox row applied, and commits it;
//     that row, not River's job state, is what makes a rerun apply
//     nothing. Handlers must not complete the job themselves
//     (river.JobCompleteTx) nor write through another connection.
//   - RescueStuckJobsAfter must exceed JobTimeout, or a job still running
//     is started a second time (the inbox row keeps the effect single, but
//     the work is done twice).
//   - What RunWorker adds around the worker is not there: the throttle
//     that hookctl throttle drives, inbox retention (run hookctl prune),
//     Prometheus metrics and the admin server.
//   - Tracing: set RiverWorkerOpts.TracerProvider and install
//     JobTraceMiddleware first in the client's middleware.
//   - Hookline's SQL is tested against the River version in Hookline's
//     go.mod (v0.51.2); an application that selects another River
//     version runs an untested combination.
func NewRiverWorker(pool *pgxpool.Pool, mux *Mux, opts RiverWorkerOpts) (river.Worker[JobArgs], error) {
	switch {
	case opts.Transactions < 0:
		return nil, fmt.Errorf("RiverWorkerOpts.Transactions=%d must not be negative", opts.Transactions)
	case opts.Transactions > int(pool.Config().MaxConns):
		return nil, fmt.Errorf("RiverWorkerOpts.Transactions=%d exceeds the pool's %d connections", opts.Transactions, pool.Config().MaxConns)
	case opts.GroupMaxSize < 0 || opts.GroupMaxSize > 10_000:
		return nil, fmt.Errorf("RiverWorkerOpts.GroupMaxSize=%d out of range [0, 10000]", opts.GroupMaxSize)
	case opts.GroupMaxWait < 0:
		return nil, fmt.Errorf("RiverWorkerOpts.GroupMaxWait=%s must not be negative", opts.GroupMaxWait)
	case mux == nil:
		return nil, errors.New("NewRiverWorker: mux is nil")
	}
	var tracer trace.Tracer
	if opts.TracerProvider != nil {
		tracer = opts.TracerProvider.Tracer(tracing.Name)
	}
	return dispatch.NewWorker(pool, mux, cmp.Or(opts.Logger, slog.Default()), dispatch.WorkerOpts{
		Transactions: opts.Transactions,
		GroupMaxSize: opts.GroupMaxSize,
		GroupMaxWait: opts.GroupMaxWait,
		Tracer:       tracer,
	}), nil
}
