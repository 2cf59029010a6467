package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/logging"
)

// ErrClosed is returned by Batcher.Ingest once Close has begun.
var ErrClosed = errors.New("ingest: batcher is closed")

// BatchOptions tune group commit. Zero fields take the defaults.
type BatchOptions struct {
	// MaxSize closes a batch when it holds this many events. Default 100.
	MaxSize int
	// MaxWait closes a batch this long after its first event arrived, so a
	// lone event waits at most this long. Default 2ms.
	MaxWait time.Duration
	// Flushers is how many batch transactions may be in flight at once.
	// Default 4. The pool needs at least this many connections.
	Flushers int
	// FlushWhenFree hands the open batch to a flusher as soon as one is
	// idle, rather than MaxWait after its first event: a lone event waits
	// for no timer, and under load each batch holds what arrived during
	// the commits in flight, so its size follows the commit latency.
	// MaxWait and MaxSize still close a batch while every flusher is busy.
	FlushWhenFree bool
	// Timeout bounds each batch transaction. Default 5s.
	Timeout time.Duration
	// Observer, if set, is told about every flush, for metrics.
	Observer Observer
}

// Observer receives a report of each batch flush.
type Observer interface {
	// ObserveFlush reports a batch of size events (after dropping those whose
	// callers had gone), how long its first event waited before the flush
	// began, how long the transaction took, and its error, if any.
	ObserveFlush(size int, waited, commit time.Duration, err error)
}

// Batcher ingests events with group commit: concurrent events share one
// transaction, which inserts them all into the inbox with one statement and
// enqueues a job for each new one with one InsertManyTx (Enqueue). Each
// caller still gets its own answer, and only after the commit.
//
// On this project's 2-core benchmark machine a commit costs far more than
// the inserts in it, so sharing commits multiplies throughput; see
// docs/BENCHMARKS.md.
type Batcher struct {
	logger *slog.Logger
	opts   BatchOptions
	pool   *pgxpool.Pool
	river  *river.Client[pgx.Tx]

	// A request adds its event to the open batch itself, under mu, and a
	// flusher takes closed batches from ready; a goroutine that collected
	// events from a channel woke once for every event.
	mu sync.Mutex
	// work wakes a flusher: a batch is ready, or (FlushWhenFree) the open
	// batch has an event, or the batcher is closing.
	work *sync.Cond
	// cur is the open batch; gen counts the batches opened, so that the
	// MaxWait timer of a batch already closed leaves the next one alone.
	cur   batch
	gen   uint64
	timer *time.Timer
	// ready holds closed batches, oldest first, until a flusher is free.
	// It has no bound of its own: each event in it is a request waiting
	// for its answer, with its body counted in the receiver's body budget,
	// which bounds them. A caller that gives up keeps its body counted
	// until a flusher reaches its batch and drops it, which takes no
	// database work.
	ready []batch
	// idle counts the flushers waiting for work and not yet woken.
	idle     int
	closed   bool
	flushers sync.WaitGroup

	// failures logs failed batches when they start, then once a minute:
	// while the database is down, every batch fails the same way.
	failures *logging.Failures
}

type pending struct {
	ctx  context.Context
	ev   inbox.NewEvent
	done chan result
	// arrived is when the event reached the batcher, for its trace; zero
	// when its request is not traced.
	arrived time.Time
}

type result struct {
	outcome Outcome
	err     error
}

// answer gives p's caller its result, and gives back the event's body: the
// batcher holds it until here, even after a caller that gave up has gone.
func (p *pending) answer(r result) {
	p.done <- r
	release(p.ev)
}

type batch struct {
	items []*pending
	first time.Time
}

// NewBatcher starts a batcher that writes through pool and enqueues with rc.
// Call Close to flush and stop it.
func NewBatcher(pool *pgxpool.Pool, rc *river.Client[pgx.Tx], logger *slog.Logger, opts BatchOptions) *Batcher {
	opts.MaxSize = cmp.Or(opts.MaxSize, 100)
	opts.MaxWait = cmp.Or(opts.MaxWait, 2*time.Millisecond)
	opts.Flushers = cmp.Or(opts.Flushers, 4)
	opts.Timeout = cmp.Or(opts.Timeout, 5*time.Second)
	b := &Batcher{
		logger: logger,
		opts:   opts,
		pool:   pool,
		river:  rc,

		failures: logging.NewFailures(logger, "batch failed; answering its requests 503", logging.DefaultEvery),
	}
	b.work = sync.NewCond(&b.mu)
	for range opts.Flushers {
		b.flushers.Go(b.runFlusher)
	}
	return b
}

