package ops

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/riverdb"
)

// DefaultKeepKeysFor is how long prune keeps an event's idempotency key
// (its inbox row) by default.
const DefaultKeepKeysFor = 30 * 24 * time.Hour

// PruneOpts configures Prune.
type PruneOpts struct {
	// OlderThan: the payload and headers of events processed longer ago
	// than this are emptied.
	OlderThan time.Duration
	// KeepKeysFor: events received and processed longer ago than this are
	// deleted, key and all. It must be longer than OlderThan, and longer
	// than any provider's retry window (Stripe retries for 3 days): a
	// redelivery of a deleted event is a new event, and is applied again.
	KeepKeysFor time.Duration
	// DryRun counts what would change, and changes nothing.
	DryRun bool
	// BatchSize is the rows changed per transaction; 1000 if zero.
	BatchSize int
}

// Validate reports whether the options are usable.
func (o PruneOpts) Validate() error {
	if o.OlderThan <= 0 {
		return fmt.Errorf("older-than must be positive, not %s", o.OlderThan)
	}
	if o.KeepKeysFor <= o.OlderThan {
		return fmt.Errorf("keep-keys-for (%s) must be longer than older-than (%s): an event's key must outlive its payload", o.KeepKeysFor, o.OlderThan)
	}
	return nil
}

// PruneResult reports what Prune did, or would do in a dry run.
type PruneResult struct {
	DryRun bool `json:"dry_run"`
	// PayloadCutoff and KeyCutoff are now - OlderThan and now -
	// KeepKeysFor, by the database's clock.
	PayloadCutoff time.Time `json:"payload_cutoff"`
	KeyCutoff     time.Time `json:"key_cutoff"`
	// PayloadsPruned counts rows whose payload and headers were emptied,
	// and RowsDeleted rows deleted with their key.
	PayloadsPruned int64 `json:"payloads_pruned"`
	RowsDeleted    int64 `json:"rows_deleted"`
}

// Prune applies the inbox's retention, in two steps:
//
//  1. It deletes the rows received and processed before the key cutoff
//     (now - KeepKeysFor). Their idempotency key goes with them.
//  2. It empties the payload and headers of the rows processed before the
//     payload cutoff (now - OlderThan) and sets their pruned_at. Their key
//     stays, so that a late redelivery is still a duplicate.
//
// It never touches an unprocessed row, nor one with a job that will still
// run (a replay waiting for a worker). It works in batches of BatchSize
// rows, each in its own transaction (a savepoint if db is a pgx.Tx), and
// skips rows that another transaction holds (a worker replaying them): the
// next run takes them. Each batch locks its rows before checking for jobs,
// in a new statement, so a replay that committed before the lock is seen,
// and one that comes after sees pruned_at and refuses.
//
// db is a pool, or a transaction such as a River periodic job's.
func Prune(ctx context.Context, db DB, opts PruneOpts) (PruneResult, error) {
	if err := opts.Validate(); err != nil {
		return PruneResult{}, fmt.Errorf("prune: %w", err)
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 1000
	}
	res := PruneResult{DryRun: opts.DryRun}
	var now time.Time
	if err := db.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		return res, fmt.Errorf("prune: read the database clock: %w", err)
	}
	res.PayloadCutoff, res.KeyCutoff = now.Add(-opts.OlderThan), now.Add(-opts.KeepKeysFor)
	describe := fmt.Sprintf("prune payloads processed before %s, keys before %s",
		res.PayloadCutoff.UTC().Format(time.RFC3339), res.KeyCutoff.UTC().Format(time.RFC3339))

	if opts.DryRun {
		err := db.QueryRow(ctx, `
			SELECT count(*) FILTER (WHERE e.received_at < $3 AND e.processed_at < $3),
			       count(*) FILTER (WHERE NOT (e.received_at < $3 AND e.processed_at < $3) AND e.pruned_at IS NULL)
			FROM inbox_events e
			WHERE e.received_at < $2 AND e.processed_at < $2 AND NOT `+riverdb.HasLiveJob("$1", "$4"),
			hooklinetype.JobKind, res.PayloadCutoff, res.KeyCutoff, liveStates,
		).Scan(&res.RowsDeleted, &res.PayloadsPruned)
		if err != nil {
			return res, fmt.Errorf("%s (dry run): %w", describe, err)
		}
		return res, nil
	}

	var err error
	res.RowsDeleted, err = inBatches(ctx, db, opts.BatchSize, res.KeyCutoff,
		`e.received_at < $2 AND e.processed_at < $2`,
		`DELETE FROM inbox_events e WHERE e.id = ANY($2) AND NOT `+riverdb.HasLiveJob("$1", "$3"))
	if err != nil {
		return res, fmt.Errorf("%s: delete rows: %w", describe, err)
	}
	res.PayloadsPruned, err = inBatches(ctx, db, opts.BatchSize, res.PayloadCutoff,
		`e.received_at < $2 AND e.processed_at < $2 AND e.pruned_at IS NULL`,
		`UPDATE inbox_events e SET payload = ''::bytea, headers = '{}'::jsonb, pruned_at = now()
		 WHERE e.id = ANY($2) AND NOT `+riverdb.HasLiveJob("$1", "$3"))
	if err != nil {
		return res, fmt.Errorf("%s: empty payloads: %w", describe, err)
	}
	return res, nil
}

// inBatches locks, batch by batch in id order, the rows of inbox_events e
// that match pick (a condition whose $2 is cutoff), and runs act on each
// batch in the same transaction, with $1 bound to hooklinetype.JobKind, $2 to the
// batch's ids and $3 to liveStates. It returns the rows act changed.
//
// received_at is in every pick: processed_at is never earlier than it, and
// its BRIN index lets Postgres skip recent rows.
func inBatches(ctx context.Context, db DB, size int, cutoff time.Time, pick, act string) (int64, error) {
	var total, after int64
	for {
		var locked int
		var changed, last int64
		err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `
				SELECT e.id FROM inbox_events e
				WHERE e.id > $1 AND `+pick+`
				ORDER BY e.id LIMIT $3
				FOR UPDATE SKIP LOCKED`, after, cutoff, size)
			if err != nil {
				return fmt.Errorf("lock rows after id %d: %w", after, err)
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				return fmt.Errorf("lock rows after id %d: %w", after, err)
			}
			locked = len(ids)
			if locked == 0 {
				return nil
			}
			tag, err := tx.Exec(ctx, act, hooklinetype.JobKind, ids, liveStates)
			if err != nil {
				return fmt.Errorf("rows %d to %d: %w", ids[0], ids[len(ids)-1], err)
			}
			changed, last = tag.RowsAffected(), ids[len(ids)-1]
			return nil
		})
		if err != nil {
			return total, err
		}
		total, after = total+changed, last
		if locked < size {
			return total, nil
		}
	}
}
