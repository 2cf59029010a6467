package receiver

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
)

// errBudget is returned when holding a body would pass the receiver's
// budget for body bytes in flight.
var errBudget = errors.New("receiver: body budget exhausted")

// firstChunk is the buffer a body starts with. It is allocated before any
// byte has arrived, so it must be small: a client can open many connections
// and declare a large Content-Length on each without sending anything.
const firstChunk = 512

// BodyBudget bounds the body bytes all requests hold at once. A request
// reserves memory as its body arrives, never for what it declares, and it
// is returned when the body is no longer held: when the request ends, or,
// once stored, when the ingester lets go of it (inbox.NewEvent.Release).
// It is safe for concurrent use.
type BodyBudget struct {
	limit int64
	held  atomic.Int64
}

// NewBodyBudget returns a budget of limit bytes; limit <= 0 means none.
func NewBodyBudget(limit int64) *BodyBudget { return &BodyBudget{limit: limit} }

// reserve takes n bytes of the budget, or none and false if they are not
// all available.
func (b *BodyBudget) reserve(n int64) bool {
	if b == nil || b.limit <= 0 {
		return true
	}
	// Compare and swap, so that a request that does not fit never holds
	// bytes, even for an instant, that another that fits is then refused.
	for {
		held := b.held.Load()
		if held+n > b.limit {
			return false
		}
		if b.held.CompareAndSwap(held, held+n) {
			return true
		}
	}
}

func (b *BodyBudget) release(n int64) {
	if b != nil && b.limit > 0 {
		b.held.Add(-n)
	}
}

// Held returns the body bytes reserved now, for metrics and tests.
func (b *BodyBudget) Held() int64 {
	if b == nil {
		return 0
	}
	return b.held.Load()
}

// readBody reads at most limit bytes of the request body. A declared
// Content-Length over the limit fails before reading anything; a chunked
// body fails as soon as it passes the limit.
//
// Memory follows the bytes received, not those declared: the buffer starts
// at firstChunk and doubles only as it fills, up to the declared length,
// and every growth is reserved from budget first. So a client that declares
// a megabyte and sends nothing costs firstChunk bytes. Call release once
// the body is no longer needed, whatever the error.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, budget *BodyBudget) (body []byte, release func(), err error) {
	var reserved int64
	release = func() { budget.release(reserved) }
	if r.ContentLength > limit {
		return nil, release, &http.MaxBytesError{Limit: limit}
	}
	// Past the declared length, the body reader returns EOF; without one,
	// the limit bounds the growth, and one byte more trips MaxBytesReader.
	ceiling := limit + 1
	if r.ContentLength >= 0 {
		ceiling = r.ContentLength + 1 // +1 so that the read that sees EOF has room
	}
	grow := func(buf []byte) ([]byte, error) {
		n := min(ceiling, max(firstChunk, 2*int64(cap(buf))))
		if n <= int64(cap(buf)) { // cannot happen: the reader stops first
			return buf, &http.MaxBytesError{Limit: limit}
		}
		if !budget.reserve(n - int64(cap(buf))) {
			return buf, errBudget
		}
		reserved += n - int64(cap(buf))
		next := make([]byte, len(buf), n)
		copy(next, buf)
		return next, nil
	}
	buf, err := grow(nil)
	if err != nil {
		return nil, release, err
	}
	src := http.MaxBytesReader(w, r.Body, limit)
	for {
		if len(buf) == cap(buf) {
			if buf, err = grow(buf); err != nil {
				return nil, release, err
			}
		}
		n, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, release, nil
		}
		if err != nil {
			return nil, release, err
		}
	}
}

// MaxBodyLimit is the largest body limit the receiver accepts for
// MAX_BODY_BYTES or a source's max_body_bytes. Webhook bodies are
// kilobytes; GitHub, the largest sender, caps payloads at 25 MB. A limit far
// above that is a typo, and a body that large would take the whole budget.
const MaxBodyLimit = 32 << 20
