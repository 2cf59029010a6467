// Package balances is Hookline's example business logic: it keeps account
// balances in the account_balances table from Stripe charges and bank
// transfers, and each Stripe subscription's status and plan in the
// subscriptions table, through an ordered handler.
//
// It is registered by default so that `make run` shows the pipeline doing
// real work, and the tests use it because its effects are additions: an
// event applied twice shows at once as a wrong balance. Its table comes
// with it, in migrations of its own (Migrations), outside Hookline's chain.
// An application replaces it with its own handlers and tables; see
// examples/invoices for one in a module of its own.
package balances

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hookline/hookline/hooklinetype"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the example's migrations, which create its tables,
// account_balances and subscriptions. A deploy applies them after Hookline's:
//
//	hookline.Migrate(ctx, pool, balances.Migrations())
func Migrations() hooklinetype.MigrationSet {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the directory is embedded above; fs.Sub fails only on a bad name
	}
	return hooklinetype.MigrationSet{Name: "balances", FS: sub}
}

// Register adds the example handlers to mux. They write one row through
// the event's transaction and never wait on anything else, so they let
// the worker group their events (HandlerOpts.Group); the balances' apply a
// group's events with one statement (hooklinetype.BatchHandler).
//
// The subscription handler is also Ordered: Stripe sends
// customer.subscription.* events out of order, and retries a failed one
// after newer ones succeeded, so each event's state is written only if no
// newer event of the same subscription (Event.Object, Stripe's
// data.object.id) has been applied. Its created, updated and deleted
// events share the subscription's order, so an updated event that
// overtook its created one is not overwritten by it.
func Register(mux *hooklinetype.Mux) {
	grouped := hooklinetype.HandlerOpts{Group: true}
	mux.RegisterWith("stripe", "charge.succeeded", credit(chargeSucceeded), grouped)
	mux.RegisterWith("bank", "transfer.settled", credit(transfer(+1)), grouped)
	mux.RegisterWith("bank", "transfer.reversed", credit(transfer(-1)), grouped)
	ordered := hooklinetype.HandlerOpts{Group: true, Ordered: true}
	for _, t := range SubscriptionEvents {
		mux.RegisterWith("stripe", t, hooklinetype.HandlerFunc(subscriptionChanged), ordered)
	}
}

// SubscriptionEvents are the Stripe event types whose subscription state
// the subscriptions table keeps.
var SubscriptionEvents = []string{"customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted"}

