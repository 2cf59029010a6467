package catchup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/form"
	"github.com/tidwall/gjson"

	"github.com/hookline/hookline/internal/envelope"
	"github.com/hookline/hookline/internal/sources"
)

// OriginStripeAPI is the recovery_audit origin of events listed from
// Stripe's Events API.
const OriginStripeAPI = "stripe_api"

// StripeOptions configure a StripeLister.
type StripeOptions struct {
	// Key is the API key: a restricted key with read access to Events is
	// enough. It is sent to the API and nowhere else: not in errors, not
	// in logs.
	Key string
	// URL is the API's base URL; empty is https://api.stripe.com. Tests
	// point it at stripe-mock or an httptest server.
	URL string
	// Since lists events created at or after it; required.
	Since time.Time
	// Type, if set, lists only events of this type; Stripe accepts a
	// wildcard such as charge.*.
	Type string
	// FailedOnly lists only events that some webhook endpoint has not
	// received successfully (Stripe's delivery_success=false).
	FailedOnly bool
	// Requests: events per page, and retries after a 429, a 5xx or a
	// network error.
	Requests
}

// StripeLister lists events through stripe-go's backend, newest first, as
// Stripe's Events API returns them.
type StripeLister struct {
	backend stripe.Backend
	opts    StripeOptions
	ext     envelope.Extractor
}

// NewStripe returns a lister of the events opts select.
func NewStripe(opts StripeOptions) (*StripeLister, error) {
	switch {
	case opts.Key == "":
		return nil, errors.New("stripe: no API key (set STRIPE_API_KEY or STRIPE_API_KEY_FILE)")
	case opts.Since.IsZero():
		return nil, errors.New("stripe: no start time")
	}
	var err error
	if opts.Requests, err = opts.Requests.withDefaults(); err != nil {
		return nil, fmt.Errorf("stripe: %w", err)
	}
	cfg := &stripe.BackendConfig{
		HTTPClient: opts.HTTPClient,
		// Retries are the lister's own, so that a 429 waits too: stripe-go
		// retries a rate-limited request only when Stripe says it is a lock
		// timeout.
		MaxNetworkRetries: stripe.Int64(0),
		// stripe-go would log request errors to stderr itself.
		LeveledLogger:   &stripe.LeveledLogger{Level: stripe.LevelNull},
		EnableTelemetry: stripe.Bool(false),
	}
	if opts.URL != "" {
		cfg.URL = stripe.String(opts.URL)
	}
	ext, _ := sources.Extractor("stripe")
	return &StripeLister{backend: stripe.GetBackendWithConfig(stripe.APIBackend, cfg), opts: opts, ext: ext}, nil
}

// Page implements Lister. The cursor is the id of the last event of the
// previous page (Stripe's starting_after).
func (l *StripeLister) Page(ctx context.Context, cursor string) (Page, error) {
	return retry(ctx, l.opts.MaxRetries, l.opts.OnRetry, l.opts.Key,
		func() (Page, error) { return l.page(ctx, cursor) }, l.retryAfter)
}

// retryAfter says whether err is worth a retry, and after how long: what
// the API's Retry-After says, if anything, else the backoff.
func (l *StripeLister) retryAfter(err error, n int) (time.Duration, bool) {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return l.opts.Backoff(n), true // a network error
	}
	if se.HTTPStatusCode != http.StatusTooManyRequests && se.HTTPStatusCode < 500 {
		return 0, false
	}
	if se.LastResponse != nil && se.LastResponse.Header != nil {
		if s, err := strconv.Atoi(se.LastResponse.Header.Get("Retry-After")); err == nil && s >= 0 {
			return min(time.Duration(s)*time.Second, 2*time.Minute), true
		}
	}
	return l.opts.Backoff(n), true
}

// page asks for one page, once.
func (l *StripeLister) page(ctx context.Context, cursor string) (Page, error) {
	p := &stripe.EventListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: l.opts.Since.Unix()}}
	p.Context = ctx
	p.Limit = stripe.Int64(int64(l.opts.PageSize))
	if cursor != "" {
		p.StartingAfter = stripe.String(cursor)
	}
	if l.opts.Type != "" {
		p.Type = stripe.String(l.opts.Type)
	}
	if l.opts.FailedOnly {
		p.DeliverySuccess = stripe.Bool(false)
	}
	list := &stripe.EventList{}
	// As event.Client.List sends each page, one request at a time, so that
	// a page can be retried and resumed from its cursor.
	values := &form.Values{}
	form.AppendTo(values, p)
	if err := l.backend.CallRaw(http.MethodGet, "/v1/events", l.opts.Key, values, p.GetParams(), list); err != nil {
		return Page{}, err
	}
	if list.LastResponse == nil {
		return Page{}, errors.New("no response body")
	}
	// The typed list says whether there is more; the raw body keeps each
	// event as Stripe rendered it, which is what a delivery carries.
	var raw struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(list.LastResponse.RawJSON, &raw); err != nil {
		return Page{}, fmt.Errorf("read events list: %w", err)
	}
	var page Page
	for i, r := range raw.Data {
		var buf bytes.Buffer
		if err := json.Compact(&buf, r); err != nil {
			return Page{}, fmt.Errorf("read event %d of the page: %w", i, err)
		}
		body := buf.Bytes()
		env, err := l.ext.Extract(nil, body)
		if err != nil {
			page.Refused = append(page.Refused, Refusal{EventID: oneLine(gjson.GetBytes(body, "id").String()), Reason: err.Error()})
			continue
		}
		page.Events = append(page.Events, Event{
			ID: env.ID, Type: env.Type, APIVersion: env.APIVersion,
			Created: time.Unix(gjson.GetBytes(body, "created").Int(), 0).UTC(),
			Payload: body,
		})
	}
	if list.HasMore {
		if len(raw.Data) == 0 {
			return Page{}, errors.New("the API said there are more events but sent none")
		}
		page.Next = gjson.GetBytes(raw.Data[len(raw.Data)-1], "id").String()
		if page.Next == "" {
			return Page{}, errors.New("the last event of a page has no id to continue after")
		}
	}
	return page, nil
}

// oneLine bounds an id read from a refused event, for reports.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}
