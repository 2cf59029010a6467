package catchup

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/hookline/hookline/internal/riverdb"
)

// Queue is the worker's maintenance queue, which retention shares
// (retention.Queue); the throttle gate leaves it alone.
const Queue = "maintenance"

// JobArgs are the job args of one periodic Stripe catch-up run.
type JobArgs struct{}

// Kind implements river.JobArgs.
func (JobArgs) Kind() string { return "catchup_stripe" }

// InsertOpts implements river.JobArgsWithInsertOpts. Unique by queue (and
// kind) while a run is queued or running, in any worker: the periodic
// enqueuer adds no other meanwhile, so one worker at a time lists Stripe.
// Completed runs are left out of the unique states (River counts them by
// default), or the next period's run would be a duplicate of the last one
// until River's cleaner deleted it, a day later. A failed run is not
// retried: the next period lists the same window again.
func (JobArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: 1, UniqueOpts: river.UniqueOpts{
		ByQueue: true,
		ByState: riverdb.LiveStates(),
	}}
}

// Observer is told the outcome of each periodic run, for metrics.
type Observer interface {
	// ObserveCatchup reports the events a run recovered from source's API,
	// and its error, if any (the recovered events are stored even so).
	ObserveCatchup(source string, recovered int, err error)
}

// JobOpts configure the periodic catch-up.
type JobOpts struct {
	// Stripe holds the key, the URL and FailedOnly; Since is set at each
	// run from Lookback.
	Stripe StripeOptions
	// Lookback is how far back each run lists.
	Lookback time.Duration
	// Source is the inbox source the events are stored under.
	Source string
	// Timeout bounds a run; it must be under River's RescueStuckJobsAfter,
	// or a long run would be started a second time while it goes on.
	Timeout time.Duration
	// By names the worker in the audit.
	By string
}

// Worker runs a Stripe catch-up over the look-back window.
type Worker struct {
	river.WorkerDefaults[JobArgs]
	pool     *pgxpool.Pool
	opts     JobOpts
	logger   *slog.Logger
	observer Observer
}

// NewWorker returns the periodic catch-up's worker. observer may be nil.
func NewWorker(pool *pgxpool.Pool, opts JobOpts, logger *slog.Logger, observer Observer) (*Worker, error) {
	if opts.Lookback <= 0 || opts.Source == "" || opts.By == "" || opts.Timeout <= 0 {
		return nil, fmt.Errorf("catch-up job: a look-back, a source, a name and a timeout are required")
	}
	o := opts.Stripe
	o.Since = time.Now() // checked here, set per run
	if _, err := NewStripe(o); err != nil {
		return nil, err
	}
	return &Worker{pool: pool, opts: opts, logger: logger, observer: observer}, nil
}

// Timeout implements river.Worker.
func (w *Worker) Timeout(*river.Job[JobArgs]) time.Duration { return w.opts.Timeout }

// Work implements river.Worker: it lists the look-back window and stores
// what the inbox lacks, enqueuing with the worker's own River client.
func (w *Worker) Work(ctx context.Context, _ *river.Job[JobArgs]) error {
	o := w.opts.Stripe
	o.Since = time.Now().Add(-w.opts.Lookback)
	o.OnRetry = func(n int, wait time.Duration, err error) {
		w.logger.WarnContext(ctx, "catch-up: Stripe API error, retrying", "source", w.opts.Source, "retry", n, "wait", wait, "error", err)
	}
	l, err := NewStripe(o)
	if err != nil {
		return err
	}
	store := NewStore(w.pool, river.ClientFromContext[pgx.Tx](ctx))
	sum, err := Run(ctx, l, store, Options{
		Source: w.opts.Source, Origin: OriginStripeAPI, By: w.opts.By,
		Reason: fmt.Sprintf("periodic catch-up, look-back %s", w.opts.Lookback),
	})
	if w.observer != nil {
		w.observer.ObserveCatchup(w.opts.Source, sum.Stored, err)
	}
	attrs := []any{"source", w.opts.Source, "since", o.Since, "listed", sum.Listed, "already_stored", sum.AlreadyStored,
		"stored", sum.Stored, "refused", sum.Refused}
	if err != nil {
		w.logger.ErrorContext(ctx, "catch-up stopped; what it stored is kept", append(attrs, "error", err)...)
		return fmt.Errorf("catch-up of %s: %w", w.opts.Source, err)
	}
	if sum.Stored > 0 || sum.Refused > 0 {
		// The webhook path lost these: worth a look even though they are
		// now stored.
		w.logger.WarnContext(ctx, "catch-up recovered events the webhook path missed", attrs...)
		return nil
	}
	w.logger.InfoContext(ctx, "catch-up ran", attrs...)
	return nil
}

// Periodic returns the periodic job that enqueues a run every interval,
// and once at start.
func Periodic(interval time.Duration) *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(interval),
		func() (river.JobArgs, *river.InsertOpts) { return JobArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}
