package hooklinetype

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Handler applies the business effect of one event.
//
// Handle runs inside tx, the transaction that also marks the event applied.
// Write the effect through tx and it commits exactly once with that mark;
// on any error everything rolls back and the event is retried with
// backoff, unless the error is Permanent. Work done outside tx (an HTTP
// call, an email) is not covered: it may run again on a retry, so make it
// idempotent, for example by passing ev.Source+"/"+ev.EventID downstream as
// an idempotency key.
type Handler interface {
	Handle(ctx context.Context, tx pgx.Tx, ev Event) error
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, tx pgx.Tx, ev Event) error

// Handle implements Handler.
func (f HandlerFunc) Handle(ctx context.Context, tx pgx.Tx, ev Event) error {
	return f(ctx, tx, ev)
}

// BatchHandler is a Handler that can also apply several events at once. In
// a group (HandlerOpts.Group), the worker gives HandleBatch all the group's
// events for this handler, in the order they were stored, so that it can
// apply them with one statement or one pipelined batch rather than a round
// trip each: the example handlers add up their amounts per account and
// write every balance with one upsert. HandleBatch must have the same
// effect as Handle on each event in turn. If it fails, the group is rolled
// back and each event is applied alone through Handle, so an error need not
// say which event caused it.
type BatchHandler interface {
	Handler
	HandleBatch(ctx context.Context, tx pgx.Tx, evs []Event) error
}

// HandlerOpts say how the worker runs a handler's events. The zero value is
// one transaction per event.
type HandlerOpts struct {
	// Group lets the worker apply this handler's events in a transaction
	// shared with other grouped events fetched at about the same time
	// (WORKER_GROUP_MAX_SIZE, WORKER_GROUP_MAX_WAIT): one statement claims
	// their inbox rows, the handlers run in turn, and one commit makes all
	// their effects durable. It is what lets a worker keep up with the
	// receiver.
	//
	// Set it only for handlers that write through tx and return quickly.
	// A handler that waits on the network would hold every group-mate's
	// row locks and connection while it waits. A handler's error never
	// fails its group-mates: the group is rolled back and its events are
	// applied one transaction each.
	Group bool
	// Ordered applies the events of one object (Event.Object) one at a
	// time and newest-wins, across every worker process:
	//
	//   - Never at once: the handler's transaction first takes a lock on
	//     the event's source and object, held until it commits, so two
	//     events of one object never run their handlers at the same time.
	//     Events of different objects still run in parallel.
	//   - Stale events are skipped: an event older than the newest one
	//     already applied for its object (the object's high-water mark)
	//     completes without running the handler. It is recorded as stale
	//     (hookctl events get), logged with both event ids, and counted
	//     (hookline_worker_stale_events_total).
	//   - Older means an earlier Event.Time, or, at equal times, a smaller
	//     EventID (byte order): a deterministic rule, so every worker
	//     agrees which of two same-second events is the newer.
	//   - The mark is written in the handler's own transaction, so it is
	//     exactly as durable as the effect.
	//   - In a group (Group also set), one object's events run in
	//     event-time order, and each is checked against the mark as the
	//     ones before it left it.
	//   - hookctl replay of an older event runs the handler anyway, as the
	//     operator asked, and logs that it did; the mark keeps the newest.
	//
	// Events without an object key (the source locates none, or the body
	// lacks it) run as if Ordered were not set. A handler that must apply
	// every event, in order, rather than skip the older ones, can ask for
	// HoldFor, or is better off reading the object's current state from
	// the provider's API when it runs (docs/RUNBOOK.md).
	Ordered bool
	// HoldFor, with Ordered, holds an event back while an older event of
	// its object is stored but not yet applied (queued, running or
	// retrying), for at most this long after the event was received: its
	// job is snoozed (river.JobSnooze, which uses no attempt) and tried
	// again, so that the older event applies first instead of turning
	// stale. Past the bound the event runs, and the older one, when it
	// comes, is stale. An older event that will never apply (its job
	// cancelled or discarded) holds its newer ones for the whole bound.
	// Only stored events can be waited for: one the provider has not sent
	// yet is not known. Zero, the default, holds nothing. A replay is
	// never held.
	HoldFor time.Duration
}
