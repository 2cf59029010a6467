// Package hookline is a durable, idempotent pipeline for inbound webhooks:
// payment providers, banks and SaaS platforms POST signed events to its
// receiver, and its worker applies each one to an application's database
// exactly once.
//
// # The pipeline
//
// The receiver (RunReceiver) verifies each request's signature over the raw
// body, then stores the event in the inbox table and enqueues a River job
// for it in one Postgres transaction, and answers 2xx only after the
// commit. A redelivery of a stored event is answered 2xx with nothing
// enqueued. No business logic runs in the request.
//
// The worker (RunWorker) works those jobs. For each event it opens a
// transaction, hands it to the Handler registered for the event's source
// and type, marks the event's inbox row applied in the same transaction,
// and commits. A crash at any point leaves both undone or both done, so
// an event's effect is committed exactly once however often its job runs.
//
// # Business logic
//
// An application writes Handlers, registers them on a Mux, and runs the
// worker from its own main:
//
//	func main() {
//		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//		defer stop()
//		cfg, err := hookline.LoadWorkerConfig(os.Getenv)
//		if err != nil {
//			log.Fatal(err)
//		}
//		mux := hookline.NewMux()
//		mux.RegisterFunc("stripe", "invoice.paid", invoicePaid)
//		if err := hookline.RunWorker(ctx, cfg, mux); err != nil {
//			log.Fatal(err)
//		}
//	}
//
// A handler writes only through the transaction it is given. An error
// rolls its effects back and River retries the event with backoff; an
// error wrapped with Permanent cancels it instead. Events no handler is
// registered for go to the Mux's NotFound, which by default completes them
// without effect.
//
// Handlers bring their own tables, in goose migrations that the
// application's deploy applies after Hookline's with Migrate. Package
// hooklinetest runs a handler against a real Postgres in a transaction
// that is rolled back. An application that already runs a River client
// adds Hookline's worker to it with NewRiverWorker.
//
// examples/invoices in the repository is such an application, in a module
// of its own.
//
// # Stability
//
// Hookline is v0: its API may change between minor versions, and
// CHANGELOG.md says how. The database schema only moves forward, through
// Migrate.
package hookline
