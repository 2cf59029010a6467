package ledgertest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/ledgertest"
)

// TestObserverRecordsEachAttemptWithItsWindow checks the observer against a
// fake receiver that refuses the first attempt with 503: both attempts are
// recorded with their event key, status, Retry-After and times, and none is
// left in flight.
func TestObserverRecordsEachAttemptWithItsWindow(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	l := ledgertest.New()
	s := ledgertest.NewSender(l, srv.URL)
	obs := ledgertest.Observe(s)
	ev := ledgertest.NewGenerator("obs").Next(ledgertest.Valid)
	before := time.Now()
	require.True(t, s.Deliver(context.Background(), ev))
	after := time.Now()

	got := obs.Attempts()
	require.Len(t, got, 2)
	require.Equal(t, ev.Key(), got[0].Key)
	require.Equal(t, strings.TrimPrefix(srv.URL, "http://"), got[0].Target)
	require.Equal(t, http.StatusServiceUnavailable, got[0].Status)
	require.Equal(t, "5", got[0].RetryAfter)
	require.False(t, got[0].Acked())
	require.True(t, got[1].Acked())
	require.False(t, got[0].End.After(got[1].Start), "attempts are recorded in order")
	require.Len(t, obs.Within(before, after), 2)
	require.Empty(t, obs.Within(after, after.Add(time.Second)))
	require.Equal(t, 1, obs.Acks())
	require.Zero(t, s.InFlight(srv.URL))

	kind, ok := l.KindOf(ev.Key())
	require.True(t, ok)
	require.Equal(t, ledgertest.Valid, kind)
	_, ok = l.KindOf("bank/never-sent")
	require.False(t, ok)
}

// TestRunUntilFinishesTheDeliveriesInFlight stops a load while a slow
// receiver holds its deliveries: every attempt begun is answered and
// recorded, none is abandoned.
func TestRunUntilFinishesTheDeliveriesInFlight(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	l := ledgertest.New()
	s := ledgertest.NewSender(l, srv.URL)
	obs := ledgertest.Observe(s)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		ledgertest.Load{Sender: s, Gen: ledgertest.NewGenerator("until"), Clients: 4, Seed: 1}.RunUntil(context.Background(), stop)
		close(done)
	}()
	require.Eventually(t, func() bool { return obs.Acks() >= 8 }, 10*time.Second, 5*time.Millisecond)
	close(stop)
	<-done
	for _, a := range obs.Attempts() {
		require.NoError(t, a.Err)
	}
	require.Empty(t, l.Unacked(), "no delivery is left unanswered when the load stops")
}
