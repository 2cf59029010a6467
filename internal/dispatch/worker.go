// Package dispatch turns stored events into business effects: a River
// worker loads each event from the inbox and hands it to the Handler
// registered for its source and type, inside a transaction that also marks
// the event applied.
//
// The inbox row is the exactly-once guard. Its transaction locks the row,
// skips an event already applied, runs the handler, records the job that
// applied it, and commits; River's batch completer then completes the job.
// A job run again after a crash between that commit and its completion
// finds the row applied and completes with no effect. Events whose handlers
// allow it (HandlerOpts.Group) share one such transaction with the other
// events fetched at about the same time.
package dispatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/inbox"
)

// WorkerOpts tune how a Worker uses the database. Zero fields take the
// defaults.
type WorkerOpts struct {
	// Transactions is the most handler transactions open at once, single
	// events and groups together. Jobs beyond it wait, within their own
	// timeout, for one to end, so the connections a worker holds do not
	// grow with its concurrency. Default: the pool's size less
	// RiverConns, and at least 1.
	Transactions int
	// GroupMaxSize closes a group when it holds this many events; 1 turns
	// grouping off. Default 100.
	GroupMaxSize int
	// GroupMaxWait closes a group this long after its first event arrived.
	// Default 2ms.
	GroupMaxWait time.Duration
	// Observer, if set, is told about every group transaction.
	Observer GroupObserver
	// Stale, if set, is told about every event an ordered handler
	// completed as stale.
	Stale StaleObserver
	// Tracer, if set, traces each job's handling (SpanHandle) and each
	// group transaction (SpanGroup); nil turns tracing off.
	Tracer trace.Tracer
}

// RiverConns is the part of a worker's pool left to River and the
// process's own upkeep: River's LISTEN connection, fetching, completing,
// leader election and maintenance, the throttle's LISTEN, metrics and
// probes. Handler transactions get the rest.
const RiverConns = 6

// GroupObserver receives a report of each group transaction, for metrics.
type GroupObserver interface {
	// ObserveGroup reports a group of size events, how long its first
	// event waited before the transaction began, how long the transaction
	// took, and whether the group fell back to one transaction per event.
	ObserveGroup(size int, waited, took time.Duration, fellBack bool)
}

// Worker is the River worker for Args.
type Worker struct {
	river.WorkerDefaults[hooklinetype.JobArgs]
	logger *slog.Logger
	mux    *hooklinetype.Mux
	pool   *pgxpool.Pool
	opts   WorkerOpts
	// slots bounds the handler transactions open at once.
	slots  chan struct{}
	groups *grouper
}

// NewWorker returns a worker that dispatches events through mux, using pool
// for its transactions. pool must be the database of the River client that
// runs the worker.
func NewWorker(pool *pgxpool.Pool, mux *hooklinetype.Mux, logger *slog.Logger, opts WorkerOpts) *Worker {
	opts.Transactions = cmp.Or(opts.Transactions, max(1, int(pool.Config().MaxConns)-RiverConns))
	opts.GroupMaxSize = cmp.Or(opts.GroupMaxSize, 100)
	opts.GroupMaxWait = cmp.Or(opts.GroupMaxWait, 2*time.Millisecond)
	w := &Worker{logger: logger, mux: mux, pool: pool, opts: opts, slots: make(chan struct{}, opts.Transactions)}
	if opts.GroupMaxSize > 1 {
		w.groups = &grouper{w: w}
	}
	return w
}

// Work applies one event. Its handler's writes and the inbox's record of
// the application commit in one transaction, so a crash at any point either
// leaves both undone (and River runs the job again) or both done (and the
// job, run again, applies nothing).
func (w *Worker) Work(ctx context.Context, job *river.Job[hooklinetype.JobArgs]) (err error) {
	if w.opts.Tracer != nil {
		var span trace.Span
		ctx, span = w.startHandle(ctx, job)
		defer func() { endSpan(span, err) }()
	}
	if wait, err := w.hold(ctx, job); err != nil {
		return err
	} else if wait > 0 {
		return river.JobSnooze(wait)
	}
	if w.groups != nil && job.Args.Type != "" && w.grouped(job.Args.Source, job.Args.Type) {
		return w.groups.do(ctx, job)
	}
	release, err := w.acquire(ctx)
	if err != nil {
		return fmt.Errorf("wait for a transaction for event %d: %w", job.Args.InboxID, err)
	}
	defer release()
	return w.applyOne(ctx, job)
}

