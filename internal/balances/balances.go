// Package balances is Hookline's example business logic: it keeps account
// balances in the account_balances table from Stripe charges and bank
// transfers.
//
// It is registered by default so that `make run` shows the pipeline doing
// real work, and the tests use it because its effects are additions: an
// event applied twice shows at once as a wrong balance. Replace it with your
// own handlers in cmd/worker/handlers.go.
package balances

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/hookline/hookline/internal/dispatch"
	"github.com/hookline/hookline/internal/inbox"
)

// Register adds the example handlers to mux.
func Register(mux *dispatch.Mux) {
	mux.HandleFunc("stripe", "charge.succeeded", chargeSucceeded)
	mux.HandleFunc("bank", "transfer.settled", transfer(+1))
	mux.HandleFunc("bank", "transfer.reversed", transfer(-1))
}

// chargeSucceeded credits "stripe:<customer>" with the charge amount.
func chargeSucceeded(ctx context.Context, tx pgx.Tx, ev inbox.Event) error {
	var body struct {
		Data struct {
			Object struct {
				Amount   *int64 `json:"amount"`
				Customer string `json:"customer"`
			} `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(ev.Payload, &body); err != nil {
		return dispatch.Permanent(fmt.Errorf("decode charge: %w", err))
	}
	obj := body.Data.Object
	if obj.Amount == nil || obj.Customer == "" {
		return dispatch.Permanent(errors.New("charge has no data.object.amount or data.object.customer"))
	}
	return Add(ctx, tx, "stripe:"+obj.Customer, *obj.Amount)
}

// transfer returns a handler that adds sign*amount_cents to "bank:<account>".
func transfer(sign int64) dispatch.HandlerFunc {
	return func(ctx context.Context, tx pgx.Tx, ev inbox.Event) error {
		var body struct {
			Account     string `json:"account"`
			AmountCents *int64 `json:"amount_cents"`
		}
		if err := json.Unmarshal(ev.Payload, &body); err != nil {
			return dispatch.Permanent(fmt.Errorf("decode transfer: %w", err))
		}
		if body.Account == "" || body.AmountCents == nil {
			return dispatch.Permanent(errors.New("transfer has no account or amount_cents"))
		}
		return Add(ctx, tx, "bank:"+body.Account, sign**body.AmountCents)
	}
}

// Add adds cents to account's balance, creating the account at zero first.
func Add(ctx context.Context, tx pgx.Tx, account string, cents int64) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO account_balances (account, balance_cents) VALUES ($1, $2)
		ON CONFLICT (account) DO UPDATE SET balance_cents = account_balances.balance_cents + EXCLUDED.balance_cents`,
		account, cents)
	if err != nil {
		return fmt.Errorf("add %d to balance of %s: %w", cents, account, err)
	}
	return nil
}

// Get returns account's balance, or 0 if it has none. Tests and the demo use it.
func Get(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, account string) (int64, error) {
	var cents int64
	err := q.QueryRow(ctx, `SELECT balance_cents FROM account_balances WHERE account = $1`, account).Scan(&cents)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("get balance of %s: %w", account, err)
	}
	return cents, nil
}