// Ingest adds ev to the open batch and waits for that batch to commit. Like
// Single.Ingest, it returns only after the commit, and any error means the
// caller must not acknowledge the event. If ctx ends first, Ingest returns
// its error at once; the event is then dropped if its batch has not begun,
// and otherwise committed, to be seen as a duplicate on the sender's retry.
func (b *Batcher) Ingest(ctx context.Context, ev inbox.NewEvent) (Outcome, error) {
	p := &pending{ctx: ctx, ev: ev, done: make(chan result, 1)}
	if trace.SpanFromContext(ctx).IsRecording() {
		p.arrived = time.Now()
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		release(ev)
		return 0, fmt.Errorf("ingest event %s/%s: %w", ev.Source, ev.EventID, ErrClosed)
	}
	if len(b.cur.items) == 0 {
		b.open()
	}
	b.cur.items = append(b.cur.items, p)
	switch {
	case len(b.cur.items) >= b.opts.MaxSize:
		b.closeCur()
	case b.opts.FlushWhenFree && len(b.cur.items) == 1:
		// An idle flusher takes the open batch itself. Once per batch: a
		// flusher that comes free later looks at the open batch before it
		// waits.
		b.wake()
	}
	b.mu.Unlock()
	select {
	case r := <-p.done:
		if r.err != nil {
			return 0, fmt.Errorf("ingest event %s/%s: %w", ev.Source, ev.EventID, r.err)
		}
		return r.outcome, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("ingest event %s/%s: %w", ev.Source, ev.EventID, ctx.Err())
	}
}

// open starts a new batch, to be closed MaxWait from now if nothing closes
// it before. b.mu must be held.
func (b *Batcher) open() {
	b.gen++
	gen := b.gen
	b.cur = batch{items: make([]*pending, 0, b.opts.MaxSize), first: time.Now()}
	b.timer = time.AfterFunc(b.opts.MaxWait, func() { b.expire(gen) })
}

// expire closes batch gen, MaxWait after its first event, if it is still
// the open one.
func (b *Batcher) expire(gen uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gen == gen && len(b.cur.items) > 0 {
		b.closeCur()
	}
}

// closeCur closes the open batch and queues it for the next free flusher.
// b.mu must be held.
func (b *Batcher) closeCur() {
	b.ready = append(b.ready, b.take())
	b.wake()
}

// wake wakes one idle flusher, if any, and counts it busy at once, so
// that the next wake picks another. b.mu must be held.
func (b *Batcher) wake() {
	if b.idle > 0 {
		b.idle--
		b.work.Signal()
	}
}

// take closes the open batch and returns it. b.mu must be held.
func (b *Batcher) take() batch {
	full := b.cur
	b.cur = batch{}
	b.timer.Stop()
	return full
}

// runFlusher commits batches until Close has been called and nothing is
// left: the oldest closed batch first, or, with FlushWhenFree, the open
// batch as soon as it holds an event.
func (b *Batcher) runFlusher() {
	b.mu.Lock()
	for {
		var next batch
		switch {
		case len(b.ready) > 0:
			next = b.ready[0]
			b.ready[0] = batch{} // let the answered batch's events go
			b.ready = b.ready[1:]
		case len(b.cur.items) > 0 && (b.opts.FlushWhenFree || b.closed):
			next = b.take()
		case b.closed:
			b.mu.Unlock()
			return
		default:
			b.idle++ // wake and Close count it busy again
			b.work.Wait()
			continue
		}
		b.mu.Unlock()
		b.flush(next)
		b.mu.Lock()
	}
}

// Close stops accepting events, flushes the open batch, and waits for every
// batch in flight to commit or fail, or for ctx to end.
func (b *Batcher) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	b.idle = 0
	b.work.Broadcast()
	b.mu.Unlock()
	stopped := make(chan struct{})
	go func() { b.flushers.Wait(); close(stopped) }()
	select {
	case <-stopped:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close batcher: %w", ctx.Err())
	}
}

