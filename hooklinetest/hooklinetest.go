// Package hooklinetest tests Hookline handlers against a real Postgres, as
// rivertest does for River workers. A test gets a database (Database) or
// brings its own, opens a transaction that is rolled back when it ends
// (Tx), applies events to its handler the way the worker does (Apply,
// ApplyBatch), and reads the effect back through the same transaction.
//
//	func TestInvoicePaidMarksTheInvoice(t *testing.T) {
//		ctx := context.Background()
//		tx := hooklinetest.Tx(ctx, t, hooklinetest.Database(ctx, t, invoices.Migrations()))
//		ev := hooklinetest.NewEvent("stripe", "invoice.paid", []byte(`{"data":{"object":{"id":"in_1"}}}`))
//		require.NoError(t, hooklinetest.Apply(ctx, tx, invoices.NewMux(), ev))
//		// query tx for the effect
//	}
package hooklinetest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookline/hookline/hooklinetype"
)

// Tx begins a transaction on pool and rolls it back when tb's test ends,
// so that what handlers write through it is visible to the test and gone
// afterwards. The transaction is the test's: it must not be used by two
// goroutines at once.
func Tx(ctx context.Context, tb testing.TB, pool *pgxpool.Pool) pgx.Tx {
	tb.Helper()
	tx, err := pool.Begin(ctx)
	if err != nil {
		tb.Fatalf("hooklinetest: begin transaction: %v", err)
	}
	tb.Cleanup(func() { _ = tx.Rollback(context.WithoutCancel(ctx)) })
	return tx
}

// Apply runs h on ev within tx as the worker does: in a nested
// transaction (a savepoint) that is rolled back if h fails, so that a
// failed handler leaves no effect behind, as in production where its whole
// transaction rolls back. It returns h's error, which hookline.IsPermanent
// classifies as the worker would: permanent errors cancel the event's job,
// others retry it.
//
// A Mux is a Handler, so h may be the application's whole Mux; an event no
// handler is registered for then goes to its NotFound.
//
// Apply always runs the handler: the stale-event guard and the per-object
// lock of an Ordered handler are the worker's. To test them, store events
// with Enqueue (setting Object and Time) and run a real worker.
func Apply(ctx context.Context, tx pgx.Tx, h hooklinetype.Handler, ev hooklinetype.Event) error {
	return nested(ctx, tx, fmt.Sprintf("event %s/%s (%s)", ev.Source, ev.EventID, ev.Type), func(tx pgx.Tx) error {
		return h.Handle(ctx, tx, ev)
	})
}

// ApplyBatch runs h.HandleBatch on evs within tx, as the worker does for a
// group of events that share a transaction, rolling back its effects if it
// fails. The worker routes only events of one registration to one
// HandleBatch call; so should a test.
func ApplyBatch(ctx context.Context, tx pgx.Tx, h hooklinetype.BatchHandler, evs []hooklinetype.Event) error {
	return nested(ctx, tx, fmt.Sprintf("batch of %d events", len(evs)), func(tx pgx.Tx) error {
		return h.HandleBatch(ctx, tx, evs)
	})
}

// ErrTransactionEnded is returned by Apply and ApplyBatch when the handler
// committed or rolled back the transaction it was given. The worker's
// transaction also records the event as applied, so a handler must leave
// ending it to the worker.
var ErrTransactionEnded = errors.New("handler ended the transaction it was given")

// ErrFailedStatement is returned by Apply and ApplyBatch when the handler
// returned nil although a statement failed in its transaction. Postgres
// refuses every statement after a failed one, so in the worker the commit
// would fail and the event be retried until it runs out of attempts.
var ErrFailedStatement = errors.New("handler returned nil after a statement failed in its transaction")

func nested(ctx context.Context, tx pgx.Tx, what string, fn func(pgx.Tx) error) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("hooklinetest: begin savepoint for %s: %w", what, err)
	}
	herr := fn(sp)
	if herr == nil {
		// A handler that swallows a failed statement's error returns nil
		// with its transaction aborted: every later statement, the
		// worker's COMMIT included, fails. Probing before the release
		// lets the savepoint still be rolled back, so the test's
		// transaction stays usable.
		if _, err := sp.Exec(ctx, "SELECT 1"); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
			herr = fmt.Errorf("%s: %w (%v)", what, ErrFailedStatement, err)
		}
	}
	if herr != nil {
		if err := sp.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
			return fmt.Errorf("hooklinetest: roll back %s after %w: %v", what, herr, err)
		}
		return herr
	}
	if err := sp.Commit(ctx); err != nil {
		if errors.Is(err, pgx.ErrTxClosed) {
			return fmt.Errorf("%s: %w", what, ErrTransactionEnded)
		}
		return fmt.Errorf("hooklinetest: release savepoint for %s: %w", what, err)
	}
	return nil
}

// NewEvent returns an event as the worker hands it to a handler: the given
// source, type and payload, a fresh EventID ("evt_test_" and 16 hex
// digits) and InboxID, and ReceivedAt and Time now. Set other fields on
// the result (APIVersion, Headers, Object, Time) as the handler needs.
func NewEvent(source, eventType string, payload []byte) hooklinetype.Event {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	n := binary.BigEndian.Uint64(b[:]) >> 1
	now := time.Now()
	return hooklinetype.Event{
		InboxID:    int64(n),
		Source:     source,
		EventID:    fmt.Sprintf("evt_test_%016x", n),
		Type:       eventType,
		Payload:    payload,
		Headers:    map[string]string{},
		ReceivedAt: now,
		Time:       now,
	}
}
