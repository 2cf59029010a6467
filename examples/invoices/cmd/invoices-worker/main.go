// Command invoices-worker is the invoices module's worker: Hookline's,
// with the module's handlers. Its configuration is the stock worker's
// (docs/CONFIGURATION.md in Hookline).
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/hookline/hookline"

	"github.com/hookline/hookline/examples/invoices"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := hookline.LoadWorkerConfig(os.Getenv)
	if err != nil {
		log.Fatal(err)
	}
	mux := hookline.NewMux()
	invoices.Register(mux)
	if err := hookline.RunWorker(ctx, cfg, mux); err != nil {
		log.Fatal(err)
	}
}
