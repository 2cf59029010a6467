package throttle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// LimitKey is the hookline_settings key of the global concurrency limit.
const LimitKey = "worker.concurrency_limit"

// Channel is the NOTIFY channel that announces a settings change; its
// payload is the key that changed.
const Channel = "hookline_settings"

// Querier is what reading settings needs: a pool, a connection or a tx.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Beginner starts transactions; *pgxpool.Pool is one.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// GlobalLimit returns the operator's limit, and false if none is set (each
// process then runs up to its own WORKER_CONCURRENCY).
func GlobalLimit(ctx context.Context, q Querier) (int, bool, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT value::int FROM hookline_settings WHERE key = $1`, LimitKey).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read %s: %w", LimitKey, err)
	}
	return n, true, nil
}

// Setting is the global limit as an operator left it.
type Setting struct {
	// Limit is the global limit, or nil when none is set: each process then
	// runs up to its own WORKER_CONCURRENCY.
	Limit *int `json:"limit"`
	// SetBy and SetAt say who set the limit and when; nil without one.
	SetBy *string    `json:"set_by"`
	SetAt *time.Time `json:"set_at"`
}

// Current returns the global limit with who set it and when.
func Current(ctx context.Context, q Querier) (Setting, error) {
	var s Setting
	var n int
	var by string
	var at time.Time
	err := q.QueryRow(ctx, `SELECT value::int, updated_by, updated_at FROM hookline_settings WHERE key = $1`, LimitKey).Scan(&n, &by, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read %s: %w", LimitKey, err)
	}
	s.Limit, s.SetBy, s.SetAt = &n, &by, &at
	return s, nil
}

// SetGlobalLimit sets the limit, or clears it when n is negative, and
// notifies the workers in the same transaction, so they hear of it exactly
// when it is visible.
func SetGlobalLimit(ctx context.Context, db Beginner, n int, by string) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var err error
		if n < 0 {
			_, err = tx.Exec(ctx, `DELETE FROM hookline_settings WHERE key = $1`, LimitKey)
		} else {
			_, err = tx.Exec(ctx, `
				INSERT INTO hookline_settings (key, value, updated_by) VALUES ($1, to_jsonb($2::int), $3)
				ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now(), updated_by = EXCLUDED.updated_by`,
				LimitKey, n, by)
		}
		if err != nil {
			return fmt.Errorf("write %s=%d: %w", LimitKey, n, err)
		}
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, Channel, LimitKey); err != nil {
			return fmt.Errorf("notify %s: %w", Channel, err)
		}
		return nil
	})
}

// Process is a worker process that announced itself recently.
type Process struct {
	ID   string `json:"id"`
	Host string `json:"host"`
	PID  int    `json:"pid"`
	// ConfiguredLimit is the process's WORKER_CONCURRENCY, and
	// EffectiveLimit what it runs at most now: its share of the global
	// limit when one is set.
	ConfiguredLimit int `json:"configured_limit"`
	EffectiveLimit  int `json:"effective_limit"`
	// Executing counts the jobs past its gate, and WaitingAtGate those
	// River has fetched, and counts as running, that wait for a slot; both
	// as of LastSeenAt.
	Executing     int       `json:"executing"`
	WaitingAtGate int       `json:"waiting_at_gate"`
	StartedAt     time.Time `json:"started_at"`
	LastSeenAt    time.Time `json:"last_seen_at"`
}

// LiveProcesses returns the worker processes seen within staleAfter, by id.
func LiveProcesses(ctx context.Context, q Querier, staleAfter time.Duration) ([]Process, error) {
	rows, err := q.Query(ctx, `
		SELECT id, host, pid, configured_limit, effective_limit, jobs_executing, jobs_waiting, started_at, last_seen_at
		FROM worker_processes WHERE last_seen_at > now() - $1::interval ORDER BY id`, staleAfter)
	if err != nil {
		return nil, fmt.Errorf("list worker processes: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Process])
}

// share divides a global limit among the live processes as evenly as
// possible, so that the shares add up to exactly limit: the first
// limit%len(ids) processes in id order take one more. A process absent from
// ids (not yet announced) gets an even share.
func share(limit int, ids []string, self string) int {
	n := len(ids)
	if n == 0 {
		return limit
	}
	base, extra := limit/n, limit%n
	for i, id := range ids {
		if id == self {
			if i < extra {
				return base + 1
			}
			return base
		}
	}
	return (limit + n - 1) / n
}
