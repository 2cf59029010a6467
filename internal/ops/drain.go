package ops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hookline/hookline/internal/riverdb"
	"github.com/hookline/hookline/internal/throttle"
)

// ErrDrainTimeout is returned, wrapped, by Drain when jobs remain at the
// timeout.
var ErrDrainTimeout = errors.New("queue not drained before the timeout")

// DrainProgress is one observation of a drain in progress.
type DrainProgress struct {
	Backlog Backlog `json:"backlog"`
	// Running splits Backlog.Running by what the workers' throttle gates
	// reported: under a throttle, most running jobs may be waiting.
	Running   throttle.Running `json:"running"`
	Remaining int64            `json:"remaining"`
	Elapsed   time.Duration    `json:"-"`
	// Rate is the fall in Remaining per second, smoothed over the recent
	// polls; 0 until two polls were made or while the backlog grows.
	Rate float64 `json:"rate_per_second"`
	// ETA is Remaining / Rate, or nil while Rate is 0.
	ETA *time.Duration `json:"-"`
	// Paused is true when the queue is paused: it cannot drain until it is
	// resumed.
	Paused bool `json:"paused"`
}

// DrainOpts configures Drain.
type DrainOpts struct {
	// Interval is the time between polls; 1s if zero.
	Interval time.Duration
	// Timeout bounds the wait; zero waits until the queue drains or ctx
	// ends.
	Timeout time.Duration
	// Progress, if set, is called after every poll.
	Progress func(DrainProgress)
}

// DrainResult is the outcome of Drain.
type DrainResult struct {
	Queue   string `json:"queue"`
	Drained bool   `json:"drained"`
	// Initial and Remaining are the backlog at the first and last polls.
	Initial   int64   `json:"initial"`
	Remaining int64   `json:"remaining"`
	Backlog   Backlog `json:"backlog"`
	// Running splits Backlog.Running at the last poll (DrainProgress).
	Running throttle.Running `json:"running"`
	Elapsed time.Duration    `json:"-"`
	// ElapsedSeconds is Elapsed, for JSON.
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	Rate           float64 `json:"rate_per_second"`
	Paused         bool    `json:"paused"`
}

// Drain waits until the queue has no job in riverdb.LiveStates (available,
// running, retryable, scheduled or pending), polling every opts.Interval. It does not stop
// the receivers, so a steady stream of new events can keep it from ever
// draining; pause the senders first, or use a timeout. A retryable job
// waits for its backoff, which grows to days after many attempts.
//
// It returns a result with Drained set once the backlog is empty. At the
// timeout it returns the last result and an error wrapping
// ErrDrainTimeout; when ctx ends, the last result and ctx's error.
func (c *Client) Drain(ctx context.Context, opts DrainOpts) (DrainResult, error) {
	interval := opts.Interval
	if interval <= 0 {
		interval = time.Second
	}
	start := time.Now()
	pollCtx := ctx
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		pollCtx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	res := DrainResult{Queue: c.queue}
	var prev int64
	var prevAt time.Time
	var rate float64
	timedOut := func() (DrainResult, error) {
		res.Elapsed = time.Since(start)
		res.ElapsedSeconds = res.Elapsed.Seconds()
		if ctx.Err() != nil {
			return res, fmt.Errorf("drain queue %s: interrupted with %d jobs remaining: %w", c.queue, res.Remaining, ctx.Err())
		}
		return res, fmt.Errorf("drain queue %s: %d jobs remain after %s (available %d, running %d of which %d wait at the throttle gate, retryable %d, scheduled %d, pending %d): %w",
			c.queue, res.Remaining, opts.Timeout, res.Backlog.Available, res.Backlog.Running, res.Running.WaitingAtGate,
			res.Backlog.Retryable, res.Backlog.Scheduled, res.Backlog.Pending, ErrDrainTimeout)
	}
	for first := true; ; first = false {
		b, running, paused, err := c.backlog(pollCtx)
		if err != nil {
			if pollCtx.Err() != nil && !first {
				return timedOut()
			}
			if pollCtx.Err() != nil && ctx.Err() == nil {
				return res, fmt.Errorf("drain queue %s: no count from the database within %s: %w", c.queue, opts.Timeout, ErrDrainTimeout)
			}
			return res, fmt.Errorf("drain queue %s: %w", c.queue, err)
		}
		now := time.Now()
		remaining := b.Live()
		if first {
			res.Initial = remaining
		} else if dt := now.Sub(prevAt).Seconds(); dt > 0 {
			instant := max(float64(prev-remaining), 0) / dt
			rate = 0.5*rate + 0.5*instant
			if rate < 0.01 {
				rate = 0
			}
		}
		prev, prevAt = remaining, now
		res.Remaining, res.Backlog, res.Running, res.Rate, res.Paused = remaining, b, running, rate, paused
		res.Elapsed = now.Sub(start)
		res.ElapsedSeconds = res.Elapsed.Seconds()
		if opts.Progress != nil {
			p := DrainProgress{Backlog: b, Running: running, Remaining: remaining, Elapsed: res.Elapsed, Rate: rate, Paused: paused}
			if rate > 0 {
				eta := time.Duration(float64(remaining) / rate * float64(time.Second)).Round(time.Second)
				p.ETA = &eta
			}
			opts.Progress(p)
		}
		if remaining == 0 {
			res.Drained = true
			return res, nil
		}
		select {
		case <-pollCtx.Done():
			return timedOut()
		case <-time.After(interval):
		}
	}
}

// backlog counts the queue's jobs that will still run on their own, splits
// the running ones by what the workers' throttle gates reported, and
// reports whether the queue is paused.
func (c *Client) backlog(ctx context.Context) (Backlog, throttle.Running, bool, error) {
	counts, err := riverdb.CountJobs(ctx, c.pool, c.queue, riverdb.LiveStates())
	if err != nil {
		return Backlog{}, throttle.Running{}, false, err
	}
	var b Backlog
	for state, n := range counts.ByState {
		b.set(state, n)
	}
	executing, waiting, err := throttle.GateCounts(ctx, c.pool, throttle.AnnouncedWithin)
	if err != nil {
		return Backlog{}, throttle.Running{}, false, err
	}
	paused, err := riverdb.QueuePaused(ctx, c.pool, c.queue)
	if err != nil {
		return Backlog{}, throttle.Running{}, false, err
	}
	return b, throttle.SplitRunning(b.Running, executing, waiting), paused, nil
}
