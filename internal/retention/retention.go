// Package retention runs the inbox's retention (ops.Prune) as a River
// periodic job in the worker, so that payloads are emptied and old keys
// deleted without anyone remembering to run hookctl prune.
package retention

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/hookline/hookline/internal/ops"
	"github.com/hookline/hookline/internal/riverdb"
)

// Queue is the queue of maintenance jobs; the throttle gate leaves it alone.
const Queue = "maintenance"

// Args are the job args of one retention run.
type Args struct{}

// Kind implements river.JobArgs.
func (Args) Kind() string { return "prune_inbox" }

// InsertOpts implements river.JobArgsWithInsertOpts: one run at a time, and
// never retried for long; the next period runs anyway. Unique only while a
// run is live: River's default unique states include completed, so the
// next period's run would be a duplicate of the last completed one until
// River's cleaner deleted it, a day later, and hourly retention would run
// about once a day.
func (Args) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{
		ByQueue: true,
		ByState: riverdb.LiveStates(),
	}}
}

// Worker runs ops.Prune.
type Worker struct {
	river.WorkerDefaults[Args]
	logger *slog.Logger
	opts   ops.PruneOpts
	pool   *pgxpool.Pool
}

// NewWorker returns a retention worker; opts must pass ops.PruneOpts.Validate.
func NewWorker(pool *pgxpool.Pool, opts ops.PruneOpts, logger *slog.Logger) (*Worker, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	return &Worker{logger: logger, opts: opts, pool: pool}, nil
}

// Work implements river.Worker.
func (w *Worker) Work(ctx context.Context, _ *river.Job[Args]) error {
	res, err := ops.Prune(ctx, w.pool, w.opts)
	if err != nil {
		return fmt.Errorf("prune inbox: %w", err)
	}
	// Duplicate counts only feed hookctl status's last hour.
	if _, err := w.pool.Exec(ctx, `DELETE FROM inbox_duplicates WHERE at < now() - interval '7 days'`); err != nil {
		return fmt.Errorf("prune duplicate counts: %w", err)
	}
	w.logger.Info("inbox retention ran", "payloads_pruned", res.PayloadsPruned, "rows_deleted", res.RowsDeleted,
		"payload_cutoff", res.PayloadCutoff, "key_cutoff", res.KeyCutoff)
	return nil
}

// Periodic returns the periodic job that enqueues a run every interval,
// and once at start.
func Periodic(interval time.Duration) *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(interval),
		func() (river.JobArgs, *river.InsertOpts) { return Args{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}
