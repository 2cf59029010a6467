package catchup_test

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/catchup"
	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/pgtest"
	"github.com/hookline/hookline/internal/stripemocktest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type testBundle struct {
	db    *pgtest.DB
	rc    *river.Client[pgx.Tx]
	store *catchup.Store
	// webhook stores an event as the receiver does.
	webhook *ingest.Single
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	db := pgtest.NewDB(t)
	rc, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	return &testBundle{db: db, rc: rc, store: catchup.NewStore(db.Pool, rc), webhook: ingest.NewSingle(db.Pool, rc)}
}

func (b *testBundle) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), query, args...).Scan(&n))
	return n
}

// requireEachStoredOnce checks that every event of the source has one
// inbox row and one job, and that recovery_audit has a row for exactly
// the events catch-up stored.
func (b *testBundle) requireEachStoredOnce(t *testing.T, wantEvents, wantRecovered int) {
	t.Helper()
	require.Equal(t, wantEvents, b.count(t, `SELECT count(*) FROM inbox_events WHERE source = 'stripe'`), "inbox rows")
	require.Equal(t, wantEvents, b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'process_event'`), "jobs")
	require.Equal(t, wantEvents, b.count(t, `SELECT count(DISTINCT args->>'event_id') FROM river_job WHERE kind = 'process_event'`), "events with a job")
	require.Equal(t, wantRecovered, b.count(t, `SELECT count(*) FROM recovery_audit`), "audit rows")
	require.Equal(t, 0, b.count(t, `
		SELECT count(*) FROM recovery_audit a
		LEFT JOIN inbox_events e ON e.id = a.inbox_id AND e.event_id = a.event_id
		LEFT JOIN river_job j ON j.id = a.job_id AND (j.args->>'inbox_id')::bigint = a.inbox_id
		WHERE e.id IS NULL OR j.id IS NULL`), "audit rows that do not match their event and job")
}

func opts(by string) catchup.Options {
	return catchup.Options{Source: "stripe", Origin: catchup.OriginStripeAPI, By: by, Reason: "outage INC-7"}
}

func lister(t *testing.T, f *stripemocktest.Fake, url string, mod ...func(*catchup.StripeOptions)) *catchup.StripeLister {
	t.Helper()
	o := catchup.StripeOptions{Key: f.Key, URL: url, Since: time.Now().Add(-72 * time.Hour),
		Requests: catchup.Requests{PageSize: 100, Backoff: func(int) time.Duration { return time.Millisecond }}}
	for _, m := range mod {
		m(&o)
	}
	l, err := catchup.NewStripe(o)
	require.NoError(t, err)
	return l
}

// stripe-mock checks each request against Stripe's OpenAPI specification
// and answers with its one fixture event (created in 2009), whatever the
// filters.
func TestStripeListerRequestsAreValidStripeAPICalls(t *testing.T) {
	t.Parallel()
	url := stripemocktest.Start(t)
	tests := []struct {
		name string
		mod  func(*catchup.StripeOptions)
	}{
		{"since only", func(*catchup.StripeOptions) {}},
		{"with a type", func(o *catchup.StripeOptions) { o.Type = "charge.succeeded" }},
		{"with a wildcard type and failed deliveries only", func(o *catchup.StripeOptions) { o.Type = "charge.*"; o.FailedOnly = true }},
		{"with a small page", func(o *catchup.StripeOptions) { o.PageSize = 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			o := catchup.StripeOptions{Key: "sk_test_123", URL: url, Since: time.Unix(1_000_000_000, 0), Requests: catchup.Requests{MaxRetries: -1}}
			tt.mod(&o)
			l, err := catchup.NewStripe(o)
			require.NoError(t, err)

			sum, err := catchup.Run(context.Background(), l, b.store, opts("alice"))
			require.NoError(t, err)
			require.Equal(t, 1, sum.Listed)
			require.Equal(t, 1, sum.Stored)
			require.Len(t, sum.Recovered, 1)
			ev := sum.Recovered[0]
			require.True(t, strings.HasPrefix(ev.EventID, "evt_"), ev.EventID)

			var payload []byte
			var by, origin, reason string
			require.NoError(t, b.db.Pool.QueryRow(context.Background(), `
				SELECT e.payload, a.recovered_by, a.origin, a.reason FROM inbox_events e
				JOIN recovery_audit a ON a.inbox_id = e.id WHERE e.source = 'stripe' AND e.event_id = $1`, ev.EventID,
			).Scan(&payload, &by, &origin, &reason))
			require.Contains(t, string(payload), `"id":"`+ev.EventID+`"`)
			require.Equal(t, []string{"alice", "stripe_api", "outage INC-7"}, []string{by, origin, reason})
			b.requireEachStoredOnce(t, 1, 1)

			// Run again: the event is known by its id.
			sum, err = catchup.Run(context.Background(), l, b.store, opts("alice"))
			require.NoError(t, err)
			require.Equal(t, 1, sum.AlreadyStored)
			require.Equal(t, 0, sum.Stored)
			b.requireEachStoredOnce(t, 1, 1)
		})
	}
}

func TestStripeCatchupStoresEveryPageWithItsFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := stripemocktest.NewFake(t, 260)
	// 10 events older than the window, which must not be listed.
	since := time.Unix(f.Events[249].Created, 0)
	l := lister(t, f, f.Start(), func(o *catchup.StripeOptions) { o.Since = since })

	var progress []int
	o := opts("alice")
	o.Progress = func(s catchup.Summary) { progress = append(progress, s.Listed) }
	sum, err := catchup.Run(context.Background(), l, b.store, o)
	require.NoError(t, err)
	require.Equal(t, 3, sum.Pages)
	require.Equal(t, 250, sum.Listed)
	require.Equal(t, 250, sum.Stored)
	require.Equal(t, 0, sum.AlreadyStored)
	require.Equal(t, []int{100, 200, 250}, progress)
	require.Equal(t, []string{"", "evt_0160", "evt_0060"}, f.Afters())
	require.Equal(t, since.UTC(), sum.Oldest)
	b.requireEachStoredOnce(t, 250, 250)
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM inbox_events WHERE event_id < 'evt_0010'`), "events before --since")
	// The stored event is the API's event object, with its type and API version.
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM inbox_events WHERE event_id = 'evt_0100' AND event_type = 'charge.succeeded'
		AND api_version = '2023-10-16' AND convert_from(payload, 'UTF8') LIKE '%"data":{"object":{"id":"ch_0100"%'`))
	require.Contains(t, f.Queries()[0], "created[gte]="+strconv.FormatInt(f.Events[249].Created, 10))
}

func TestStripeCatchupSendsTypeAndDeliveryFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := stripemocktest.NewFake(t, 20)
	f.Events[4].Type = "invoice.paid" // evt_0015, whose delivery failed
	l := lister(t, f, f.Start(), func(o *catchup.StripeOptions) { o.Type = "charge.succeeded"; o.FailedOnly = true })

	sum, err := catchup.Run(context.Background(), l, b.store, opts("alice"))
	require.NoError(t, err)
	// Of 20, 10 were delivered, and one failed one is an invoice.
	require.Equal(t, 9, sum.Stored)
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM inbox_events WHERE event_type <> 'charge.succeeded'`))
	require.Contains(t, f.Queries()[0], "delivery_success=false")
	require.Contains(t, f.Queries()[0], "type=charge.succeeded")
}

