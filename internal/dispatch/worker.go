// Package dispatch turns stored events into business effects: a River
// worker loads each event from the inbox and hands it to the Handler
// registered for its source and type, inside the transaction that completes
// the job.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/hookline/hookline/internal/inbox"
)

// Worker is the River worker for Args.
type Worker struct {
	river.WorkerDefaults[Args]
	logger *slog.Logger
	mux    *Mux
	pool   *pgxpool.Pool
}

// NewWorker returns a worker that dispatches events through mux, using pool
// for its transactions. pool must be the database of the River client that
// runs the worker.
func NewWorker(pool *pgxpool.Pool, mux *Mux, logger *slog.Logger) *Worker {
	return &Worker{logger: logger, mux: mux, pool: pool}
}

// Work processes one event. The handler's writes, the inbox's processed_at
// and the job's completion commit in one transaction, so a crash at any
// point either leaves all three undone (and River reruns the job) or all
// three done (and it does not).
func (w *Worker) Work(ctx context.Context, job *river.Job[Args]) error {
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin tx for event %d: %w", job.Args.InboxID, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit

	ev, err := inbox.GetForUpdate(ctx, tx, job.Args.InboxID)
	if errors.Is(err, inbox.ErrNotFound) {
		// Pruned, or deleted by hand: there is nothing left to process.
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	log := w.logger.With("source", ev.Source, "event_id", ev.EventID, "type", ev.Type, "job_id", job.ID, "attempt", job.Attempt)

	if err := w.apply(ctx, tx, ev, job.Args.Replay, log); err != nil {
		if IsPermanent(err) {
			log.Error("event cannot be processed; cancelling its job", "error", err)
			return river.JobCancel(err)
		}
		return err
	}
	if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
		return fmt.Errorf("complete job %d for event %s/%s: %w", job.ID, ev.Source, ev.EventID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit event %s/%s: %w", ev.Source, ev.EventID, err)
	}
	return nil
}

func (w *Worker) apply(ctx context.Context, tx pgx.Tx, ev inbox.Event, replay bool, log *slog.Logger) error {
	if ev.ProcessedAt != nil && !replay {
		// A second job for an event already applied: River's own guarantees
		// should prevent it, but the inbox row is the ground truth, and an
		// effect must never be applied twice by accident.
		log.Warn("event already processed; completing job without effect")
		return nil
	}
	h, ok := w.mux.Lookup(ev.Source, ev.Type)
	if !ok {
		// Providers send many types nobody subscribed to; retrying them
		// would only fill the queue. Complete, and say so.
		log.Info("no handler for event type; completed without effect")
	} else if err := h.Handle(ctx, tx, ev); err != nil {
		return fmt.Errorf("handle event %s/%s (%s): %w", ev.Source, ev.EventID, ev.Type, err)
	}
	return inbox.MarkProcessed(ctx, tx, ev.ID)
}
