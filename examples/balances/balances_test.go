package balances_test

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/examples/balances"
	"github.com/hookline/hookline/hooklinetest"
	"github.com/hookline/hookline/hooklinetype"
)

func TestHandlers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		source    string
		eventType string
		payload   string
		account   string
		want      int64
		permanent bool
	}{
		{"stripe charge credits the customer", "stripe", "charge.succeeded", `{"data":{"object":{"amount":2000,"customer":"cus_1"}}}`, "stripe:cus_1", 2000, false},
		{"bank settlement credits the account", "bank", "transfer.settled", `{"account":"acc_9","amount_cents":1250}`, "bank:acc_9", 1250, false},
		{"bank reversal debits the account", "bank", "transfer.reversed", `{"account":"acc_9","amount_cents":1250}`, "bank:acc_9", -1250, false},
		{"charge without customer is permanent", "stripe", "charge.succeeded", `{"data":{"object":{"amount":1}}}`, "stripe:", 0, true},
		{"transfer without amount is permanent", "bank", "transfer.settled", `{"account":"acc_9"}`, "bank:acc_9", 0, true},
		{"non-JSON payload is permanent", "bank", "transfer.settled", `nope`, "bank:acc_9", 0, true},
		{"a negative charge is permanent", "stripe", "charge.succeeded", `{"data":{"object":{"amount":-5,"customer":"cus_1"}}}`, "stripe:cus_1", 0, true},
		{"a transfer over the maximum is permanent", "bank", "transfer.settled", `{"account":"acc_9","amount_cents":1000000000001}`, "bank:acc_9", 0, true},
		{"an amount beyond int64 is permanent", "bank", "transfer.settled", `{"account":"acc_9","amount_cents":1e400}`, "bank:acc_9", 0, true},
	}
	mux := hooklinetype.NewMux()
	balances.Register(mux)
	pool := hooklinetest.Database(context.Background(), t, balances.Migrations())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			_, _, ok := mux.Route(tt.source, tt.eventType)
			require.True(t, ok)
			// Each case runs in its own rolled-back transaction.
			tx := hooklinetest.Tx(ctx, t, pool)
			err := hooklinetest.Apply(ctx, tx, mux, hooklinetest.NewEvent(tt.source, tt.eventType, []byte(tt.payload)))
			if tt.permanent {
				require.True(t, hooklinetype.IsPermanent(err), "want a permanent error, got %v", err)
				// Errors reach logs and River's job rows: no body values.
				for _, v := range []string{"cus_1", "acc_9", "1e400", "-5", "1000000000001"} {
					require.NotContains(t, err.Error(), v)
				}
				return
			}
			require.NoError(t, err)
			got, err := balances.Get(ctx, tx, tt.account)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestABalancePushedOutOfRangeIsPermanent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tx := hooklinetest.Tx(ctx, t, hooklinetest.Database(ctx, t, balances.Migrations()))
	require.NoError(t, balances.Add(ctx, tx, "acc_full", math.MaxInt64))
	err := balances.Add(ctx, tx, "acc_full", 1)
	require.True(t, hooklinetype.IsPermanent(err), "want a permanent error, got %v", err)
	require.NotContains(t, err.Error(), "acc_full")
}

