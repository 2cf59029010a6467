package dispatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/hookline/hookline/internal/inbox"
)

// Handler applies the business effect of one event.
//
// Handle runs inside tx, the transaction that also marks the event applied.
// Write the effect through tx and it commits exactly once with that mark;
// on any error everything rolls back and the job is retried with backoff. Work done outside tx (an HTTP call, an email) is not
// covered: it may run again on a retry, so make it idempotent, for example
// by passing ev.Source+"/"+ev.EventID downstream as an idempotency key.
type Handler interface {
	Handle(ctx context.Context, tx pgx.Tx, ev inbox.Event) error
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
	HandleBatch(ctx context.Context, tx pgx.Tx, evs []inbox.Event) error
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, tx pgx.Tx, ev inbox.Event) error

// Handle implements Handler.
func (f HandlerFunc) Handle(ctx context.Context, tx pgx.Tx, ev inbox.Event) error {
	return f(ctx, tx, ev)
}

// HandlerOpts say how the worker runs a handler's events. The zero value is
// one transaction per event.
type HandlerOpts struct {
	// Group lets the worker apply this handler's events in a transaction
	// shared with other grouped events fetched at about the same time
	// (WORKER_GROUP_MAX_SIZE, WORKER_GROUP_MAX_WAIT): one statement locks
	// their inbox rows, the handlers run in turn, one statement marks them
	// applied, and one commit makes all their effects durable. It is what
	// lets a worker keep up with the receiver.
	//
	// Set it only for handlers that write through tx and return quickly.
	// A handler that waits on the network would hold every group-mate's
	// row locks and connection while it waits. A handler's error never
	// fails its group-mates: the group is rolled back and its events are
	// applied one transaction each.
	Group bool
}

// Mux routes events to handlers by source and event type.
//
//	mux := dispatch.NewMux()
//	mux.HandleFunc("stripe", "charge.succeeded", onCharge)
type Mux struct {
	routes map[route]entry
}

type route struct{ source, eventType string }

type entry struct {
	h    Handler
	opts HandlerOpts
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{routes: make(map[route]entry)} }

// Handle registers h for events of eventType from source, one transaction
// per event. Registering the same pair twice panics, as it does in
// net/http: it is a wiring mistake that should stop the worker at start-up,
// not silently drop a handler.
func (m *Mux) Handle(source, eventType string, h Handler) {
	m.HandleWith(source, eventType, h, HandlerOpts{})
}

// HandleWith registers h for events of eventType from source, run as opts
// say.
func (m *Mux) HandleWith(source, eventType string, h Handler, opts HandlerOpts) {
	r := route{source, eventType}
	if _, dup := m.routes[r]; dup {
		panic(fmt.Sprintf("dispatch: handler for %s/%s registered twice", source, eventType))
	}
	m.routes[r] = entry{h, opts}
}

// HandleFunc registers f for events of eventType from source.
func (m *Mux) HandleFunc(source, eventType string, f func(ctx context.Context, tx pgx.Tx, ev inbox.Event) error) {
	m.Handle(source, eventType, HandlerFunc(f))
}

// Lookup returns the handler for an event, if one is registered.
func (m *Mux) Lookup(source, eventType string) (Handler, bool) {
	e, ok := m.routes[route{source, eventType}]
	return e.h, ok
}

// Options returns the options the handler for an event was registered
// with; the zero value when none is registered.
func (m *Mux) Options(source, eventType string) HandlerOpts {
	return m.routes[route{source, eventType}].opts
}

// permanentError marks an error that no retry can fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent wraps err to say that retrying the event cannot help, for
// example because its payload lacks a field the handler needs. The job is
// cancelled at once instead of being retried for weeks; it stays visible in
// River as cancelled, with the error recorded.
func Permanent(err error) error { return &permanentError{err: err} }

// IsPermanent reports whether err, or an error it wraps, came from Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
