package ledgertest

import (
	"encoding/json"
	"io"
	"net/http"
	"path"
	"sync"
	"time"
)

// Attempt is one delivery attempt as the client saw it on the wire: when it
// began (before a connection was even chosen), when the answer's status
// line arrived or the attempt failed, and what came back.
type Attempt struct {
	// Target is the receiver's host:port, and Key the event's source/id
	// read from the request (empty when the body has no string "id").
	Target, Key string
	// Start is just before the request was handed to the transport; End
	// is when RoundTrip returned: the status line arrived, or it failed.
	Start, End time.Time
	// Status is the HTTP status, 0 when no answer came back (Err is set).
	Status int
	Err    error
	// RetryAfter is the Retry-After header of the answer, if any.
	RetryAfter string
}

// Acked reports whether the attempt got a 2xx.
func (a Attempt) Acked() bool { return a.Err == nil && a.Status >= 200 && a.Status < 300 }

// Observer records every attempt a Sender makes, with its timestamps, and
// counts the attempts in flight to each receiver, so that a test can tell
// what was answered inside a time window (an outage) or wait until a
// receiver it took out of the targets has no request left (a drain). It is
// safe for concurrent use.
type Observer struct {
	next http.RoundTripper

	mu       sync.Mutex
	attempts []Attempt
	acks     int
}

// Observe wraps s's HTTP transport with a new Observer and returns it. Call
// it before the first delivery.
func Observe(s *Sender) *Observer {
	next := s.Client.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	o := &Observer{next: next}
	s.Client.Transport = o
	return o
}

// RoundTrip implements http.RoundTripper.
func (o *Observer) RoundTrip(req *http.Request) (*http.Response, error) {
	a := Attempt{Target: req.URL.Host, Key: requestKey(req), Start: time.Now()}
	resp, err := o.next.RoundTrip(req)
	a.End = time.Now()
	if err != nil {
		a.Err = err
	} else {
		a.Status = resp.StatusCode
		a.RetryAfter = resp.Header.Get("Retry-After")
	}
	o.mu.Lock()
	o.attempts = append(o.attempts, a)
	if a.Acked() {
		o.acks++
	}
	o.mu.Unlock()
	return resp, err
}

// Attempts returns a copy of every attempt finished so far, in the order
// they finished.
func (o *Observer) Attempts() []Attempt {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Attempt(nil), o.attempts...)
}

// Within returns the attempts that began at or after from and ended at or
// before to: those that happened entirely inside the window.
func (o *Observer) Within(from, to time.Time) []Attempt {
	var out []Attempt
	for _, a := range o.Attempts() {
		if !a.Start.Before(from) && !a.End.After(to) {
			out = append(out, a)
		}
	}
	return out
}

// Acks returns how many attempts got a 2xx so far, duplicates included:
// cheap enough to poll while a load runs.
func (o *Observer) Acks() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.acks
}

// requestKey reads source/id from a delivery built by Event.Request,
// without consuming the body the transport is about to send.
func requestKey(req *http.Request) string {
	if req.GetBody == nil {
		return ""
	}
	body, err := req.GetBody()
	if err != nil {
		return ""
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		return ""
	}
	var env struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &env); err != nil || env.ID == "" {
		return ""
	}
	return path.Base(req.URL.Path) + "/" + env.ID
}

// KindOf returns the kind of the event with key (source/id, as in
// Attempt.Key), if it was ever sent: to tell the refusals a test expects
// (tampered, stale) from those it does not.
func (l *Ledger) KindOf(key string) (Kind, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.events[key]
	if !ok {
		return 0, false
	}
	return r.ev.Kind, true
}
