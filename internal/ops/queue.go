package ops

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookline/hookline/internal/riverdb"
)

// PauseResult reports what Pause or Resume did.
type PauseResult struct {
	Queue string `json:"queue"`
	// Paused is the queue's state afterwards, and PausedAt when it was
	// paused.
	Paused   bool       `json:"paused"`
	PausedAt *time.Time `json:"paused_at"`
	// Changed is false when the queue already was in that state.
	Changed bool `json:"changed"`
	// CreatedQueueRow is true when the queue had no river_queue row (no
	// worker had started in the last 24 hours) and Pause created one.
	CreatedQueueRow bool `json:"created_queue_row"`
}

// Pause stops every worker from fetching jobs of the queue, through
// River's QueuePause: running jobs finish, inserts still succeed, and the
// backlog grows until Resume.
//
// River's QueuePause fails with rivertype.ErrNotFound when the queue has
// no river_queue row, which River only creates when a worker starts
// working the queue (and deletes after 24 hours without one). Pause then
// creates the row itself, as a worker's start would, in the same
// transaction as the pause: a worker that starts later reads the row and
// starts paused. Pausing an already paused queue changes nothing.
func (c *Client) Pause(ctx context.Context) (PauseResult, error) {
	res := PauseResult{Queue: c.queue}
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		pausedAt, found, err := riverdb.LockQueue(ctx, tx, c.queue)
		if err != nil {
			return err
		}
		if !found {
			if res.CreatedQueueRow, err = riverdb.CreateQueue(ctx, tx, c.queue); err != nil {
				return err
			}
			if pausedAt, _, err = riverdb.LockQueue(ctx, tx, c.queue); err != nil {
				return err
			}
		}
		if pausedAt != nil {
			res.Paused, res.PausedAt = true, pausedAt
			return nil
		}
		if err := c.river.QueuePauseTx(ctx, tx, c.queue, nil); err != nil {
			return fmt.Errorf("river QueuePause: %w", err)
		}
		res.Changed = true
		res.Paused = true
		pausedAt, _, err = riverdb.LockQueue(ctx, tx, c.queue)
		res.PausedAt = pausedAt
		return err
	})
	if err != nil {
		return PauseResult{}, fmt.Errorf("pause queue %s: %w", c.queue, err)
	}
	return res, nil
}

// Resume lets workers fetch jobs of the queue again, through River's
// QueueResume. A queue with no river_queue row is not paused, so resuming
// it changes nothing and is not an error.
func (c *Client) Resume(ctx context.Context) (PauseResult, error) {
	res := PauseResult{Queue: c.queue}
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		pausedAt, found, err := riverdb.LockQueue(ctx, tx, c.queue)
		if err != nil || !found || pausedAt == nil {
			return err
		}
		if err := c.river.QueueResumeTx(ctx, tx, c.queue, nil); err != nil {
			return fmt.Errorf("river QueueResume: %w", err)
		}
		res.Changed = true
		return nil
	})
	if err != nil {
		return PauseResult{}, fmt.Errorf("resume queue %s: %w", c.queue, err)
	}
	return res, nil
}
