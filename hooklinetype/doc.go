// Package hooklinetype holds the types that Hookline's public package and
// its internal machinery share: the event a handler reads, the handler
// interfaces, the Mux that routes events to handlers, and the River job
// args of an event. It imports nothing of Hookline's, so that every other
// package can import it without a cycle.
//
// Applications use these types through package hookline, which re-exports
// each of them under the same name.
package hooklinetype
