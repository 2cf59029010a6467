package main

import "runtime/debug"

// gcPercent is the receiver's GOGC unless the environment sets the GC's
// variables. Go's default of 100 collects each time the heap doubles; the
// receiver's live heap is small (connections' buffers and the bodies in
// flight) while it allocates kilobytes per request, so at 100 it collects
// many times a second and the collector took about a tenth of its CPU. At
// 400, the same load costs 12-20% less CPU per event (docs/BENCHMARKS.md,
// "CPU per event, second round").
const gcPercent = 400

// minMemoryLimit is the least soft memory limit the receiver sets for
// itself.
const minMemoryLimit = 128 << 20

// gcSettings returns the GC percent and soft memory limit the receiver
// should run with, or (-1, -1) when the environment sets GOGC or
// GOMEMLIMIT: whoever set one chose the collector's behaviour (the runtime
// has read it), and gets no other setting of ours beside it.
//
// A GC percent of 400 lets the heap grow to five times what is live
// before a collection. The soft limit bounds that growth: as the heap
// nears it, the collector runs sooner. Under a steady load the live heap
// is far below it and the percent saves its CPU; under a flood that fills
// the body budget (MAX_BODY_BYTES_IN_FLIGHT, the bulk of what can be live)
// the limit, twice the budget and at least minMemoryLimit, makes the
// collector work harder than GOGC=100 would, for a heap that stays bounded.
// A deployment with a hard memory limit sets GOMEMLIMIT below it instead,
// as the deploy files do, and keeps Go's GOGC unless it sets that too.
func gcSettings(getenv func(string) string, bodyBytesInFlight int64) (percent int, limit int64) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return -1, -1
	}
	return gcPercent, max(2*bodyBytesInFlight, minMemoryLimit)
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
