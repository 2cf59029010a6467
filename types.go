package hookline

import "github.com/hookline/hookline/hooklinetype"

// The types a handler works with. They are defined in package hooklinetype,
// which Hookline's internal packages share without an import cycle, and
// are the same types under these names: `go doc
// github.com/hookline/hookline/hooklinetype` lists their fields and
// methods in full.

// Event is a stored webhook event, as a handler reads it. Its fields:
// InboxID (the inbox row), Source (the source's name, as in
// /api/webhooks/<source>), EventID (the sender's id: with Source, the
// dedup key), Type, APIVersion (Stripe's api_version), Payload (the body
// exactly as received and verified), Headers (those the source keeps),
// ReceivedAt, Object (the key of the object the event is about, such as
// Stripe's data.object.id; empty if the source locates none) and Time (the
// provider's event time, such as Stripe's created, else ReceivedAt).
type Event = hooklinetype.Event

// Handler applies the business effect of one event:
//
//	Handle(ctx context.Context, tx pgx.Tx, ev Event) error
//
// tx is the transaction that also marks the event applied: write the
// effect through it and it commits exactly once with that mark. An error
// rolls everything back and the event is retried with backoff, unless it
// is Permanent. Work outside tx may run again on a retry.
type Handler = hooklinetype.Handler

// HandlerFunc adapts a function to a Handler.
type HandlerFunc = hooklinetype.HandlerFunc

// BatchHandler is a Handler that can also apply a group's events at once,
// with one statement:
//
//	HandleBatch(ctx context.Context, tx pgx.Tx, evs []Event) error
//
// It must have the effect of Handle on each event in turn; if it fails,
// the worker applies each event alone through Handle.
type BatchHandler = hooklinetype.BatchHandler

// HandlerOpts say how the worker runs a handler's events; the zero value is
// one transaction per event. Ordered: true runs one object's events
// (Event.Object) one at a time across workers and skips, as stale, an
// event older than the newest applied for its object; HoldFor, with it,
// snoozes a newer event for a while when an older one of its object is
// still pending. Group: true lets the worker apply them in a
// transaction shared with other grouped events fetched at about the same
// time (WORKER_GROUP_MAX_SIZE, WORKER_GROUP_MAX_WAIT); set it only for
// handlers that write through tx and never wait on the network.
type HandlerOpts = hooklinetype.HandlerOpts

// Mux routes events to handlers by source and event type:
//
//	mux.Register(source, eventType, h)
//	mux.RegisterWith(source, eventType, h, HandlerOpts{Group: true})
//	mux.RegisterFunc(source, eventType, func(ctx, tx, ev) error { … })
//	h, opts, ok := mux.Route(source, eventType)
//
// Registering a pair twice panics. A Mux is itself a Handler (Handle runs
// the registered handler), and its NotFound field handles events no
// handler is registered for: nil, the default, completes them without
// effect; set one that returns Permanent to cancel them instead.
type Mux = hooklinetype.Mux

// JobArgs are the args of the River job that applies one stored event, of
// kind JobKind on queue Queue: InboxID (the inbox row), Source, EventID,
// Type, and Replay (set by hookctl replay only). They refer to the inbox
// row rather than carry the payload. Use them to find an event's jobs
// (River UI, river.Client.JobList) or, with hooklinetest.Enqueue, to
// enqueue events in tests.
type JobArgs = hooklinetype.JobArgs

// Queue is the River queue that carries event jobs.
const Queue = hooklinetype.Queue

// JobKind is the River job kind of JobArgs.
const JobKind = hooklinetype.JobKind

// NewMux returns an empty Mux.
func NewMux() *Mux { return hooklinetype.NewMux() }

// Permanent wraps err to say that retrying the event cannot help: its job
// is cancelled at once rather than retried for weeks.
func Permanent(err error) error { return hooklinetype.Permanent(err) }

// IsPermanent reports whether err, or an error it wraps, came from
// Permanent.
func IsPermanent(err error) bool { return hooklinetype.IsPermanent(err) }
