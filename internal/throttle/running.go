package throttle

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// AnnouncedWithin is how recent a worker_processes row must be for an
// operator's view (hookctl status, the queue metrics) to count the process
// as live: generous, since a process heartbeats every second and a view
// that missed a live one would misreport its jobs.
const AnnouncedWithin = 30 * time.Second

// Running splits River's count of the throttled queue's running jobs by
// what the live worker processes' gates last reported. River marks a job
// running when a worker fetches it, before the gate; under a throttle most
// of them may be waiting there, not executing.
type Running struct {
	// Executing jobs are past a gate: their handler runs.
	Executing int64 `json:"executing"`
	// WaitingAtGate jobs were fetched and wait for a slot under the
	// throttle, without their timeout running.
	WaitingAtGate int64 `json:"waiting_at_gate"`
	// Unreported jobs are running to River but at no live process's gate
	// as of its last heartbeat (a second at most): fetched since, or
	// finished and not yet recorded, as River's completer records
	// completions in batches; or held by a process that died, which
	// River's rescuer retries after WORKER_RESCUE_AFTER.
	Unreported int64 `json:"unreported"`
}

// SplitRunning divides running, River's count, into the executing and
// waiting jobs the gates reported (executing and waiting, summed over the
// live processes), and the rest. The reports are up to a second old, so
// they are capped to add up to running: jobs that finished since were
// counted by a gate and are no longer running.
func SplitRunning(running, executing, waiting int64) Running {
	var r Running
	r.WaitingAtGate = min(max(waiting, 0), running)
	r.Executing = min(max(executing, 0), running-r.WaitingAtGate)
	r.Unreported = running - r.WaitingAtGate - r.Executing
	return r
}

// Rows runs a query; *pgxpool.Pool and pgx.Tx are ones.
type Rows interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// GateCounts sums what the gates of the processes announced within
// `within` reported: jobs executing and jobs waiting at the gate.
func GateCounts(ctx context.Context, q Rows, within time.Duration) (executing, waiting int64, err error) {
	rows, err := q.Query(ctx, `
		SELECT coalesce(sum(jobs_executing), 0), coalesce(sum(jobs_waiting), 0)
		FROM worker_processes WHERE last_seen_at > now() - $1::interval`, within)
	if err != nil {
		return 0, 0, fmt.Errorf("sum the worker gates' counts: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		err = rows.Scan(&executing, &waiting)
	}
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return 0, 0, fmt.Errorf("sum the worker gates' counts: %w", err)
	}
	return executing, waiting, nil
}
