// Package invoices is an application's own business logic, in a module of
// its own that imports Hookline as a library: when Stripe says an invoice
// was paid, it records the payment in its own table, paid_invoices.
//
// It is what a team writes instead of forking Hookline: handlers
// registered on a hookline.Mux (Register), migrations that its deploy
// applies with Hookline's (Migrations), a ten-line main
// (cmd/invoices-worker), and tests that run the handler against a real
// Postgres with hooklinetest.
package invoices

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v76"

	"github.com/hookline/hookline"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the module's migrations, to apply with Hookline's:
// hookline.Migrate(ctx, pool, invoices.Migrations()).
func Migrations() hookline.MigrationSet {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the directory is embedded above
	}
	return hookline.MigrationSet{Name: "invoices", FS: sub}
}

// Register adds the module's handlers to mux.
func Register(mux *hookline.Mux) {
	mux.RegisterFunc("stripe", "invoice.paid", invoicePaid)
}

// invoicePaid records an invoice's payment. The worker calls it at most
// once per event (Hookline's inbox row guards it), but Stripe may report
// one payment in two events, so a second report of an invoice already
// recorded changes nothing.
func invoicePaid(ctx context.Context, tx pgx.Tx, ev hookline.Event) error {
	var e stripe.Event
	if err := json.Unmarshal(ev.Payload, &e); err != nil {
		// A signed body that is not a Stripe event will never become one.
		return hookline.Permanent(fmt.Errorf("decode Stripe event: %w", err))
	}
	var inv stripe.Invoice
	if e.Data == nil || json.Unmarshal(e.Data.Raw, &inv) != nil {
		return hookline.Permanent(errors.New("decode data.object as an invoice"))
	}
	if inv.ID == "" || inv.Customer == nil || inv.Customer.ID == "" {
		return hookline.Permanent(errors.New("invoice without id or customer"))
	}
	paidAt := ev.ReceivedAt
	if inv.StatusTransitions != nil && inv.StatusTransitions.PaidAt > 0 {
		paidAt = time.Unix(inv.StatusTransitions.PaidAt, 0)
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO paid_invoices (invoice_id, customer_id, amount_paid, currency, event_id, paid_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (invoice_id) DO NOTHING`,
		inv.ID, inv.Customer.ID, inv.AmountPaid, string(inv.Currency), ev.EventID, paidAt)
	if err != nil {
		return fmt.Errorf("record payment of invoice %s: %w", inv.ID, err)
	}
	return nil
}