// flush commits one batch and answers each of its callers.
func (b *Batcher) flush(bt batch) {
	waited := time.Since(bt.first)
	live := make([]*pending, 0, len(bt.items))
	for _, p := range bt.items {
		// A caller that has gone will not answer its sender; storing its
		// event anyway would only turn the sender's retry into a duplicate,
		// and leaving it out keeps "not acknowledged" close to "not stored".
		if err := p.ctx.Err(); err != nil {
			p.answer(result{err: err})
			continue
		}
		live = append(live, p)
	}
	if len(live) == 0 {
		return
	}

	// One row per key, in key order: the same event twice in a batch gets one
	// row and one job, and concurrent batches lock keys in the same order.
	first := make(map[inbox.Key]*pending, len(live))
	events := make([]inbox.NewEvent, 0, len(live))
	for _, p := range live {
		k := inbox.Key{Source: p.ev.Source, EventID: p.ev.EventID}
		if _, dup := first[k]; !dup {
			first[k] = p
			events = append(events, p.ev)
		}
	}
	slices.SortFunc(events, func(a, b inbox.NewEvent) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.EventID, b.EventID))
	})

	// Every caller whose event is not inserted is a duplicate, counted per
	// source in the same transaction.
	callers := map[string]int{}
	for _, p := range live {
		callers[p.ev.Source]++
	}
	// The transaction ends no later than the earliest caller's deadline, so
	// that a caller answered 503 on its timeout is not then committed for.
	deadline := time.Now().Add(b.opts.Timeout)
	for _, p := range live {
		if d, ok := p.ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
	}
	start := time.Now()
	spans, metadata := b.startCommits(live, first, start)
	inserted, bodyDups, err := b.commit(deadline, events, callers, metadata)
	if b.opts.Observer != nil {
		b.opts.Observer.ObserveFlush(len(live), waited, time.Since(start), err)
	}
	if err != nil {
		b.failures.Fail(err, "size", len(live))
		for i, p := range live {
			if spans != nil {
				endCommit(spans[i], 0, err)
			}
			p.answer(result{err: err})
		}
		return
	}
	b.failures.OK()
	for i, p := range live {
		k := inbox.Key{Source: p.ev.Source, EventID: p.ev.EventID}
		var r result
		switch {
		case inserted[k] && first[k] == p:
			r.outcome = Accepted
		case bodyDups[k]:
			r.outcome = DuplicateBody
		default:
			r.outcome = Duplicate
		}
		if spans != nil {
			endCommit(spans[i], r.outcome, nil)
		}
		p.answer(r)
	}
}

// startCommits records each traced request's batch wait and starts its
// commit span, and returns the spans, by index in live, with the job
// metadata of the events that may be inserted, by key. Both are nil when
// no request is traced.
func (b *Batcher) startCommits(live []*pending, first map[inbox.Key]*pending, start time.Time) ([]trace.Span, map[inbox.Key][]byte) {
	var (
		spans    []trace.Span
		metadata map[inbox.Key][]byte
	)
	for i, p := range live {
		if !trace.SpanFromContext(p.ctx).SpanContext().IsValid() {
			continue
		}
		if spans == nil {
			spans = make([]trace.Span, len(live))
			for j := range spans {
				spans[j] = trace.SpanFromContext(context.Background())
			}
			metadata = make(map[inbox.Key][]byte)
		}
		if !p.arrived.IsZero() {
			recordBatchWait(p.ctx, p.arrived, start)
		}
		var md []byte
		spans[i], md = startCommit(p.ctx, start, len(live))
		// The same event twice in a batch gets one job: the first
		// request's, as inbox rows are.
		if k := (inbox.Key{Source: p.ev.Source, EventID: p.ev.EventID}); first[k] == p && md != nil {
			metadata[k] = md
		}
	}
	return spans, metadata
}

// commit stores events and enqueues a job for each new one, in one
// transaction, and returns the keys it inserted and those refused because
// their replay key was taken (see DuplicateBody). callers counts the
// requests per source, so that those not inserted count as duplicates.
//
// metadata holds the trace context to store with each new event's job.
func (b *Batcher) commit(deadline time.Time, events []inbox.NewEvent, callers map[string]int, metadata map[inbox.Key][]byte) (inserted, bodyDups map[inbox.Key]bool, err error) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	inserted = make(map[inbox.Key]bool, len(events))
	err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		if err := inbox.LockReplayKeys(ctx, tx, events); err != nil {
			return err
		}
		// The same statement counts the callers whose events it did not
		// insert as duplicates.
		rows, err := inbox.InsertMany(ctx, tx, events, callers)
		if err != nil {
			return err
		}
		for _, r := range rows {
			inserted[r.Key] = true
		}
		if bodyDups, err = refusedBodies(ctx, tx, events, inserted); err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		_, err = Enqueue(ctx, b.river, tx, rows, metadata)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("commit batch of %d events: %w", len(events), err)
	}
	return inserted, bodyDups, nil
}

// refusedBodies returns the keys of events that carry a replay key, were
// not inserted, and are not in the inbox: their replay key, not their id,
// made them duplicates. It costs a query only when there are such events.
func refusedBodies(ctx context.Context, tx pgx.Tx, events []inbox.NewEvent, inserted map[inbox.Key]bool) (map[inbox.Key]bool, error) {
	var skipped []inbox.Key
	for _, ev := range events {
		k := inbox.Key{Source: ev.Source, EventID: ev.EventID}
		if ev.ReplayKey != nil && !inserted[k] {
			skipped = append(skipped, k)
		}
	}
	if len(skipped) == 0 {
		return nil, nil
	}
	found, err := inbox.Existing(ctx, tx, skipped)
	if err != nil {
		return nil, err
	}
	refused := make(map[inbox.Key]bool, len(skipped))
	for _, k := range skipped {
		if !found[k] {
			refused[k] = true
		}
	}
	return refused, nil
}
