package hookline_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"testing/fstest"

	"github.com/jackc/pgx/v5"

	"github.com/hookline/hookline"
	"github.com/hookline/hookline/internal/pgtest"
)

// An application's deploy applies River's and Hookline's migrations, then
// its own, each set in a version table of its own.
func ExampleMigrate() {
	ctx := context.Background()
	db, drop, err := pgtest.Open() // a database of its own, already migrated by Hookline
	if err != nil {
		log.Fatal(err)
	}
	defer drop()

	invoices := hookline.MigrationSet{Name: "invoices", FS: fstest.MapFS{
		"00001_paid_invoices.sql": {Data: []byte(`-- +goose Up
CREATE TABLE paid_invoices (invoice_id text PRIMARY KEY, amount_paid bigint NOT NULL);
`)},
	}}
	res, err := hookline.Migrate(ctx, db.Pool, invoices)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("invoices versions applied:", res.Sets["invoices"])

	res, err = hookline.Migrate(ctx, db.Pool, invoices)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("applied on the second run:", len(res.River)+len(res.Hookline)+len(res.Sets))

	// Output:
	// invoices versions applied: [1]
	// applied on the second run: 0
}

// A Mux routes each event to the handler registered for its source and
// type; the rest go to its NotFound.
func ExampleMux() {
	mux := hookline.NewMux()
	mux.RegisterFunc("stripe", "invoice.paid", func(ctx context.Context, tx pgx.Tx, ev hookline.Event) error {
		return nil
	})
	mux.NotFound = hookline.HandlerFunc(func(ctx context.Context, tx pgx.Tx, ev hookline.Event) error {
		return hookline.Permanent(fmt.Errorf("no handler for %s %s", ev.Source, ev.Type))
	})

	for _, typ := range []string{"invoice.paid", "invoice.voided"} {
		err := mux.Handle(context.Background(), nil, hookline.Event{Source: "stripe", Type: typ})
		fmt.Printf("%s: error %v, permanent %t\n", typ, err, hookline.IsPermanent(err))
	}

	// Output:
	// invoice.paid: error <nil>, permanent false
	// invoice.voided: error permanent: no handler for stripe invoice.voided, permanent true
}

// A worker with an application's own handlers, in its main: configured by
// the environment, as the stock worker is (docs/CONFIGURATION.md).
func ExampleRunWorker() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := hookline.LoadWorkerConfig(os.Getenv)
	if err != nil {
		log.Fatal(err)
	}
	mux := hookline.NewMux()
	mux.RegisterFunc("stripe", "invoice.paid", func(ctx context.Context, tx pgx.Tx, ev hookline.Event) error {
		_, err := tx.Exec(ctx, `INSERT INTO paid_invoices (invoice_id, amount_paid) VALUES ($1, 0)`, ev.EventID)
		return err
	})
	// RunWorker returns nil after a clean shutdown on SIGTERM.
	if err := hookline.RunWorker(ctx, cfg, mux); err != nil {
		log.Fatal(err)
	}
}
