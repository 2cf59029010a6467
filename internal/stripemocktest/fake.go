package stripemocktest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fake serves GET /v1/events in the shape Stripe documents
// (https://docs.stripe.com/api/events/list): a list object, newest first,
// with limit, starting_after, created[gte], type and delivery_success, and
// Stripe's error object on failure. It covers what stripe-mock's fixed
// data cannot: many pages, and faults.
type Fake struct {
	t testing.TB
	// Key is the API key the fake accepts; any other gets a 401 that
	// quotes it, as Stripe does not, for tests that check it never leaks.
	Key string
	// Events are listed newest first.
	Events []FakeEvent

	// Mu guards Fail, Events once served, and the requests seen.
	Mu sync.Mutex
	// Fail, if set, answers a request instead of the list: it gets the
	// request's number (1, 2, …) and starting_after, and returns a status
	// (0 to serve the list) and headers.
	Fail     func(n int, after string) (int, http.Header)
	requests []request
}

// request is what the fake saw of a request: its cursor and query.
type request struct {
	after string
	query string
}

// FakeEvent is one event the fake lists.
type FakeEvent struct {
	ID, Type        string
	Created         int64
	DeliverySuccess bool
}

// NewFake serves n events of type charge.succeeded, created a minute
// apart, the newest a minute ago; event i is evt_%04d, so ids sort by age.
func NewFake(t testing.TB, n int) *Fake {
	f := &Fake{t: t, Key: "sk_test_fake_" + strconv.Itoa(n)}
	now := time.Now().Unix()
	for i := n - 1; i >= 0; i-- {
		f.Events = append(f.Events, FakeEvent{ID: fmt.Sprintf("evt_%04d", i), Type: "charge.succeeded", Created: now - int64(60*(n-i)), DeliverySuccess: i%2 == 0})
	}
	return f
}

// Start serves the fake until the test ends and returns its URL.
func (f *Fake) Start() string {
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	f.t.Cleanup(srv.Close)
	return srv.URL
}

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.Mu.Lock()
	f.requests = append(f.requests, request{after: q.Get("starting_after"), query: r.URL.RawQuery})
	n := len(f.requests)
	fail, events := f.Fail, f.Events
	f.Mu.Unlock()
	if r.Method != http.MethodGet || r.URL.Path != "/v1/events" {
		stripeError(w, http.StatusNotFound, "invalid_request_error", "Unrecognized request URL")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+f.Key {
		stripeError(w, http.StatusUnauthorized, "invalid_request_error", "Invalid API Key provided: "+strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		return
	}
	if fail != nil {
		if status, h := fail(n, q.Get("starting_after")); status != 0 {
			for k, v := range h {
				w.Header()[k] = v
			}
			stripeError(w, status, "api_error", fmt.Sprintf("fault injected on request %d", n))
			return
		}
	}
	limit := 10
	if l := q.Get("limit"); l != "" {
		limit, _ = strconv.Atoi(l)
	}
	gte, _ := strconv.ParseInt(q.Get("created[gte]"), 10, 64)
	var match []FakeEvent
	for _, ev := range events {
		if ev.Created < gte || !typeMatches(q.Get("type"), ev.Type) ||
			(q.Get("delivery_success") == "false" && ev.DeliverySuccess) {
			continue
		}
		match = append(match, ev)
	}
	start := 0
	if after := q.Get("starting_after"); after != "" {
		start = -1
		for i, ev := range match {
			if ev.ID == after {
				start = i + 1
			}
		}
		if start < 0 {
			stripeError(w, http.StatusBadRequest, "invalid_request_error", "No such event: "+after)
			return
		}
	}
	end := min(start+limit, len(match))
	data := make([]json.RawMessage, 0, end-start)
	for _, ev := range match[start:end] {
		data = append(data, EventJSON(ev))
	}
	w.Header().Set("Content-Type", "application/json")
	// Indented, as Stripe answers.
	b, _ := json.MarshalIndent(map[string]any{"object": "list", "url": "/v1/events", "has_more": end < len(match), "data": data}, "", "  ")
	w.Write(b)
}

// EventJSON renders ev as Stripe's event object.
func EventJSON(ev FakeEvent) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"id": %q, "object": "event", "api_version": "2023-10-16", "created": %d, "livemode": false,
		"pending_webhooks": 1, "type": %q, "request": {"id": null, "idempotency_key": null},
		"data": {"object": {"id": "ch_%s", "object": "charge", "amount": 1500, "currency": "eur"}}}`, ev.ID, ev.Created, ev.Type, ev.ID[4:]))
}

func stripeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"type": typ, "message": msg}})
	w.Write(b)
}

// Queries returns the raw query of each request so far.
func (f *Fake) Queries() []string {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	out := make([]string, len(f.requests))
	for i, r := range f.requests {
		out[i] = r.query
	}
	return out
}

// Afters returns the starting_after of each request so far, "" for none.
func (f *Fake) Afters() []string {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	out := make([]string, len(f.requests))
	for i, r := range f.requests {
		out[i] = r.after
	}
	return out
}

// typeMatches applies Stripe's type filter: empty for any type, an exact
// type, or a wildcard such as charge.*.
func typeMatches(filter, typ string) bool {
	if prefix, ok := strings.CutSuffix(filter, "*"); ok {
		return strings.HasPrefix(typ, prefix)
	}
	return filter == "" || filter == typ
}
