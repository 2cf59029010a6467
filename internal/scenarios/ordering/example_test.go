package ordering_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/examples/balances"
	"github.com/hookline/hookline/internal/clustertest"
	"github.com/hookline/hookline/internal/verify"
)

// TestTheExampleKeepsTheNewestSubscriptionStateThroughTheRealBinaries
// sends Stripe customer.subscription.updated events, signed, to the real
// receiver, created at t1 < t2 < t3 and delivered 3, 1, 2, each once the
// real worker (whose example business logic registers the ordered
// handler) applied the one before. The subscriptions table holds t3's
// status and plan, hookctl shows 1 and 2 as stale, superseded by 3, and
// lists the subscription's events by --object; a replay of 1 says that it
// is older than 3, and runs.
func TestTheExampleKeepsTheNewestSubscriptionStateThroughTheRealBinaries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := clustertest.New(t)
	r := c.StartReceiver(t)
	w := c.StartWorker(t, "DATABASE_MAX_CONNS=8", "WORKER_CONCURRENCY=4")

	created := time.Now().Add(-time.Hour).Unix()
	send := func(id string, n int64, status, plan string) {
		t.Helper()
		body := fmt.Appendf(nil, `{"id":%q,"object":"event","type":"customer.subscription.updated","created":%d,`+
			`"data":{"object":{"id":"sub_1","object":"subscription","customer":"cus_1","status":%q,"plan":{"id":%q}}}}`,
			id, created+n, status, plan)
		req, err := http.NewRequest(http.MethodPost, r.URL+"/api/webhooks/stripe", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Stripe-Signature", verify.SignStripe(clustertest.StripeSecret, body, time.Now()))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Eventually(t, func() bool {
			var done bool
			err := c.DB.Pool.QueryRow(ctx, `SELECT processed_at IS NOT NULL FROM inbox_events WHERE event_id = $1`, id).Scan(&done)
			return err == nil && done
		}, 30*time.Second, 20*time.Millisecond, "%s was not processed", id)
	}
	send("evt_3", 3, "active", "price_pro")
	send("evt_1", 1, "incomplete", "price_basic")
	send("evt_2", 2, "trialing", "price_basic")

	sub, err := balances.GetSubscription(ctx, c.DB.Pool, "sub_1")
	require.NoError(t, err)
	require.Equal(t, balances.Subscription{Customer: "cus_1", Status: "active", Plan: "price_pro", EventID: "evt_3"}, sub)

	// The receiver stored Stripe's created as the event time, and
	// data.object.id as the object.
	var eventTime time.Time
	var object string
	require.NoError(t, c.DB.Pool.QueryRow(ctx, `SELECT event_time, object_key FROM inbox_events WHERE event_id = 'evt_1'`).Scan(&eventTime, &object))
	require.True(t, time.Unix(created+1, 0).Equal(eventTime), "event time %s", eventTime)
	require.Equal(t, "sub_1", object)

	// The worker counted the two stale events.
	resp, err := http.Get(w.URL + "/metrics")
	require.NoError(t, err)
	metrics, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Contains(t, string(metrics), `hookline_worker_stale_events_total{source="stripe",type="customer.subscription.updated"} 2`)

	out, err := c.Hookctl(t, "events", "get", "stripe", "evt_1")
	require.NoError(t, err, out)
	t.Logf("hookctl events get stripe evt_1:\n%s", out)
	require.Regexp(t, `Object\s+sub_1`, out)
	require.Regexp(t, `Newest applied\s+evt_3`, out)
	require.Regexp(t, `Status\s+stale`, out)
	require.Contains(t, out, "evt_3, a newer event of the object, had been applied")

	out, err = c.Hookctl(t, "events", "list", "--source", "stripe", "--object", "sub_1", "--json")
	require.NoError(t, err, out)
	var listed []struct {
		EventID      string `json:"event_id"`
		Object       string `json:"object"`
		Status       string `json:"status"`
		SupersededBy string `json:"superseded_by"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &listed))
	require.Len(t, listed, 3)
	statuses := map[string]string{}
	for _, e := range listed {
		require.Equal(t, "sub_1", e.Object)
		statuses[e.EventID] = e.Status + " " + e.SupersededBy
	}
	require.Equal(t, map[string]string{"evt_3": "processed ", "evt_1": "stale evt_3", "evt_2": "stale evt_3"}, statuses)

	// River's batch completer completes the jobs after the commit; a
	// replay waits for that, as it refuses an event with a live job.
	require.Eventually(t, func() bool {
		var n int
		err := c.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state = 'completed'`).Scan(&n)
		return err == nil && n == 3
	}, 30*time.Second, 20*time.Millisecond)
	out, err = c.Hookctl(t, "replay", "stripe", "evt_1", "--by", "test", "--reason", "restore an old state on purpose")
	require.NoError(t, err, out)
	t.Logf("hookctl replay stripe evt_1:\n%s", out)
	require.Contains(t, out, "note: stripe/evt_1 is older than evt_3, the newest event applied for its object sub_1")
	require.Eventually(t, func() bool {
		sub, err := balances.GetSubscription(ctx, c.DB.Pool, "sub_1")
		return err == nil && sub.EventID == "evt_1"
	}, 30*time.Second, 20*time.Millisecond, "the replay of an older event runs its handler")
	require.Equal(t, "incomplete", func() string { s, _ := balances.GetSubscription(ctx, c.DB.Pool, "sub_1"); return s.Status }())
}
