// Package ingest stores a verified event and enqueues its processing, both
// in one Postgres transaction: after a commit the event is durable and will
// be processed; after a failure, neither happened and the sender retries.
package ingest

import (
	"context"
	"fmt"
	"time"

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
	span, metadata := startCommit(ctx, time.Now(), 1)
	var outcome Outcome
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		st, err := StoreTraced(ctx, tx, s.river, ev, metadata)
		if err != nil {
			return err
		}
		outcome = st.Outcome
		if outcome == Accepted {
			return nil
		}
		return inbox.RecordDuplicates(ctx, tx, map[string]int{ev.Source: 1})
	})
	endCommit(span, outcome, err)
	if err != nil {
		return 0, fmt.Errorf("ingest event %s/%s: %w", ev.Source, ev.EventID, err)
	}
	return outcome, nil
}

// Stored is what Store did with an event: its outcome and, when Accepted,
// the new inbox row and the job that will process it.
type Stored struct {
	Outcome        Outcome
	InboxID, JobID int64
}

// Store is the receiver's store-and-enqueue step, inside the caller's
// transaction tx, for callers that write more in it (catch-up writes an
// audit row beside each event it recovers). It stores ev and enqueues its
// job with rc unless ev is a duplicate, by id or by replay key. Nothing is
// durable until the caller commits; after an error the caller must roll
// back (River's calls leave no savepoint to return to). It does not count
// duplicates (inbox.RecordDuplicates): that is the caller's choice, since
// a delivery counts as one and a catch-up's re-listing does not. A caller
// storing several events in one transaction stores them in key order, as
// inbox.InsertMany asks.
func Store(ctx context.Context, tx pgx.Tx, rc *river.Client[pgx.Tx], ev inbox.NewEvent) (Stored, error) {
	return StoreTraced(ctx, tx, rc, ev, nil)
}

// StoreTraced is Store, with the trace context to store with the job
// (tracing.JobMetadata; nil for none), so that the worker's spans join
// that trace.
func StoreTraced(ctx context.Context, tx pgx.Tx, rc *river.Client[pgx.Tx], ev inbox.NewEvent, metadata []byte) (Stored, error) {
	if err := inbox.LockReplayKeys(ctx, tx, []inbox.NewEvent{ev}); err != nil {
		return Stored{}, err
	}
	row, inserted, err := inbox.Insert(ctx, tx, ev)
	if err != nil {
		return Stored{}, err
	}
	if !inserted {
		if ev.ReplayKey != nil {
			k := inbox.Key{Source: ev.Source, EventID: ev.EventID}
			found, err := inbox.Existing(ctx, tx, []inbox.Key{k})
			if err != nil {
				return Stored{}, err
			}
			if !found[k] {
				return Stored{Outcome: DuplicateBody}, nil
			}
		}
		return Stored{Outcome: Duplicate}, nil
	}
	var md map[inbox.Key][]byte
	if metadata != nil {
		md = map[inbox.Key][]byte{row.Key: metadata}
	}
	jobs, err := Enqueue(ctx, rc, tx, []inbox.Inserted{row}, md)
	if err != nil {
		return Stored{}, err
	}
	return Stored{Outcome: Accepted, InboxID: row.ID, JobID: jobs[0]}, nil
}

// release calls ev.Release, if set: the ingester holds ev's payload no
// longer.
func release(ev inbox.NewEvent) {
	if ev.Release != nil {
		ev.Release()
	}
}
