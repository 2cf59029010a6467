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

	"github.com/hookline/hookline/hooklinetype"
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
	job  *river.Job[hooklinetype.JobArgs]
	done chan error
}

func (g *grouper) do(ctx context.Context, job *river.Job[hooklinetype.JobArgs]) error {
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
// a deadlock is tried once more as a group, then each of its events alone.
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
	// Handlers run in the order events were stored.
	slices.SortFunc(live, func(a, b *member) int {
		return cmp.Or(cmp.Compare(a.job.Args.InboxID, b.job.Args.InboxID), cmp.Compare(a.job.ID, b.job.ID))
	})
	// A second job for the same event (a replay beside a stray retry) waits
	// for the group, then goes alone: one claim may name an event once.
	var later []*member
	for i := 1; i < len(live); {
		if live[i].job.Args.InboxID == live[i-1].job.Args.InboxID {
			later = append(later, live[i])
			live = slices.Delete(live, i, i+1)
			continue
		}
		i++
	}
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
		for _, m := range append(live, later...) {
			m.done <- fmt.Errorf("wait for a transaction for event %d: %w", m.job.Args.InboxID, err)
		}
		return
	}
	defer release()
	defer func() {
		for _, m := range later {
			m.done <- w.applyOne(m.ctx, m.job)
		}
	}()

	waited, start := time.Since(gr.first), time.Now()
	span := w.startGroup(ctx, live)
	results, stale, busy, err := w.commitGroup(ctx, live)
	if err != nil && transient(err) {
		results, stale, busy, err = w.commitGroup(ctx, live)
	}
	endSpan(span, err)
	if w.opts.Observer != nil {
		w.opts.Observer.ObserveGroup(len(live), waited, time.Since(start), err != nil)
	}
	if err != nil {
		w.logger.Info("group rolled back; applying its events one transaction each", "size", len(live), "error", err)
		// A conflict that outlived the group's second try is no job's
		// fault: every event goes alone, where conflicts are retried too.
		var failed *handlerFailure
		if !errors.As(err, &failed) || transient(err) {
			failed = &handlerFailure{index: -1}
		}
		for i, m := range live {
			if i == failed.index {
				m.done <- w.failure(m.ctx, m.job, failed.err)
				continue
			}
			m.done <- w.applyOne(m.ctx, m.job)
		}
		return
	}
	for _, ev := range stale {
		w.observeStale(ev)
	}
	for i, m := range live {
		if !busy[i] {
			m.done <- results[i]
		}
	}
	// Their objects were busy: each now waits for its lock, alone.
	for i, m := range live {
		if busy[i] {
			m.done <- w.applyOne(m.ctx, m.job)
		}
	}
}

// commitGroup applies members' events, all distinct, in one transaction
// and returns each job's answer and the events completed as stale, or an
// error if the transaction did not commit. Jobs whose ordered object
// another transaction held (tryLockObjects) are left out, and returned in
// busy, for the caller to apply alone.
//
// Events run in the order they were stored, except that the events of a
// hooklinetype.BatchHandler go to it in one call, when its first one comes,
// and that the events of one object whose handlers are Ordered run in
// event-time order, in the places the object's events held (sequence).
func (w *Worker) commitGroup(ctx context.Context, members []*member) ([]error, []hooklinetype.Event, map[int]bool, error) {
	all := make([]*river.Job[hooklinetype.JobArgs], len(members))
	for i, m := range members {
		all[i] = m.job
	}
	results := make([]error, len(members))
	var stale []hooklinetype.Event
	var busy map[int]bool
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		stale = nil
		held, b, err := w.tryLockObjects(ctx, tx, all)
		if err != nil {
			return err
		}
		busy = b
		jobs := make([]*river.Job[hooklinetype.JobArgs], 0, len(all))
		for i, j := range all {
			if !busy[i] {
				jobs = append(jobs, j)
			}
		}
		due, gone, err := claim(ctx, tx, jobs, func(i int) bool {
			a := jobs[i].Args
			return a.Object != "" && held[lockKey(objectKey{a.Source, a.Object})]
		})
		if err != nil {
			return err
		}
		var work []groupItem
		for i, m := range members {
			if busy[i] {
				continue
			}
			id := m.job.Args.InboxID
			d, ok := due[id]
			switch {
			case ok:
				work = append(work, groupItem{index: i, ev: d.ev, known: d.known, mark: d.mark})
			case gone[id]:
				results[i] = river.JobCancel(fmt.Errorf("get event %d: %w", id, inbox.ErrNotFound))
			default:
				w.logger.InfoContext(m.ctx, "event already applied; completing job without effect",
					"source", m.job.Args.Source, "event_id", m.job.Args.EventID, "job_id", m.job.ID, "attempt", m.job.Attempt)
			}
		}
		items := make([]orderItem, len(work))
		for i, it := range work {
			items[i] = orderItem{ev: it.ev, replay: members[it.index].job.Args.Replay, known: it.known, mark: it.mark}
		}
		seq, err := w.sequence(ctx, tx, items, held)
		if err != nil {
			return err
		}
		run := make([]groupItem, 0, len(work))
		for _, i := range seq.order {
			if newer := seq.stale[i]; newer != "" {
				m := members[work[i].index]
				logStale(w.logger.With("source", work[i].ev.Source, "event_id", work[i].ev.EventID, "job_id", m.job.ID, "attempt", m.job.Attempt), work[i].ev, newer)
				stale = append(stale, work[i].ev)
				continue
			}
			run = append(run, work[i])
		}
		if err := w.runGroup(ctx, tx, members, run); err != nil {
			return err
		}
		return seq.finish(ctx, tx, items)
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("commit group of %d events: %w", len(members), err)
	}
	return results, stale, busy, nil
}

