package ledgertest

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Ledger records events and the answers their deliveries got. It is safe
// for concurrent use.
type Ledger struct {
	mu        sync.Mutex
	events    map[string]*record
	order     []string
	attempts  int
	statuses  map[int]int
	transport int
	latencies []time.Duration // of 2xx answers
}

type record struct {
	ev       Event
	acked    int // 2xx answers
	attempts int
}

// New returns an empty ledger.
func New() *Ledger {
	return &Ledger{events: map[string]*record{}, statuses: map[int]int{}}
}

// Record notes one delivery attempt of ev and its outcome: an HTTP status,
// or err when no answer came back (connection refused, reset, timeout).
func (l *Ledger) Record(ev Event, status int, err error, latency time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.events[ev.Key()]
	if r == nil {
		r = &record{ev: ev}
		l.events[ev.Key()] = r
		l.order = append(l.order, ev.Key())
	}
	r.attempts++
	l.attempts++
	if err != nil {
		l.transport++
		return
	}
	l.statuses[status]++
	if status >= 200 && status < 300 {
		r.acked++
		l.latencies = append(l.latencies, latency)
	}
}

// Sent returns a random event sent so far, for a duplicate delivery.
func (l *Ledger) Sent(rng *rand.Rand) (Event, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.order) == 0 {
		return Event{}, false
	}
	return l.events[l.order[rng.IntN(len(l.order))]].ev, true
}

// Unacked returns the valid events that never got a 2xx, for a last round
// of provider retries.
func (l *Ledger) Unacked() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	for _, k := range l.order {
		if r := l.events[k]; r.ev.Kind == Valid && r.acked == 0 {
			out = append(out, r.ev)
		}
	}
	return out
}

// Sender delivers events to receivers and records every attempt.
type Sender struct {
	Ledger *Ledger
	Client *http.Client

	mu       sync.Mutex
	targets  []string
	next     int
	inFlight map[string]int // by target, from the moment it is picked
}

// NewSender returns a Sender that spreads deliveries over targets, the
// receivers' base URLs, like a load balancer would.
func NewSender(l *Ledger, targets ...string) *Sender {
	return &Sender{
		Ledger:   l,
		Client:   &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}},
		targets:  targets,
		inFlight: map[string]int{},
	}
}

// SetTargets replaces the receivers, as a load balancer does when one is
// drained or a new one becomes ready.
func (s *Sender) SetTargets(targets ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.targets = slices.Clone(targets)
}

// pick chooses the next target and counts a delivery in flight to it
// until done is called.
func (s *Sender) pick() (target string, done func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	target = s.targets[s.next%len(s.targets)]
	s.inFlight[target]++
	return target, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.inFlight[target]--
	}
}

// InFlight returns how many deliveries to target are under way, counted
// from the moment target was picked: after SetTargets has dropped it, zero
// means no delivery can still reach it.
func (s *Sender) InFlight(target string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight[target]
}

// Send makes one delivery attempt of ev and records it. err is non-nil only
// when no HTTP answer came back.
func (s *Sender) Send(ctx context.Context, ev Event) (int, error) {
	target, done := s.pick()
	defer done()
	req, err := ev.Request(target)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := s.Client.Do(req.WithContext(ctx))
	if err != nil {
		// Recorded even when ctx ended it: the request may have reached a
		// receiver whose batch then committed, and Check must know the
		// event was sent to accept it in the inbox.
		s.Ledger.Record(ev, 0, err, time.Since(start))
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	s.Ledger.Record(ev, resp.StatusCode, nil, time.Since(start))
	return resp.StatusCode, nil
}

// Deliver sends ev the way providers do: it retries, with a short capped
// backoff, every answer that is not final (5xx, 429, no answer) until a 2xx,
// a final 4xx, or ctx ends. It reports whether ev was acknowledged.
func (s *Sender) Deliver(ctx context.Context, ev Event) bool {
	backoff := 20 * time.Millisecond
	for {
		status, err := s.Send(ctx, ev)
		switch {
		case err == nil && status >= 200 && status < 300:
			return true
		case err == nil && status >= 400 && status < 500 && status != http.StatusTooManyRequests:
			return false
		case ctx.Err() != nil:
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}