// acquire takes one of the transaction slots, waiting until ctx ends.
func (w *Worker) acquire(ctx context.Context) (release func(), err error) {
	select {
	case w.slots <- struct{}{}:
		return func() { <-w.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// transientAttempts is how many times a transaction that lost a deadlock
// or a serialization conflict is tried before its error goes to River.
const transientAttempts = 3

// applyOne applies job's event in a transaction of its own, within a slot
// its caller holds.
func (w *Worker) applyOne(ctx context.Context, job *river.Job[hooklinetype.JobArgs]) error {
	log := w.logger.With("source", job.Args.Source, "event_id", job.Args.EventID, "job_id", job.ID, "attempt", job.Attempt)
	for attempt := 1; ; attempt++ {
		var result error
		var stale *hooklinetype.Event
		err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
			stale = nil
			// An ordered event's lock first, when its job names the
			// object: the claim then reads the object's mark too.
			held, err := w.lockObject(ctx, tx, job)
			if err != nil {
				return err
			}
			due, gone, err := claim(ctx, tx, []*river.Job[hooklinetype.JobArgs]{job}, func(int) bool { return len(held) > 0 })
			switch {
			case err != nil:
				return err
			case gone[job.Args.InboxID]:
				// Pruned, or deleted by hand: there is nothing left to process.
				result = river.JobCancel(fmt.Errorf("get event %d: %w", job.Args.InboxID, inbox.ErrNotFound))
				return nil
			}
			d, ok := due[job.Args.InboxID]
			if !ok {
				log.InfoContext(ctx, "event already applied; completing job without effect")
				return nil
			}
			ev := d.ev
			if !w.ordered(ev) {
				return w.handle(ctx, tx, ev, log)
			}
			items := []orderItem{{ev: ev, replay: job.Args.Replay, known: d.known, mark: d.mark}}
			seq, err := w.sequence(ctx, tx, items, held)
			if err != nil {
				return err
			}
			if newer := seq.stale[0]; newer != "" {
				logStale(log, ev, newer)
				stale = &ev
			} else if err := w.handle(ctx, tx, ev, log); err != nil {
				return err
			}
			return seq.finish(ctx, tx, items)
		})
		switch {
		case err == nil:
			if stale != nil {
				w.observeStale(*stale)
			}
			return result
		case transient(err) && attempt < transientAttempts:
			log.InfoContext(ctx, "transaction lost a deadlock or serialization conflict; trying again", "error", err)
			continue
		}
		return w.failure(ctx, job, err)
	}
}

// failure is what River is told of a job whose transaction failed with
// err: a permanent error cancels the job, any other is retried.
func (w *Worker) failure(ctx context.Context, job *river.Job[hooklinetype.JobArgs], err error) error {
	if hooklinetype.IsPermanent(err) {
		w.logger.ErrorContext(ctx, "event cannot be processed; cancelling its job", "source", job.Args.Source, "event_id", job.Args.EventID,
			"job_id", job.ID, "attempt", job.Attempt, "error", err)
		return river.JobCancel(err)
	}
	return err
}

// claimed is a due event, and, if its claim asked for it, the mark of its
// object as the claim's snapshot saw it (nil: none).
type claimed struct {
	ev    hooklinetype.Event
	known bool
	mark  *mark
}

// claim marks, in tx, the events of jobs that are due as applied by them
// (inbox.ClaimMany), and returns those events by row id, and the row ids
// that no longer exist. The jobs' events must be distinct. For the jobs
// that withMark picks, whose object's lock tx already holds, it reads the
// object's mark too.
func claim(ctx context.Context, tx pgx.Tx, jobs []*river.Job[hooklinetype.JobArgs], withMark func(i int) bool) (due map[int64]claimed, gone map[int64]bool, err error) {
	claims := make([]inbox.Claim, len(jobs))
	for i, j := range jobs {
		claims[i] = inbox.Claim{InboxID: j.Args.InboxID, JobID: j.ID, Replay: j.Args.Replay, Mark: withMark != nil && withMark(i)}
	}
	evs, err := inbox.ClaimMany(ctx, tx, claims)
	if err != nil {
		return nil, nil, err
	}
	asked := make(map[int64]bool, len(claims))
	for _, c := range claims {
		asked[c.InboxID] = c.Mark
	}
	due = make(map[int64]claimed, len(evs))
	for _, c := range evs {
		d := claimed{ev: c.Event, known: asked[c.InboxID]}
		if c.MarkTime != nil && c.MarkEventID != nil {
			d.mark = &mark{c.MarkTime.UTC(), *c.MarkEventID}
		}
		due[c.InboxID] = d
	}
	if len(due) == len(jobs) {
		return due, nil, nil
	}
	// Rarely some are not due: after a crash, or a stray second job. Only
	// then is it worth a query to tell applied events from deleted ones.
	var rest []int64
	for _, c := range claims {
		if _, ok := due[c.InboxID]; !ok {
			rest = append(rest, c.InboxID)
		}
	}
	exist, err := inbox.ExistingIDs(ctx, tx, rest)
	if err != nil {
		return nil, nil, err
	}
	gone = make(map[int64]bool, len(rest))
	for _, id := range rest {
		gone[id] = !exist[id]
	}
	return due, gone, nil
}

// handle runs ev's handler in tx, through the Mux: an event type nobody
// registered goes to the Mux's NotFound, which by default applies it with
// no effect.
func (w *Worker) handle(ctx context.Context, tx pgx.Tx, ev hooklinetype.Event, log *slog.Logger) error {
	if _, _, ok := w.mux.Route(ev.Source, ev.Type); !ok {
		log.InfoContext(ctx, "no handler for event type; the Mux's NotFound handles it", "type", ev.Type)
	}
	if err := w.mux.Handle(ctx, tx, ev); err != nil {
		return fmt.Errorf("handle event %s/%s (%s): %w", ev.Source, ev.EventID, ev.Type, err)
	}
	return nil
}

// observeStale counts a stale event, once its transaction committed.
func (w *Worker) observeStale(ev hooklinetype.Event) {
	if w.opts.Stale != nil {
		w.opts.Stale.ObserveStale(ev.Source, ev.Type)
	}
}

// grouped reports whether events of eventType from source may share a
// group's transaction.
func (w *Worker) grouped(source, eventType string) bool {
	_, opts, _ := w.mux.Route(source, eventType)
	return opts.Group
}

// transient reports whether err is a conflict that a new transaction can
// get past: a deadlock, which Postgres breaks by aborting one side, or a
// serialization failure.
func transient(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}
