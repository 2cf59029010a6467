package throttle

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookline/hookline/internal/logging"
)

// Controller keeps one worker process's Gate at its share of the global
// limit. It listens for NOTIFY on Channel and also re-reads every Interval,
// so a lost notification, or a pooler that drops LISTEN, delays a change by
// at most Interval.
type Controller struct {
	// Configured is this process's WORKER_CONCURRENCY: its limit while no
	// global limit is set, and its ceiling when one is.
	Configured int
	// Interval is the heartbeat and polling period. Default 1s.
	Interval time.Duration
	// StaleAfter is how long a silent process still counts as live.
	// Default 10 intervals: generous, because a live process wrongly
	// counted out lets the others exceed the limit by its share.
	StaleAfter time.Duration
	// OnChange, if set, is called with each new effective limit (metrics).
	OnChange func(limit int)

	gate   *Gate
	pool   *pgxpool.Pool
	logger *slog.Logger
	id     string
	host   string
	// announced is set once the process's row is in worker_processes;
	// until then there is nothing to withdraw.
	announced atomic.Bool
	// Failures to reach the database are logged when they start, then once
	// a minute: a database that is down must not write a line a second.
	connFailures, refreshFailures *logging.Failures
}

// NewController returns a controller for gate that announces this process
// in pool's worker_processes table.
func NewController(pool *pgxpool.Pool, gate *Gate, configured int, logger *slog.Logger) *Controller {
	host, _ := os.Hostname()
	return &Controller{
		Configured: configured, Interval: time.Second,
		gate: gate, pool: pool, logger: logger,
		id:              fmt.Sprintf("%s/%d/%d", host, os.Getpid(), time.Now().UnixNano()),
		host:            host,
		connFailures:    logging.NewFailures(logger, "throttle controller lost its connection; retrying", logging.DefaultEvery),
		refreshFailures: logging.NewFailures(logger, "could not refresh the concurrency limit", logging.DefaultEvery),
	}
}

// ID is this process's id in worker_processes.
func (c *Controller) ID() string { return c.id }

// Run applies limit changes until ctx ends, then withdraws the process. A
// lost connection (a database restart) is retried with backoff; meanwhile
// the gate keeps its last limit.
func (c *Controller) Run(ctx context.Context) error {
	defer c.withdraw()
	backoff := c.interval()
	for ctx.Err() == nil {
		err := c.listen(ctx)
		if ctx.Err() != nil {
			break
		}
		c.connFailures.Fail(err, "in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
	return nil
}

func (c *Controller) interval() time.Duration {
	if c.Interval > 0 {
		return c.Interval
	}
	return time.Second
}

// listen refreshes on every notification and every interval, until its
// connection fails or ctx ends.
func (c *Controller) listen(ctx context.Context) error {
	interval := c.interval()
	staleAfter := c.StaleAfter
	if staleAfter == 0 {
		staleAfter = 10 * interval
	}
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection to listen on %s: %w", Channel, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return fmt.Errorf("listen on %s: %w", Channel, err)
	}
	c.connFailures.OK()
	for {
		switch err := c.refresh(ctx, staleAfter); {
		case err == nil:
			c.refreshFailures.OK()
		case ctx.Err() == nil:
			// Keep the last limit: a database blip must not open the gate.
			c.refreshFailures.Fail(err)
		}
		waitCtx, cancel := context.WithTimeout(ctx, interval)
		_, err := conn.Conn().WaitForNotification(waitCtx)
		// Read before cancel, after which waitCtx.Err() is never nil: a
		// dead connection would then pass for a timeout, and the loop
		// would spin on it, refreshing as fast as the CPU allows.
		timedOut := waitCtx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !timedOut {
			// A dead connection must not go back to the pool.
			conn.Hijack().Close(context.WithoutCancel(ctx))
			return fmt.Errorf("wait for %s: %w", Channel, err)
		}
	}
}

// refresh announces the process, with its gate's counts, and sets the gate
// to its share.
func (c *Controller) refresh(ctx context.Context, staleAfter time.Duration) error {
	limit, set, err := GlobalLimit(ctx, c.pool)
	if err != nil {
		return err
	}
	effective := c.Configured
	if set {
		procs, err := LiveProcesses(ctx, c.pool, staleAfter)
		if err != nil {
			return err
		}
		// Count this process even before its first announcement lands, so
		// that a newcomer does not take a whole share on top of the others.
		ids := []string{c.id}
		for _, p := range procs {
			if p.ID != c.id {
				ids = append(ids, p.ID)
			}
		}
		slices.Sort(ids)
		effective = min(c.Configured, share(limit, ids, c.id))
	}
	// What the gate holds goes with the heartbeat, so hookctl status can
	// tell jobs executing from jobs River counts as running that wait here.
	executing, waiting := c.gate.Counts()
	_, err = c.pool.Exec(ctx, `
		INSERT INTO worker_processes (id, host, pid, configured_limit, effective_limit, jobs_executing, jobs_waiting)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (id) DO UPDATE SET last_seen_at = now(), effective_limit = EXCLUDED.effective_limit,
			jobs_executing = EXCLUDED.jobs_executing, jobs_waiting = EXCLUDED.jobs_waiting`,
		c.id, c.host, os.Getpid(), c.Configured, effective, executing, waiting)
	if err != nil {
		return fmt.Errorf("announce worker %s: %w", c.id, err)
	}
	c.announced.Store(true)
	if old := c.gate.Limit(); old != effective {
		c.gate.SetLimit(effective)
		c.logger.Info("concurrency limit changed", "from", old, "to", effective, "global", limit, "global_set", set)
		if c.OnChange != nil {
			c.OnChange(effective)
		}
	}
	return nil
}

// withdraw removes the process's row so others take its share at once.
func (c *Controller) withdraw() {
	if !c.announced.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := c.pool.Exec(ctx, `DELETE FROM worker_processes WHERE id = $1`, c.id); err != nil {
		c.logger.Warn("could not withdraw from worker_processes", "id", c.id, "error", err)
	}
}