// TestHandleBatchAddsUpPerAccount: a group's events go to HandleBatch at
// once, and must have the effect of Handle on each in turn.
func TestHandleBatchAddsUpPerAccount(t *testing.T) {
	t.Parallel()
	mux := hooklinetype.NewMux()
	balances.Register(mux)
	h, _, ok := mux.Route("bank", "transfer.settled")
	require.True(t, ok)
	batch, ok := h.(hooklinetype.BatchHandler)
	require.True(t, ok, "the example handlers apply a group with one statement")
	ctx := context.Background()
	tx := hooklinetest.Tx(ctx, t, hooklinetest.Database(ctx, t, balances.Migrations()))
	ev := func(account string, cents int) hooklinetype.Event {
		return hooklinetest.NewEvent("bank", "transfer.settled", fmt.Appendf(nil, `{"account":%q,"amount_cents":%d}`, account, cents))
	}
	require.NoError(t, hooklinetest.ApplyBatch(ctx, tx, batch, []hooklinetype.Event{ev("a", 5), ev("b", 7), ev("a", 11)}))
	for acc, want := range map[string]int64{"bank:a": 16, "bank:b": 7} {
		got, err := balances.Get(ctx, tx, acc)
		require.NoError(t, err)
		require.Equal(t, want, got, acc)
	}
	bad := hooklinetest.NewEvent("bank", "transfer.settled", []byte(`{"account":"c"}`))
	err := hooklinetest.ApplyBatch(ctx, tx, batch, []hooklinetype.Event{ev("a", 1), bad})
	require.True(t, hooklinetype.IsPermanent(err), "one bad event fails the batch: %v", err)
	got, err := balances.Get(ctx, tx, "bank:a")
	require.NoError(t, err)
	require.EqualValues(t, 16, got, "the failed batch left no effect")
}

func TestAddAccumulates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := hooklinetest.Database(ctx, t, balances.Migrations())
	require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		require.NoError(t, balances.Add(ctx, tx, "a", 5))
		return balances.Add(ctx, tx, "a", 7)
	}))
	got, err := balances.Get(ctx, pool, "a")
	require.NoError(t, err)
	require.Equal(t, int64(12), got)
}

// TestSubscriptionEventsWriteStatusAndPlanThroughAnOrderedHandler applies
// subscription events directly (the worker's ordering is proven in
// internal/dispatch and internal/scenarios/ordering): each writes the
// status and the plan it carries, and the routes are registered Ordered.
func TestSubscriptionEventsWriteStatusAndPlanThroughAnOrderedHandler(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mux := hooklinetype.NewMux()
	balances.Register(mux)
	for _, typ := range balances.SubscriptionEvents {
		_, opts, ok := mux.Route("stripe", typ)
		require.True(t, ok, typ)
		require.True(t, opts.Ordered, typ)
	}
	pool := hooklinetest.Database(ctx, t, balances.Migrations())
	tx := hooklinetest.Tx(ctx, t, pool)

	ev := hooklinetest.NewEvent("stripe", "customer.subscription.created",
		[]byte(`{"data":{"object":{"id":"sub_1","customer":"cus_1","status":"incomplete","items":{"data":[{"price":{"id":"price_basic"}}]}}}}`))
	require.NoError(t, hooklinetest.Apply(ctx, tx, mux, ev))
	got, err := balances.GetSubscription(ctx, tx, "sub_1")
	require.NoError(t, err)
	require.Equal(t, balances.Subscription{Customer: "cus_1", Status: "incomplete", Plan: "price_basic", EventID: ev.EventID}, got)

	ev = hooklinetest.NewEvent("stripe", "customer.subscription.updated",
		[]byte(`{"data":{"object":{"id":"sub_1","customer":"cus_1","status":"active","plan":{"id":"price_pro"}}}}`))
	require.NoError(t, hooklinetest.Apply(ctx, tx, mux, ev))
	got, err = balances.GetSubscription(ctx, tx, "sub_1")
	require.NoError(t, err)
	require.Equal(t, balances.Subscription{Customer: "cus_1", Status: "active", Plan: "price_pro", EventID: ev.EventID}, got)

	for _, body := range []string{`{"data":{"object":{"id":"sub_1","customer":"cus_1"}}}`, `{"data":[]}`} {
		err := hooklinetest.Apply(ctx, tx, mux, hooklinetest.NewEvent("stripe", "customer.subscription.updated", []byte(body)))
		require.True(t, hooklinetype.IsPermanent(err), "%s: want a permanent error, got %v", body, err)
		require.NotContains(t, err.Error(), "cus_1")
	}
}