// subscriptionChanged writes the subscription's status and plan as the
// event carries them. The worker calls it only for an event newer than
// any applied for the subscription, so it overwrites unconditionally.
func subscriptionChanged(ctx context.Context, tx pgx.Tx, ev hooklinetype.Event) error {
	var body struct {
		Data struct {
			Object struct {
				ID       string `json:"id"`
				Customer string `json:"customer"`
				Status   string `json:"status"`
				// plan is set on subscriptions of one price; items holds
				// the prices of every subscription.
				Plan *struct {
					ID string `json:"id"`
				} `json:"plan"`
				Items struct {
					Data []struct {
						Price struct {
							ID string `json:"id"`
						} `json:"price"`
					} `json:"data"`
				} `json:"items"`
			} `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(ev.Payload, &body); err != nil {
		return hooklinetype.Permanent(fmt.Errorf("decode subscription: %s", decodeProblem(err)))
	}
	sub := body.Data.Object
	if sub.ID == "" || sub.Customer == "" || sub.Status == "" {
		return hooklinetype.Permanent(errors.New("subscription has no data.object.id, data.object.customer or data.object.status"))
	}
	var plan string
	switch {
	case sub.Plan != nil && sub.Plan.ID != "":
		plan = sub.Plan.ID
	case len(sub.Items.Data) > 0:
		plan = sub.Items.Data[0].Price.ID
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO subscriptions (id, customer, status, plan, event_id, event_time)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET customer = excluded.customer, status = excluded.status, plan = excluded.plan,
			event_id = excluded.event_id, event_time = excluded.event_time, updated_at = now()`,
		sub.ID, sub.Customer, sub.Status, plan, ev.EventID, ev.Time)
	if err != nil {
		return fmt.Errorf("write subscription of event %s: %w", ev.EventID, err)
	}
	return nil
}

// Subscription is a row of the subscriptions table.
type Subscription struct {
	Customer, Status, Plan, EventID string
}

// GetSubscription returns subscription id's row, or pgx.ErrNoRows. Tests
// and the demo use it.
func GetSubscription(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, id string) (Subscription, error) {
	var s Subscription
	err := q.QueryRow(ctx, `SELECT customer, status, plan, event_id FROM subscriptions WHERE id = $1`, id).
		Scan(&s.Customer, &s.Status, &s.Plan, &s.EventID)
	if err != nil {
		return Subscription{}, fmt.Errorf("get subscription %s: %w", id, err)
	}
	return s, nil
}

// MaxCents is the largest amount one event may move: ten billion in the
// currency's unit. A signed body can still carry any number, and one that
// would overflow a balance must fail for good, not retry for weeks.
const MaxCents = 1_000_000_000_000

// The handlers' errors go into logs and into River's job errors, which
// operators and River UI read. They name the field at fault, never its
// value: body values are the sender's data (a customer id, an amount).

// A posting is what one event does to one account.
type posting struct {
	account string
	cents   int64
}

// credit is a handler built from a function that reads an event's
// posting: Handle applies one, HandleBatch many with one statement.
type credit func(ev hooklinetype.Event) (posting, error)

// Handle implements hooklinetype.Handler.
func (c credit) Handle(ctx context.Context, tx pgx.Tx, ev hooklinetype.Event) error {
	p, err := c(ev)
	if err != nil {
		return err
	}
	return Add(ctx, tx, p.account, p.cents)
}

// HandleBatch implements hooklinetype.BatchHandler: it adds up the events'
// amounts per account, then writes every balance with one upsert.
func (c credit) HandleBatch(ctx context.Context, tx pgx.Tx, evs []hooklinetype.Event) error {
	sums := map[string]int64{}
	for _, ev := range evs {
		p, err := c(ev)
		if err != nil {
			return err
		}
		sums[p.account] += p.cents // at most 10^12 each: no overflow in a group
	}
	return addMany(ctx, tx, sums)
}

// chargeSucceeded credits "stripe:<customer>" with the charge amount.
func chargeSucceeded(ev hooklinetype.Event) (posting, error) {
	var body struct {
		Data struct {
			Object struct {
				Amount   *int64 `json:"amount"`
				Customer string `json:"customer"`
			} `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(ev.Payload, &body); err != nil {
		return posting{}, hooklinetype.Permanent(fmt.Errorf("decode charge: %s", decodeProblem(err)))
	}
	obj := body.Data.Object
	if obj.Amount == nil || obj.Customer == "" {
		return posting{}, hooklinetype.Permanent(errors.New("charge has no data.object.amount or data.object.customer"))
	}
	if *obj.Amount <= 0 || *obj.Amount > MaxCents {
		return posting{}, hooklinetype.Permanent(fmt.Errorf("charge's data.object.amount is out of range [1, %d]", MaxCents))
	}
	return posting{"stripe:" + obj.Customer, *obj.Amount}, nil
}

// transfer returns a function that posts sign*amount_cents to
// "bank:<account>".
func transfer(sign int64) func(ev hooklinetype.Event) (posting, error) {
	return func(ev hooklinetype.Event) (posting, error) {
		var body struct {
			Account     string `json:"account"`
			AmountCents *int64 `json:"amount_cents"`
		}
		if err := json.Unmarshal(ev.Payload, &body); err != nil {
			return posting{}, hooklinetype.Permanent(fmt.Errorf("decode transfer: %s", decodeProblem(err)))
		}
		if body.Account == "" || body.AmountCents == nil {
			return posting{}, hooklinetype.Permanent(errors.New("transfer has no account or amount_cents"))
		}
		if *body.AmountCents <= 0 || *body.AmountCents > MaxCents {
			return posting{}, hooklinetype.Permanent(fmt.Errorf("transfer's amount_cents is out of range [1, %d]", MaxCents))
		}
		return posting{"bank:" + body.Account, sign * *body.AmountCents}, nil
	}
}

// decodeProblem describes a JSON decoding error without the text of the
// value that caused it, which encoding/json quotes ("cannot unmarshal
// number 1e400 into ...").
func decodeProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return fmt.Sprintf("field %s cannot be decoded as %s", typeErr.Field, typeErr.Type)
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("invalid JSON at byte %d", syntaxErr.Offset)
	}
	return "invalid JSON"
}

// Add adds cents to account's balance, creating the account at zero first.
// A balance pushed out of bigint's range is a permanent error.
func Add(ctx context.Context, tx pgx.Tx, account string, cents int64) error {
	return addMany(ctx, tx, map[string]int64{account: cents})
}

// addMany adds each account's cents with one upsert. Accounts go in sorted
// order, so two transactions updating overlapping accounts lock them in the
// same order and cannot deadlock on them.
func addMany(ctx context.Context, tx pgx.Tx, sums map[string]int64) error {
	accounts := slices.Sorted(maps.Keys(sums))
	cents := make([]int64, len(accounts))
	for i, a := range accounts {
		cents[i] = sums[a]
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO account_balances (account, balance_cents)
		SELECT * FROM unnest($1::text[], $2::bigint[])
		ON CONFLICT (account) DO UPDATE SET balance_cents = account_balances.balance_cents + EXCLUDED.balance_cents`,
		accounts, cents)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == pgerrcode.NumericValueOutOfRange {
		return hooklinetype.Permanent(errors.New("balance would leave the range of bigint"))
	}
	if err != nil {
		return fmt.Errorf("update %d balances: %w", len(accounts), err)
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
