// Package ingest stores a verified event and enqueues its processing, both
// in one Postgres transaction: after a commit the event is durable and will
// be processed; after a failure, neither happened and the sender retries.
package ingest

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/hookline/hookline/internal/inbox"
)

// Outcome is what happened to an ingested event.
type Outcome int

// The outcomes of a successful Ingest.
const (
	// Accepted means the event was new: it is now stored and enqueued.
	Accepted Outcome = iota + 1
	// Duplicate means the event was stored before; nothing was written.
	Duplicate
	// DuplicateBody means the event's id is new but its body was stored
	// before under another id, for a source with a replay guard: a
	// captured delivery sent again, or a provider sending one body twice.
	// Nothing was written.
	DuplicateBody
)

// String returns the outcome as used in logs and metrics.
func (o Outcome) String() string {
	switch o {
	case Accepted:
		return "accepted"
	case Duplicate:
		return "duplicate"
	case DuplicateBody:
		return "duplicate_body"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Single ingests each event in a transaction of its own.
type Single struct {
	pool  *pgxpool.Pool
	river *river.Client[pgx.Tx]
}

// NewSingle returns an ingester that writes through pool and enqueues with
// rc, which may be an insert-only River client that is never started. rc
// should have the JobIDs middleware (see Enqueue).
func NewSingle(pool *pgxpool.Pool, rc *river.Client[pgx.Tx]) *Single {
	return &Single{pool: pool, river: rc}
}

// Ingest stores ev and enqueues its job unless ev is a duplicate. It returns
// only after the transaction has committed; any error means nothing of ev
// was stored.
func (s *Single) Ingest(ctx context.Context, ev inbox.NewEvent) (Outcome, error) {
	defer release(ev)
	outcome := Duplicate
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := inbox.LockReplayKeys(ctx, tx, []inbox.NewEvent{ev}); err != nil {
			return err
		}
		row, inserted, err := inbox.Insert(ctx, tx, ev)
		if err != nil {
			return err
		}
		if !inserted {
			if ev.ReplayKey != nil {
				k := inbox.Key{Source: ev.Source, EventID: ev.EventID}
				found, err := inbox.Existing(ctx, tx, []inbox.Key{k})
				if err != nil {
					return err
				}
				if !found[k] {
					outcome = DuplicateBody
				}
			}
			return inbox.RecordDuplicates(ctx, tx, map[string]int{ev.Source: 1})
		}
		if err := Enqueue(ctx, s.river, tx, []inbox.Inserted{row}); err != nil {
			return err
		}
		outcome = Accepted
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("ingest event %s/%s: %w", ev.Source, ev.EventID, err)
	}
	return outcome, nil
}

// release calls ev.Release, if set: the ingester holds ev's payload no
// longer.
func release(ev inbox.NewEvent) {
	if ev.Release != nil {
		ev.Release()
	}
}
