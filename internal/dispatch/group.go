package dispatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/hookline/hookline/internal/inbox"
)

// grouper gathers the jobs of grouped handlers that arrive within
// GroupMaxWait of each other, up to GroupMaxSize, into one transaction.
//
// Each job's Work waits for its group's answer, or for its own context to
// end. It holds no goroutine of its own: the job that fills a group, or a
// timer started by the group's first job, hands the group on.
type grouper struct {
	w    *Worker
	mu   sync.Mutex
	open *group
}

type group struct {
	members []*member
	first   time.Time
	timer   *time.Timer
}

// member is one job in a group, and where its answer goes.
type member struct {
	ctx  context.Context
	job  *river.Job[Args]
	done chan error
}

func (g *grouper) do(ctx context.Context, job *river.Job[Args]) error {
	m := &member{ctx: ctx, job: job, done: make(chan error, 1)}
	g.mu.Lock()
	gr := g.open
	if gr == nil {
		gr = &group{first: time.Now()}
		g.open = gr
		gr.timer = time.AfterFunc(g.w.opts.GroupMaxWait, func() { g.close(gr) })
	}
	gr.members = append(gr.members, m)
	full := len(gr.members) >= g.w.opts.GroupMaxSize
	if full {
		g.open = nil
		gr.timer.Stop()
	}
	g.mu.Unlock()
	if full {
		go g.w.flush(gr)
	}
	select {
	case err := <-m.done:
		return err
	case <-ctx.Done():
		// The group may still commit this job's event; run again, the job
		// then finds it applied.
		return ctx.Err()
	}
}

// close hands gr on when its wait is over, unless it filled up first.
func (g *grouper) close(gr *group) {
	g.mu.Lock()
	if g.open != gr {
		g.mu.Unlock()
		return
	}
	g.open = nil
	g.mu.Unlock()
	g.w.flush(gr)
}

// flush applies a group's events in one transaction and answers each job.
// If a handler fails, the group is rolled back: the failing job gets its
// error, and River retries it as it would any job, while every other event
// is applied at once in a transaction of its own. So a failing event never
// fails its group-mates, and delays them by one attempt. A group that loses
// a deadlock is tried once more as a group first, then the same way.
func (w *Worker) flush(gr *group) {
	live := make([]*member, 0, len(gr.members))
	for _, m := range gr.members {
		// A job whose context ended has already answered River; leaving it
		// out keeps its group from running past its deadline.
		if err := m.ctx.Err(); err != nil {
			m.done <- err
			continue
		}
		live = append(live, m)
	}
	if len(live) == 0 {
		return
	}
	// Handlers run, and rows lock, in the order events were stored.
	slices.SortFunc(live, func(a, b *member) int {
		return cmp.Or(cmp.Compare(a.job.Args.InboxID, b.job.Args.InboxID), cmp.Compare(a.job.ID, b.job.ID))
	})
	// The group's own statements end no later than its earliest job's
	// deadline, and no job's cancellation cancels them.
	deadline := time.Now().Add(time.Minute)
	for _, m := range live {
		if d, ok := m.ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	release, err := w.acquire(ctx)
	if err != nil {
		for _, m := range live {
			m.done <- fmt.Errorf("wait for a transaction for event %d: %w", m.job.Args.InboxID, err)
		}
		return
	}
	defer release()

	waited, start := time.Since(gr.first), time.Now()
	results, err := w.commitGroup(ctx, live)
	if err != nil && transient(err) {
		results, err = w.commitGroup(ctx, live)
	}
	if w.opts.Observer != nil {
		w.opts.Observer.ObserveGroup(len(live), waited, time.Since(start), err != nil)
	}
	if err != nil {
		w.logger.Info("group rolled back; applying its events one transaction each", "size", len(live), "error", err)
		var failed *handlerFailure
		if !errors.As(err, &failed) {
			failed = &handlerFailure{index: -1}
		}
		for i, m := range live {
			if i == failed.index {
				m.done <- w.failure(m.job, failed.err)
				continue
			}
			m.done <- w.applyOne(m.ctx, m.job)
		}
		return
	}
	for i, m := range live {
		m.done <- results[i]
	}
}

// commitGroup applies members' events in one transaction and returns each
// job's answer, or an error if the transaction did not commit.
func (w *Worker) commitGroup(ctx context.Context, members []*member) ([]error, error) {
	ids := make([]int64, len(members))
	for i, m := range members {
		ids[i] = m.job.Args.InboxID
	}
	results := make([]error, len(members))
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		evs, err := inbox.LockMany(ctx, tx, ids)
		if err != nil {
			return err
		}
		byID := make(map[int64]*inbox.Event, len(evs))
		for i := range evs {
			byID[evs[i].ID] = &evs[i]
		}
		applied := make([]inbox.Applied, 0, len(members))
		for i, m := range members {
			ev, ok := byID[m.job.Args.InboxID]
			if !ok {
				results[i] = river.JobCancel(fmt.Errorf("get event %d: %w", m.job.Args.InboxID, inbox.ErrNotFound))
				continue
			}
			log := w.logger.With("source", ev.Source, "event_id", ev.EventID, "job_id", m.job.ID, "attempt", m.job.Attempt)
			if !due(*ev, m.job.ID, m.job.Args.Replay) {
				log.Info("event already applied; completing job without effect")
				continue
			}
			if err := w.handle(m.ctx, tx, *ev, log); err != nil {
				return &handlerFailure{index: i, err: err}
			}
			// A second job for the same event in this group is judged on
			// what this one did.
			now, jobID := time.Now(), m.job.ID
			ev.ProcessedAt, ev.ProcessedByJob = &now, &jobID
			applied = append(applied, inbox.Applied{InboxID: ev.ID, JobID: jobID})
		}
		return inbox.MarkProcessed(ctx, tx, lastPerEvent(applied))
	})
	if err != nil {
		return nil, fmt.Errorf("commit group of %d events: %w", len(members), err)
	}
	return results, nil
}

// handlerFailure is the error of the group member at index, whose handler
// failed.
type handlerFailure struct {
	index int
	err   error
}

func (f *handlerFailure) Error() string { return f.err.Error() }
func (f *handlerFailure) Unwrap() error { return f.err }

// lastPerEvent keeps, for each event, the last job that applied it: one
// UPDATE may not set a row twice.
func lastPerEvent(applied []inbox.Applied) []inbox.Applied {
	seen := make(map[int64]int, len(applied))
	out := applied[:0]
	for _, a := range applied {
		if i, ok := seen[a.InboxID]; ok {
			out[i] = a
			continue
		}
		seen[a.InboxID] = len(out)
		out = append(out, a)
	}
	return out
}
