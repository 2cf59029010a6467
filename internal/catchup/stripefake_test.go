package catchup_test

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

// fakeStripe serves GET /v1/events in the shape Stripe documents
// (https://docs.stripe.com/api/events/list): a list object, newest first,
// with limit, starting_after, created[gte], type and delivery_success, and
// Stripe's error object on failure. It covers what stripe-mock's fixed
// data cannot: many pages, and faults.
type fakeStripe struct {
	t      *testing.T
	key    string
	events []fakeEvent // newest first

	mu sync.Mutex
	// fail, if set, answers a request instead of the list: it gets the
	// request's number (1, 2, …) and starting_after, and returns a status
	// (0 to serve the list) and headers.
	fail     func(n int, after string) (int, http.Header)
	requests []url
}

type url struct {
	after string
	query string
}

type fakeEvent struct {
	ID, Type        string
	Created         int64
	DeliverySuccess bool
}

// newFakeStripe serves n events of type charge.succeeded, created a minute
// apart, the newest a minute ago; event i is evt_%04d, so ids sort by age.
func newFakeStripe(t *testing.T, n int) *fakeStripe {
	f := &fakeStripe{t: t, key: "sk_test_fake_" + strconv.Itoa(n)}
	now := time.Now().Unix()
	for i := n - 1; i >= 0; i-- {
		f.events = append(f.events, fakeEvent{ID: fmt.Sprintf("evt_%04d", i), Type: "charge.succeeded", Created: now - int64(60*(n-i)), DeliverySuccess: i%2 == 0})
	}
	return f
}

func (f *fakeStripe) start() string {
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	f.t.Cleanup(srv.Close)
	return srv.URL
}

func (f *fakeStripe) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	f.requests = append(f.requests, url{after: q.Get("starting_after"), query: r.URL.RawQuery})
	n := len(f.requests)
	fail := f.fail
	f.mu.Unlock()
	if r.Method != http.MethodGet || r.URL.Path != "/v1/events" {
		stripeError(w, http.StatusNotFound, "invalid_request_error", "Unrecognized request URL")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+f.key {
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
	var match []fakeEvent
	for _, ev := range f.events {
		if ev.Created < gte || (q.Get("type") != "" && q.Get("type") != ev.Type) ||
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
		data = append(data, eventJSON(ev))
	}
	w.Header().Set("Content-Type", "application/json")
	// Indented, as Stripe answers.
	b, _ := json.MarshalIndent(map[string]any{"object": "list", "url": "/v1/events", "has_more": end < len(match), "data": data}, "", "  ")
	w.Write(b)
}

func eventJSON(ev fakeEvent) json.RawMessage {
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

func (f *fakeStripe) afters() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.requests))
	for i, r := range f.requests {
		out[i] = r.after
	}
	return out
}
