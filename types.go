package hookline

import "github.com/hookline/hookline/hooklinetype"

// The types a handler works with. They are defined in hooklinetype, which
// Hookline's internal packages share, and are the same types under these
// names.

// Event is a stored webhook event, as a handler reads it: its source, the
// sender's event id, type and API version, the exact payload, the kept
// headers and when it was received. See hooklinetype.Event.
type Event = hooklinetype.Event

// Handler applies the business effect of one event, writing through the
// transaction it is given, which also marks the event applied. See
// hooklinetype.Handler.
type Handler = hooklinetype.Handler

// HandlerFunc adapts a function to a Handler.
type HandlerFunc = hooklinetype.HandlerFunc

// BatchHandler is a Handler that can apply a group's events at once. See
// hooklinetype.BatchHandler.
type BatchHandler = hooklinetype.BatchHandler

// HandlerOpts say how the worker runs a handler's events, such as in
// groups that share a transaction. See hooklinetype.HandlerOpts.
type HandlerOpts = hooklinetype.HandlerOpts

// Mux routes events to handlers by source and event type. It is itself a
// Handler, and its NotFound decides what happens to events no handler is
// registered for. See hooklinetype.Mux.
type Mux = hooklinetype.Mux

// JobArgs are the args of the River job that applies one stored event. See
// hooklinetype.JobArgs.
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
