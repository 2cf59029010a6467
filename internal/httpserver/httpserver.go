// Package httpserver builds the HTTP servers of Hookline's processes, the
// receiver's and the worker's admin server alike, with timeouts and a
// header limit, so that slow or idle clients cannot hold connections and
// memory indefinitely.
package httpserver

import (
	"cmp"
	"net/http"
	"time"
)

// Timeouts bound how long a client may take over each part of a request,
// and how long an idle connection may stay open.
type Timeouts struct {
	// ReadHeader is the time allowed to read a request's headers.
	ReadHeader time.Duration
	// Read is the time allowed to read a whole request, body included.
	Read time.Duration
	// Write is the time allowed from the end of the headers to the end of
	// the answer; it must cover the body, the handler's work and the
	// answer.
	Write time.Duration
	// Idle is how long a keep-alive connection may wait for its next
	// request. Without it, Go keeps idle connections for as long as the
	// read timeout allows, which is forever when that is unset too.
	Idle time.Duration
}

// DefaultTimeouts returns the defaults of every Hookline server
// (RECEIVER_*_TIMEOUT, WORKER_ADMIN_IDLE_TIMEOUT).
func DefaultTimeouts() Timeouts {
	return Timeouts{ReadHeader: 5 * time.Second, Read: 30 * time.Second, Write: 30 * time.Second, Idle: 120 * time.Second}
}

// MaxHeaderBytes is the largest request header block a server reads;
// larger ones get 431 Request Header Fields Too Large.
const MaxHeaderBytes = 64 << 10

// New returns a server for h on addr with the timeouts t, zero fields
// taking DefaultTimeouts, and a header limit of MaxHeaderBytes.
func New(addr string, h http.Handler, t Timeouts) *http.Server {
	def := DefaultTimeouts()
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: cmp.Or(max(0, t.ReadHeader), def.ReadHeader),
		ReadTimeout:       cmp.Or(max(0, t.Read), def.Read),
		WriteTimeout:      cmp.Or(max(0, t.Write), def.Write),
		IdleTimeout:       cmp.Or(max(0, t.Idle), def.Idle),
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}