func TestStripeCatchupFailingMidwayKeepsEarlierPagesAndRerunContinues(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := stripemocktest.NewFake(t, 250)
	f.Fail = func(n int, after string) (int, http.Header) {
		if after == "evt_0050" { // the third page, every time
			return http.StatusInternalServerError, nil
		}
		return 0, nil
	}
	url := f.Start()
	l := lister(t, f, url, func(o *catchup.StripeOptions) { o.MaxRetries = 2 })

	sum, err := catchup.Run(context.Background(), l, b.store, opts("alice"))
	require.ErrorContains(t, err, "list page 3 of stripe events: after 2 retries")
	require.Equal(t, 200, sum.Stored)
	b.requireEachStoredOnce(t, 200, 200)

	// The API is back: a rerun finds the first two pages stored.
	f.Mu.Lock()
	f.Fail = nil
	f.Mu.Unlock()
	sum, err = catchup.Run(context.Background(), l, b.store, opts("bob"))
	require.NoError(t, err)
	require.Equal(t, 200, sum.AlreadyStored)
	require.Equal(t, 50, sum.Stored)
	b.requireEachStoredOnce(t, 250, 250)
	require.Equal(t, 50, b.count(t, `SELECT count(*) FROM recovery_audit WHERE recovered_by = 'bob'`))
}

