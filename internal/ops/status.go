package ops

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/rivertype"

	"github.com/hookline/hookline/internal/riverdb"
	"github.com/hookline/hookline/internal/shed"
	"github.com/hookline/hookline/internal/throttle"
)

// Backlog counts the jobs of the queue that will still run on their own,
// those in riverdb.LiveStates: available, running, retryable, scheduled and
// pending. Drain waits for it to empty.
type Backlog struct {
	Available int64 `json:"available"`
	Running   int64 `json:"running"`
	Retryable int64 `json:"retryable"`
	Scheduled int64 `json:"scheduled"`
	Pending   int64 `json:"pending"`
}

// Live is the number of jobs in the backlog.
func (b Backlog) Live() int64 {
	return b.Available + b.Running + b.Retryable + b.Scheduled + b.Pending
}

func (b *Backlog) set(state rivertype.JobState, n int64) {
	switch state {
	case rivertype.JobStateAvailable:
		b.Available = n
	case rivertype.JobStateRunning:
		b.Running = n
	case rivertype.JobStateRetryable:
		b.Retryable = n
	case rivertype.JobStateScheduled:
		b.Scheduled = n
	case rivertype.JobStatePending:
		b.Pending = n
	}
}

// StateCounts counts the jobs of the events queue in each River state: the
// backlog, whose fields it embeds (so its JSON is flat, and Live counts the
// backlog), and the jobs in a final state. Discarded and cancelled jobs are
// dead and completed ones are done, so they are not part of the backlog.
type StateCounts struct {
	Backlog
	Discarded int64 `json:"discarded"`
	Completed int64 `json:"completed"`
	Cancelled int64 `json:"cancelled"`
}

func (s *StateCounts) set(state rivertype.JobState, n int64) {
	switch state {
	case rivertype.JobStateDiscarded:
		s.Discarded = n
	case rivertype.JobStateCompleted:
		s.Completed = n
	case rivertype.JobStateCancelled:
		s.Cancelled = n
	default:
		s.Backlog.set(state, n)
	}
}

// QueueRow is a row of river_queue (riverdb.QueueRow).
type QueueRow = riverdb.QueueRow

// Leader is River's elected leader (riverdb.Leader).
type Leader = riverdb.Leader

// WorkerActivity is a River client that worked the queue in the last five
// minutes (riverdb.WorkerActivity).
type WorkerActivity = riverdb.WorkerActivity

// Connection groups the current database's client connections by
// application name and client address, as pg_stat_activity shows them.
// Every Hookline process (receivers, workers, this hookctl) appears here;
// a role without pg_read_all_stats sees no address for other roles'
// connections.
type Connection struct {
	ApplicationName string    `json:"application_name"`
	ClientAddr      string    `json:"client_addr"`
	Connections     int64     `json:"connections"`
	Active          int64     `json:"active"`
	OldestStart     time.Time `json:"oldest_backend_start"`
}

// Status is a snapshot of the pipeline, as hookctl status prints it.
type Status struct {
	Queue string `json:"queue"`
	// At is the database's clock when the snapshot was taken.
	At   time.Time   `json:"at"`
	Jobs StateCounts `json:"jobs"`
	// Running splits Jobs.Running, which counts the jobs waiting at the
	// workers' throttle gates too, by what the gates reported.
	Running throttle.Running `json:"running"`
	// Throttle is the global concurrency limit (hookctl throttle); each
	// announced worker's share is its effective_limit.
	Throttle throttle.Setting `json:"throttle"`
	// Sheds are the per-source rate limits in force (hookctl shed).
	Sheds []shed.Active `json:"sheds"`
	// OldestAvailableAgeSeconds is how long the oldest available job has
	// been ready to run (now - scheduled_at), or nil when none is available.
	OldestAvailableAgeSeconds *float64 `json:"oldest_available_age_seconds"`
	// CompletedPerSecond1m and CompletedPerSecond5m are the jobs completed
	// in the last one and five minutes, divided by the window's seconds.
	CompletedPerSecond1m float64 `json:"completed_per_second_1m"`
	CompletedPerSecond5m float64 `json:"completed_per_second_5m"`
	// Registered is whether the queue has a river_queue row, and Paused
	// whether that row is paused.
	Registered bool       `json:"registered"`
	Paused     bool       `json:"paused"`
	PausedAt   *time.Time `json:"paused_at"`
	Queues     []QueueRow `json:"queues"`
	// InboxReceivedLastHour counts inbox rows received in the last hour:
	// new events only, since a duplicate writes nothing.
	InboxReceivedLastHour int64 `json:"inbox_received_last_hour"`
	// DuplicatesLastHour counts deliveries of events already stored, in
	// the last hour (inbox_duplicates).
	DuplicatesLastHour int64   `json:"duplicates_last_hour"`
	Leader             *Leader `json:"leader"`
	// Announced lists the worker processes that announced themselves in
	// worker_processes in the last 30 seconds; WorkerRegistry is false when
	// that table does not exist.
	WorkerRegistry bool               `json:"worker_registry"`
	Announced      []throttle.Process `json:"announced_workers"`
	Workers        []WorkerActivity   `json:"workers"`
	Connections    []Connection       `json:"connections"`
}

