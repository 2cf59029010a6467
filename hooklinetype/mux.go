package hooklinetype

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Mux routes events to handlers by source and event type. It is itself a
// Handler: a handler of your own may call it, and tests apply events
// through it (hooklinetest.Apply). The worker routes with the Mux it is
// given, and reads each route's HandlerOpts from it, so cross-cutting
// behaviour (logging, metrics) belongs in a wrapper around each handler
// at registration; a Mux registered inside another runs its events one
// transaction each, whatever its own routes' options.
//
//	mux := hookline.NewMux()
//	mux.RegisterFunc("stripe", "charge.succeeded", onCharge)
//
// The zero Mux is empty and ready to use.
type Mux struct {
	// NotFound handles events that no handler is registered for. Nil, the
	// default, applies them with no effect: providers send many types
	// nobody subscribed to, and retrying them would only fill the queue.
	// Set a handler that returns Permanent to cancel them instead.
	NotFound Handler

	routes map[route]entry
}

type route struct{ source, eventType string }

type entry struct {
	h    Handler
	opts HandlerOpts
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{routes: make(map[route]entry)} }

// Register registers h for events of eventType from source, one
// transaction per event. Registering the same pair twice panics, as it does
// in net/http: it is a wiring mistake that should stop the worker at
// start-up, not silently drop a handler.
func (m *Mux) Register(source, eventType string, h Handler) {
	m.RegisterWith(source, eventType, h, HandlerOpts{})
}

// RegisterWith registers h for events of eventType from source, run as
// opts say. Options that contradict each other (HoldFor without Ordered,
// or negative) panic, as a duplicate does.
func (m *Mux) RegisterWith(source, eventType string, h Handler, opts HandlerOpts) {
	if opts.HoldFor < 0 || opts.HoldFor > 0 && !opts.Ordered {
		panic(fmt.Sprintf("hookline: handler for %s/%s: HoldFor %s needs Ordered, and must not be negative", source, eventType, opts.HoldFor))
	}
	r := route{source, eventType}
	if m.routes == nil {
		m.routes = make(map[route]entry)
	}
	if _, dup := m.routes[r]; dup {
		panic(fmt.Sprintf("hookline: handler for %s/%s registered twice", source, eventType))
	}
	m.routes[r] = entry{h, opts}
}

// RegisterFunc registers f for events of eventType from source.
func (m *Mux) RegisterFunc(source, eventType string, f func(ctx context.Context, tx pgx.Tx, ev Event) error) {
	m.Register(source, eventType, HandlerFunc(f))
}

// Route returns the handler registered for events of eventType from source,
// and its options; ok is false when there is none.
func (m *Mux) Route(source, eventType string) (h Handler, opts HandlerOpts, ok bool) {
	e, ok := m.routes[route{source, eventType}]
	return e.h, e.opts, ok
}

// Handle implements Handler: it runs the handler registered for ev's source
// and type, or NotFound.
func (m *Mux) Handle(ctx context.Context, tx pgx.Tx, ev Event) error {
	if e, ok := m.routes[route{ev.Source, ev.Type}]; ok {
		return e.h.Handle(ctx, tx, ev)
	}
	if m.NotFound != nil {
		return m.NotFound.Handle(ctx, tx, ev)
	}
	return nil
}
