// Package throttle limits how many jobs the workers run at once, live: an
// operator changes the limit in Postgres (hookctl throttle) and every worker
// process applies its share within a second or two, with no restart.
//
// River cannot change MaxWorkers on a running client, so MaxWorkers stays a
// ceiling and a Gate, a River worker middleware, admits jobs up to the
// current limit. The limit is global: a Controller in each process
// announces the process in worker_processes and takes an even share of the
// limit among the live processes.
package throttle

import (
	"context"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Gate is a River worker middleware that admits at most Limit jobs at once.
//
// A job waiting at the gate has been fetched, so River shows it running,
// but its timeout has not started: River applies JobTimeout inside the
// middleware chain. A job that waits longer than MaxWait is snoozed back to
// the queue, which costs no attempt, so that a long throttle never leaves
// jobs "running" long enough for the rescuer to take them for dead.
type Gate struct {
	river.MiddlewareDefaults

	queue   string
	mu      sync.Mutex
	limit   int
	active  int
	waiting int
	changed chan struct{} // closed and replaced when a slot may have opened
	maxWait time.Duration
}

// NewGate returns a gate admitting limit jobs of queue at once, and
// snoozing jobs that wait longer than maxWait. Jobs of other queues (such
// as maintenance) pass freely.
func NewGate(queue string, limit int, maxWait time.Duration) *Gate {
	return &Gate{queue: queue, limit: max(0, limit), changed: make(chan struct{}), maxWait: maxWait}
}

// SetLimit changes the limit (0 admits nothing); waiting jobs are admitted
// at once if it grew.
// Jobs already running finish; a lower limit takes effect as they do.
func (g *Gate) SetLimit(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.limit = max(0, n)
	g.wakeLocked()
}

// Limit returns the current limit.
func (g *Gate) Limit() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limit
}

// Active returns how many jobs are past the gate now.
func (g *Gate) Active() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.active
}

// Counts returns, at one instant, the jobs past the gate (executing) and
// those waiting for a slot. River counts both as running.
func (g *Gate) Counts() (executing, waiting int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.active, g.waiting
}

func (g *Gate) wakeLocked() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// Work implements rivertype.WorkerMiddleware.
func (g *Gate) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	if job.Queue != g.queue {
		return doInner(ctx)
	}
	if err := g.enter(ctx); err != nil {
		return err
	}
	defer func() {
		g.mu.Lock()
		g.active--
		g.wakeLocked()
		g.mu.Unlock()
	}()
	return doInner(ctx)
}

// enter waits for a slot, counted as waiting meanwhile, and takes it; or
// returns the error that sends the job back to the queue.
func (g *Gate) enter(ctx context.Context) error {
	var deadline <-chan time.Time
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.active >= g.limit {
		if deadline == nil {
			t := time.NewTimer(g.maxWait)
			defer t.Stop()
			deadline = t.C
			g.waiting++
			// Deferred after the Unlock above, so it runs before it, under the lock.
			defer func() { g.waiting-- }()
		}
		wake := g.changed
		g.mu.Unlock()
		select {
		case <-wake:
		case <-deadline:
			g.mu.Lock()
			return river.JobSnooze(time.Second)
		case <-ctx.Done():
			g.mu.Lock()
			return ctx.Err() // shutdown: River makes the job available again
		}
		g.mu.Lock()
	}
	g.active++
	return nil
}