// Status takes a snapshot of the events queue, the inbox and the processes
// connected to the database. Counting completed jobs reads every one River
// still retains (24 hours by default), from its fetching index (see
// riverdb.CountJobs); it is meant for an operator, not for a scrape every
// few seconds.
func (c *Client) Status(ctx context.Context) (Status, error) {
	st := Status{
		Queue: c.queue, Sheds: []shed.Active{}, Queues: []QueueRow{}, Announced: []throttle.Process{},
		Workers: []WorkerActivity{}, Connections: []Connection{},
	}
	err := c.readTx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&st.At); err != nil {
			return fmt.Errorf("read the database clock: %w", err)
		}
		if err := c.statusJobs(ctx, tx, &st); err != nil {
			return err
		}
		if err := c.statusQueues(ctx, tx, &st); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx,
			`SELECT count(*) FROM inbox_events WHERE received_at > now() - interval '1 hour'`,
		).Scan(&st.InboxReceivedLastHour); err != nil {
			return fmt.Errorf("count inbox events received in the last hour: %w", err)
		}
		if err := tx.QueryRow(ctx,
			`SELECT coalesce(sum(count), 0) FROM inbox_duplicates WHERE at > now() - interval '1 hour'`,
		).Scan(&st.DuplicatesLastHour); err != nil {
			return fmt.Errorf("count duplicates in the last hour: %w", err)
		}
		if err := c.statusLevers(ctx, tx, &st); err != nil {
			return err
		}
		return c.statusProcesses(ctx, tx, &st)
	})
	if err != nil {
		return Status{}, fmt.Errorf("status of queue %s: %w", c.queue, err)
	}
	return st, nil
}

func (c *Client) statusJobs(ctx context.Context, tx pgx.Tx, st *Status) error {
	counts, err := riverdb.CountJobs(ctx, tx, c.queue, rivertype.JobStates())
	if err != nil {
		return err
	}
	for state, n := range counts.ByState {
		st.Jobs.set(state, n)
	}
	st.OldestAvailableAgeSeconds = counts.OldestAvailableSeconds

	done1, done5, err := riverdb.CompletedRecently(ctx, tx, c.queue)
	if err != nil {
		return err
	}
	st.CompletedPerSecond1m = float64(done1) / 60
	st.CompletedPerSecond5m = float64(done5) / 300
	return nil
}

func (c *Client) statusQueues(ctx context.Context, tx pgx.Tx, st *Status) error {
	queues, err := riverdb.Queues(ctx, tx)
	if err != nil {
		return err
	}
	st.Queues = append(st.Queues, queues...)
	for _, q := range queues {
		if q.Name == c.queue {
			st.Registered, st.Paused, st.PausedAt = true, q.PausedAt != nil, q.PausedAt
		}
	}
	return nil
}

func (c *Client) statusProcesses(ctx context.Context, tx pgx.Tx, st *Status) error {
	leader, err := riverdb.CurrentLeader(ctx, tx)
	if err != nil {
		return err
	}
	st.Leader = leader

	if err := tx.QueryRow(ctx, `SELECT to_regclass('worker_processes') IS NOT NULL`).Scan(&st.WorkerRegistry); err != nil {
		return fmt.Errorf("look for worker_processes: %w", err)
	}
	if st.WorkerRegistry {
		announced, err := throttle.LiveProcesses(ctx, tx, throttle.AnnouncedWithin)
		if err != nil {
			return err
		}
		st.Announced = append(st.Announced, announced...)
	}
	var executing, waiting int64
	for _, p := range st.Announced {
		executing += int64(p.Executing)
		waiting += int64(p.WaitingAtGate)
	}
	st.Running = throttle.SplitRunning(st.Jobs.Running, executing, waiting)

	workers, err := riverdb.RecentWorkers(ctx, tx, c.queue)
	if err != nil {
		return err
	}
	st.Workers = append(st.Workers, workers...)

	rows, err := tx.Query(ctx, `
		SELECT coalesce(application_name, ''), coalesce(host(client_addr), 'local'),
		       count(*), count(*) FILTER (WHERE state = 'active'), min(backend_start)
		FROM pg_stat_activity
		WHERE datname = current_database() AND backend_type = 'client backend'
		GROUP BY 1, 2
		ORDER BY 1, 2`)
	if err != nil {
		return fmt.Errorf("list database connections: %w", err)
	}
	conns, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Connection])
	if err != nil {
		return fmt.Errorf("list database connections: %w", err)
	}
	st.Connections = append(st.Connections, conns...)
	return nil
}

// statusLevers reads what the operators have set: the throttle and the
// sheds.
func (c *Client) statusLevers(ctx context.Context, tx pgx.Tx, st *Status) error {
	var err error
	if st.Throttle, err = throttle.Current(ctx, tx); err != nil {
		return err
	}
	sheds, err := shed.List(ctx, tx)
	if err != nil {
		return err
	}
	st.Sheds = append(st.Sheds, sheds...)
	return nil
}