// routeKey is a handler's route: an event's source and type.
type routeKey struct{ source, eventType string }

// groupItem is an event a group member's job applies.
type groupItem struct {
	index int // in the group's members
	ev    hooklinetype.Event
	// known and mark are the claim's reading of the object's mark.
	known bool
	mark  *mark
}

// runGroup runs the handlers of work in tx. A handler's failure is a
// *handlerFailure naming the member, or no member (index -1) when a
// hooklinetype.BatchHandler failed for several.
func (w *Worker) runGroup(ctx context.Context, tx pgx.Tx, members []*member, work []groupItem) error {
	batched := map[routeKey][]groupItem{}
	for _, it := range work {
		r := routeKey{it.ev.Source, it.ev.Type}
		if h, _, ok := w.mux.Route(r.source, r.eventType); ok {
			if _, batch := h.(hooklinetype.BatchHandler); batch {
				batched[r] = append(batched[r], it)
			}
		}
	}
	for r, items := range batched {
		if len(items) == 1 {
			delete(batched, r) // one event goes through Handle, as it would alone
		}
	}
	for _, it := range work {
		r := routeKey{it.ev.Source, it.ev.Type}
		if items, ok := batched[r]; ok {
			if items == nil {
				continue // applied with the route's first event
			}
			batched[r] = nil
			if err := w.handleBatch(ctx, tx, items); err != nil {
				return &handlerFailure{index: -1, err: err}
			}
			continue
		}
		m := members[it.index]
		log := w.logger.With("source", it.ev.Source, "event_id", it.ev.EventID, "job_id", m.job.ID, "attempt", m.job.Attempt)
		if err := w.handle(m.ctx, tx, it.ev, log); err != nil {
			return &handlerFailure{index: it.index, err: err}
		}
	}
	return nil
}

// handleBatch gives one hooklinetype.BatchHandler its events, at least two.
func (w *Worker) handleBatch(ctx context.Context, tx pgx.Tx, items []groupItem) error {
	first := items[0].ev
	h, _, _ := w.mux.Route(first.Source, first.Type)
	evs := make([]hooklinetype.Event, len(items))
	for i, it := range items {
		evs[i] = it.ev
	}
	if err := h.(hooklinetype.BatchHandler).HandleBatch(ctx, tx, evs); err != nil {
		return fmt.Errorf("handle %d events of %s (%s) at once: %w", len(evs), first.Source, first.Type, err)
	}
	return nil
}

// handlerFailure is the error of the group member at index, whose handler
// failed.
type handlerFailure struct {
	index int
	err   error
}

func (f *handlerFailure) Error() string { return f.err.Error() }
func (f *handlerFailure) Unwrap() error { return f.err }
