package main

import "runtime/debug"

// gcPercent is the receiver's GOGC unless the environment sets one. Go's
// default of 100 collects each time the heap doubles; the receiver's live
// heap is small (connections' buffers and the bodies in flight) while it
// allocates tens of kilobytes per request, so at 100 it collects many times
// a second and the collector took about a tenth of its CPU. At 400, the same
// load costs 15-20% less CPU per event (docs/BENCHMARKS.md, "CPU per event").
const gcPercent = 400

// minMemoryLimit is the least soft memory limit the receiver sets for
// itself when GOMEMLIMIT is not set.
const minMemoryLimit = 128 << 20

// gcSettings returns the GC percent and soft memory limit the receiver
// should run with, or -1 for a setting the environment already makes
// (GOGC, GOMEMLIMIT: the runtime has read them).
//
// A higher GC percent lets the heap grow to five times what is live
// before a collection. The soft limit keeps that growth bounded: as the
// heap nears it, the collector runs sooner, so the percent spends memory
// only while the receiver is far below it (as it is under a steady load),
// and a busy receiver's heap stays where GOGC=100 would have kept it. The
// limit is twice the body budget (MAX_BODY_BYTES_IN_FLIGHT, the bulk of
// what can be live under a flood), and at least minMemoryLimit; a
// deployment with a hard memory limit sets GOMEMLIMIT below it instead, as
// the deploy files do.
func gcSettings(getenv func(string) string, bodyBytesInFlight int64) (percent int, limit int64) {
	percent, limit = -1, -1
	if getenv("GOGC") == "" {
		percent = gcPercent
	}
	if getenv("GOMEMLIMIT") == "" {
		limit = max(2*bodyBytesInFlight, minMemoryLimit)
	}
	return percent, limit
}

// applyGC sets what gcSettings returns.
func applyGC(getenv func(string) string, bodyBytesInFlight int64) {
	percent, limit := gcSettings(getenv, bodyBytesInFlight)
	if percent >= 0 {
		debug.SetGCPercent(percent)
	}
	if limit >= 0 {
		debug.SetMemoryLimit(limit)
	}
}
