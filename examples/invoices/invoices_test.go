package invoices_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline"
	"github.com/hookline/hookline/hooklinetest"

	"github.com/hookline/hookline/examples/invoices"
)

func paidEvent(invoiceID, customer string, cents int64) []byte {
	return fmt.Appendf(nil, `{"id":"evt_%s","object":"event","type":"invoice.paid","api_version":"2023-10-16",
		"data":{"object":{"id":%q,"object":"invoice","customer":%q,"amount_paid":%d,"currency":"eur",
		"status_transitions":{"paid_at":1700000000}}}}`, invoiceID, invoiceID, customer, cents)
}

type paid struct {
	customer string
	cents    int64
	currency string
	eventID  string
	paidAt   time.Time
}

func lookup(t *testing.T, tx pgx.Tx, invoiceID string) (paid, bool) {
	t.Helper()
	var p paid
	err := tx.QueryRow(context.Background(),
		`SELECT customer_id, amount_paid, currency, event_id, paid_at FROM paid_invoices WHERE invoice_id = $1`, invoiceID,
	).Scan(&p.customer, &p.cents, &p.currency, &p.eventID, &p.paidAt)
	if err == pgx.ErrNoRows {
		return p, false
	}
	require.NoError(t, err)
	return p, true
}

func TestInvoicePaid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := hooklinetest.Database(ctx, t, invoices.Migrations())
	mux := hookline.NewMux()
	invoices.Register(mux)

	t.Run("a paid invoice is recorded from the event", func(t *testing.T) {
		t.Parallel()
		tx := hooklinetest.Tx(ctx, t, pool)
		ev := hooklinetest.NewEvent("stripe", "invoice.paid", paidEvent("in_1", "cus_1", 2500))
		require.NoError(t, hooklinetest.Apply(ctx, tx, mux, ev))
		got, ok := lookup(t, tx, "in_1")
		require.True(t, ok)
		require.Equal(t, paid{customer: "cus_1", cents: 2500, currency: "eur", eventID: ev.EventID, paidAt: time.Unix(1700000000, 0)},
			paid{got.customer, got.cents, got.currency, got.eventID, got.paidAt.Local()})
	})

	t.Run("a second event for the same invoice changes nothing", func(t *testing.T) {
		t.Parallel()
		tx := hooklinetest.Tx(ctx, t, pool)
		first := hooklinetest.NewEvent("stripe", "invoice.paid", paidEvent("in_2", "cus_1", 2500))
		again := hooklinetest.NewEvent("stripe", "invoice.paid", paidEvent("in_2", "cus_1", 9999))
		require.NoError(t, hooklinetest.Apply(ctx, tx, mux, first))
		require.NoError(t, hooklinetest.Apply(ctx, tx, mux, again))
		got, _ := lookup(t, tx, "in_2")
		require.Equal(t, first.EventID, got.eventID)
		require.EqualValues(t, 2500, got.cents)
	})

	for _, tt := range []struct {
		name, body string
	}{
		{"a body that is not a Stripe event fails for good", `not json`},
		{"an invoice without a customer fails for good", `{"type":"invoice.paid","data":{"object":{"id":"in_3","object":"invoice"}}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tx := hooklinetest.Tx(ctx, t, pool)
			err := hooklinetest.Apply(ctx, tx, mux, hooklinetest.NewEvent("stripe", "invoice.paid", []byte(tt.body)))
			require.True(t, hookline.IsPermanent(err), "want a permanent error, got %v", err)
		})
	}

	t.Run("other invoice events are completed without effect", func(t *testing.T) {
		t.Parallel()
		tx := hooklinetest.Tx(ctx, t, pool)
		require.NoError(t, hooklinetest.Apply(ctx, tx, mux, hooklinetest.NewEvent("stripe", "invoice.voided", paidEvent("in_4", "cus_1", 1))))
		_, ok := lookup(t, tx, "in_4")
		require.False(t, ok)
	})
}