func TestStripeCatchupWaitsAndRetriesWhenRateLimited(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := stripemocktest.NewFake(t, 150)
	f.Fail = func(n int, after string) (int, http.Header) {
		switch n {
		case 2, 3: // the second page, twice
			return http.StatusTooManyRequests, nil
		case 4: // and once more, with the wait said
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}
		}
		return 0, nil
	}
	var waits []time.Duration
	var backoffs []int
	l := lister(t, f, f.Start(), func(o *catchup.StripeOptions) {
		o.Backoff = func(n int) time.Duration { backoffs = append(backoffs, n); return 5 * time.Millisecond }
		o.OnRetry = func(n int, wait time.Duration, err error) { waits = append(waits, wait) }
	})
	start := time.Now()
	sum, err := catchup.Run(context.Background(), l, b.store, opts("alice"))
	require.NoError(t, err)
	require.Equal(t, 150, sum.Stored)
	require.Equal(t, []int{1, 2}, backoffs)
	require.Equal(t, []time.Duration{5 * time.Millisecond, 5 * time.Millisecond, time.Second}, waits)
	require.GreaterOrEqual(t, time.Since(start), time.Second, "the Retry-After was waited")
	require.Equal(t, []string{"", "evt_0050", "evt_0050", "evt_0050", "evt_0050"}, f.Afters())
	b.requireEachStoredOnce(t, 150, 150)
}

func TestStripeCatchupDoesNotRetryAClientError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := stripemocktest.NewFake(t, 5)
	l := lister(t, f, f.Start(), func(o *catchup.StripeOptions) { o.Key = "sk_test_wrong_key_123" })
	_, err := catchup.Run(context.Background(), l, b.store, opts("alice"))
	require.Error(t, err)
	require.Len(t, f.Afters(), 1)
	// The fake, unlike Stripe, quotes the key it was given in full.
	require.NotContains(t, err.Error(), "sk_test_wrong_key_123")
	require.Contains(t, err.Error(), "[redacted]")
}

func TestStripeCatchupSkipsEventsDeliveredByWebhook(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := stripemocktest.NewFake(t, 120)
	ctx := context.Background()
	for _, id := range []string{"evt_0003", "evt_0050", "evt_0119"} {
		out, err := b.webhook.Ingest(ctx, inbox.NewEvent{Source: "stripe", EventID: id, Type: "charge.succeeded",
			Payload: []byte(`{"id":"` + id + `","delivered":true}`), Headers: map[string]string{"Stripe-Signature": "t=1,v1=abc"}})
		require.NoError(t, err)
		require.Equal(t, ingest.Accepted, out)
	}
	l := lister(t, f, f.Start())
	sum, err := catchup.Run(ctx, l, b.store, opts("alice"))
	require.NoError(t, err)
	require.Equal(t, 120, sum.Listed)
	require.Equal(t, 3, sum.AlreadyStored)
	require.Equal(t, 117, sum.Stored)
	b.requireEachStoredOnce(t, 120, 117)
	// The delivered ones are as the webhook stored them, with no audit row.
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM inbox_events WHERE headers ? 'Stripe-Signature' AND convert_from(payload, 'UTF8') LIKE '%delivered%'`))
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM recovery_audit WHERE event_id IN ('evt_0003', 'evt_0050', 'evt_0119')`))
	// Re-listing is not a duplicate delivery.
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM inbox_duplicates`))
}

// A webhook delivery of an event that catch-up is storing, in transactions
// that overlap: whichever commits first stores it, and the other sees a
// duplicate.
func TestStripeCatchupAndAConcurrentWebhookDeliveryStoreTheEventOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	f := stripemocktest.NewFake(t, 30)

	// The webhook's transaction has inserted evt_0010 and not committed.
	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	st, err := ingest.Store(ctx, tx, b.rc, inbox.NewEvent{Source: "stripe", EventID: "evt_0010", Type: "charge.succeeded", Payload: []byte(`{"id":"evt_0010"}`)})
	require.NoError(t, err)
	require.Equal(t, ingest.Accepted, st.Outcome)

	var sum catchup.Summary
	var runErr error
	done := make(chan struct{})
	l := lister(t, f, f.Start())
	go func() {
		defer close(done)
		sum, runErr = catchup.Run(ctx, l, b.store, opts("alice"))
	}()
	// Catch-up waits on the webhook's row lock, not before.
	require.Eventually(t, func() bool {
		return b.count(t, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) == 1
	}, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, tx.Commit(ctx))
	<-done
	require.NoError(t, runErr)
	require.Equal(t, 1, sum.AlreadyStored)
	require.Equal(t, 29, sum.Stored)
	b.requireEachStoredOnce(t, 30, 29)
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM recovery_audit WHERE event_id = 'evt_0010'`))

	// And the other way round: webhook deliveries racing a catch-up run
	// over the same events.
	b2 := setup(t)
	f2 := stripemocktest.NewFake(t, 200)
	var wg sync.WaitGroup
	var accepted int
	var webhookErr error
	wg.Go(func() {
		// Oldest first, while catch-up goes newest first: they meet.
		for i := len(f2.Events) - 1; i >= 0; i-- {
			ev := f2.Events[i]
			out, err := b2.webhook.Ingest(ctx, inbox.NewEvent{Source: "stripe", EventID: ev.ID, Type: ev.Type, Payload: stripemocktest.EventJSON(ev)})
			if err != nil {
				webhookErr = err
				return
			}
			if out == ingest.Accepted {
				accepted++
			}
		}
	})
	sum, err = catchup.Run(ctx, lister(t, f2, f2.Start(), func(o *catchup.StripeOptions) { o.PageSize = 10 }), b2.store, opts("alice"))
	require.NoError(t, err)
	wg.Wait()
	require.NoError(t, webhookErr)
	require.Equal(t, 200, sum.Stored+accepted)
	require.Equal(t, 200, sum.Stored+sum.AlreadyStored)
	b2.requireEachStoredOnce(t, 200, sum.Stored)
}

func TestStripeCatchupDryRunStoresNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := stripemocktest.NewFake(t, 40)
	ctx := context.Background()
	_, err := b.webhook.Ingest(ctx, inbox.NewEvent{Source: "stripe", EventID: "evt_0007", Payload: []byte(`{}`)})
	require.NoError(t, err)
	o := opts("")
	o.DryRun = true
	sum, err := catchup.Run(ctx, lister(t, f, f.Start()), b.store, o)
	require.NoError(t, err)
	require.Equal(t, 39, sum.Stored)
	require.Equal(t, 1, sum.AlreadyStored)
	require.Len(t, sum.Recovered, 39)
	b.requireEachStoredOnce(t, 1, 0)
}

func TestStripeCatchupRefusesWhatTheReceiverWouldRefuse(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := stripemocktest.NewFake(t, 3)
	// An id longer than the inbox key allows.
	f.Events[1].ID = "evt_" + strings.Repeat("x", 300)
	sum, err := catchup.Run(context.Background(), lister(t, f, f.Start()), b.store, opts("alice"))
	require.NoError(t, err)
	require.Equal(t, 3, sum.Listed)
	require.Equal(t, 2, sum.Stored)
	require.Equal(t, 1, sum.Refused)
	require.Contains(t, sum.Refusals[0].Reason, "id")
	b.requireEachStoredOnce(t, 2, 2)
}

func TestStripeCatchupRequiresWhoForTheAudit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := stripemocktest.NewFake(t, 3)
	_, err := catchup.Run(context.Background(), lister(t, f, f.Start()), b.store, opts(" "))
	require.ErrorContains(t, err, "who")
	require.Empty(t, f.Afters())
}

// The receiver's default ingest mode, group commit: its batches and
// catch-up's pages take the same keys in key order, store each event once,
// and never deadlock.
func TestStripeCatchupRacingTheReceiversBatchesStoresEachEventOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	f := stripemocktest.NewFake(t, 300)
	batcher := ingest.NewBatcher(b.db.Pool, b.rc, slog.New(slog.DiscardHandler), ingest.BatchOptions{MaxSize: 20, Flushers: 2})
	defer batcher.Close(ctx)

	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	var webhookErr error
	for w := range 8 {
		wg.Go(func() {
			// Each sender takes every eighth event, oldest first.
			for i := len(f.Events) - 1 - w; i >= 0; i -= 8 {
				ev := f.Events[i]
				out, err := batcher.Ingest(ctx, inbox.NewEvent{Source: "stripe", EventID: ev.ID, Type: ev.Type, Payload: stripemocktest.EventJSON(ev)})
				mu.Lock()
				if err != nil {
					webhookErr = err
				} else if out == ingest.Accepted {
					accepted++
				}
				mu.Unlock()
			}
		})
	}
	sum, err := catchup.Run(ctx, lister(t, f, f.Start(), func(o *catchup.StripeOptions) { o.PageSize = 25 }), b.store, opts("alice"))
	require.NoError(t, err)
	wg.Wait()
	require.NoError(t, webhookErr)
	require.Equal(t, 300, sum.Stored+accepted)
	require.Equal(t, 300, sum.Stored+sum.AlreadyStored)
	b.requireEachStoredOnce(t, 300, sum.Stored)
	t.Logf("catch-up stored %d, the receiver's batches %d", sum.Stored, accepted)
}
