package dispatch_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/dispatch"
	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/pgtest"
)

// Example shows how business logic plugs in: register a Handler for a
// source and event type, and write its effect through the transaction it is
// given, which also completes the job. It runs against a real database.
func Example() {
	ctx := context.Background()
	db, drop, err := pgtest.Open()
	if err != nil {
		panic(err)
	}
	defer drop() //nolint:errcheck

	// Business logic: count orders per customer, in the event's transaction.
	_, err = db.Pool.Exec(ctx, `CREATE TABLE order_counts (customer text PRIMARY KEY, n int NOT NULL)`)
	if err != nil {
		panic(err)
	}
	mux := hooklinetype.NewMux()
	mux.RegisterFunc("shop", "order.created", func(ctx context.Context, tx pgx.Tx, ev hooklinetype.Event) error {
		_, err := tx.Exec(ctx, `INSERT INTO order_counts VALUES ('cus_1', 1)
			ON CONFLICT (customer) DO UPDATE SET n = order_counts.n + 1`)
		return err
	})

	// The worker side: a River client that runs dispatch.Worker.
	workers := river.NewWorkers()
	river.AddWorker(workers, dispatch.NewWorker(db.Pool, mux, slog.New(slog.DiscardHandler), dispatch.WorkerOpts{}))
	client, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{
		FetchCooldown: 10 * time.Millisecond,
		Logger:        slog.New(slog.DiscardHandler),
		Queues:        map[string]river.QueueConfig{hooklinetype.Queue: {MaxWorkers: 2}},
		Workers:       workers,
	})
	if err != nil {
		panic(err)
	}
	completed, cancel := client.Subscribe(river.EventKindJobCompleted)
	defer cancel()
	if err := client.Start(ctx); err != nil {
		panic(err)
	}
	defer client.Stop(ctx) //nolint:errcheck

	// The receiver side: the same event delivered twice.
	in := ingest.NewSingle(db.Pool, client)
	for range 2 {
		outcome, err := in.Ingest(ctx, inbox.NewEvent{Source: "shop", EventID: "ord_1", Type: "order.created", Payload: []byte(`{}`)})
		if err != nil {
			panic(err)
		}
		fmt.Println("delivery:", outcome)
	}
	<-completed

	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT n FROM order_counts`).Scan(&n); err != nil {
		panic(err)
	}
	fmt.Println("orders counted:", n)
	// Output:
	// delivery: accepted
	// delivery: duplicate
	// orders counted: 1
}
