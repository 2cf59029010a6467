package riverdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// QueueRow is a row of river_queue. River creates it when a worker starts
// working the queue, refreshes it every 10 minutes while one does, and
// deletes it after 24 hours without one.
type QueueRow struct {
	Name      string     `json:"name"`
	PausedAt  *time.Time `json:"paused_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// Queues lists the rows of river_queue, by name.
func Queues(ctx context.Context, q Querier) ([]QueueRow, error) {
	rows, err := q.Query(ctx, `SELECT name, paused_at, updated_at FROM river_queue ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list river queues: %w", err)
	}
	queues, err := pgx.CollectRows(rows, pgx.RowToStructByPos[QueueRow])
	if err != nil {
		return nil, fmt.Errorf("list river queues: %w", err)
	}
	return queues, nil
}

// QueuePaused reports whether queue has a river_queue row that is paused.
func QueuePaused(ctx context.Context, q Querier, queue string) (bool, error) {
	rows, err := q.Query(ctx, `SELECT EXISTS (SELECT 1 FROM river_queue WHERE name = $1 AND paused_at IS NOT NULL)`, queue)
	if err != nil {
		return false, fmt.Errorf("read whether the queue is paused: %w", err)
	}
	paused, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[bool])
	if err != nil {
		return false, fmt.Errorf("read whether the queue is paused: %w", err)
	}
	return paused, nil
}

// LockQueue locks the river_queue row of queue until tx ends, so that two
// operators pausing and resuming at once take turns, and returns its
// paused_at. found is false when the queue has no row.
func LockQueue(ctx context.Context, tx pgx.Tx, queue string) (pausedAt *time.Time, found bool, err error) {
	err = tx.QueryRow(ctx, `SELECT paused_at FROM river_queue WHERE name = $1 FOR UPDATE`, queue).Scan(&pausedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read river_queue row: %w", err)
	}
	return pausedAt, true, nil
}

// CreateQueue creates the river_queue row of queue, unpaused, with the
// columns River's producer sets when it creates one
// (QueueCreateOrSetUpdatedAt). It reports false when the row already
// existed: ON CONFLICT covers a worker that starts at this very moment.
func CreateQueue(ctx context.Context, tx pgx.Tx, queue string) (bool, error) {
	tag, err := tx.Exec(ctx, `
		INSERT INTO river_queue (name, metadata, created_at, updated_at)
		VALUES ($1, '{}', now(), now())
		ON CONFLICT (name) DO NOTHING`, queue)
	if err != nil {
		return false, fmt.Errorf("create river_queue row: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Leader is River's elected leader: one started River client (worker
// process) that runs maintenance such as rescuing stuck jobs. Any started
// client takes part in the election and renews its lease every few
// seconds, so a current leader means that at least one worker is alive,
// even when it is idle.
type Leader struct {
	ID        string    `json:"id"`
	ElectedAt time.Time `json:"elected_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CurrentLeader returns the leader whose lease has not expired, or nil
// when there is none: no worker is running.
func CurrentLeader(ctx context.Context, q Querier) (*Leader, error) {
	rows, err := q.Query(ctx, `SELECT leader_id, elected_at, expires_at FROM river_leader WHERE expires_at > now()`)
	if err != nil {
		return nil, fmt.Errorf("read the river leader: %w", err)
	}
	leaders, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Leader])
	if err != nil {
		return nil, fmt.Errorf("read the river leader: %w", err)
	}
	if len(leaders) == 0 {
		return nil, nil
	}
	return &leaders[0], nil
}
