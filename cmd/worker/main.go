// Command worker applies the business effect of each stored event, through
// the example handlers (examples/balances), with hookline.RunWorker. An
// application with handlers of its own writes a main like this one.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hookline/hookline"
	"github.com/hookline/hookline/examples/balances"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv); err != nil {
		fmt.Fprintf(os.Stderr, "worker: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string) error {
	cfg, err := hookline.LoadWorkerConfig(getenv)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "jobs worked at once by this process (overrides WORKER_CONCURRENCY)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	mux := hookline.NewMux()
	balances.Register(mux)
	return hookline.RunWorker(ctx, cfg, mux)
}
