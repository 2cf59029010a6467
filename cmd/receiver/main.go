// Command receiver accepts signed webhooks over HTTP, verifies them, and
// stores each with its processing job in one Postgres transaction before
// answering 2xx, with hookline.RunReceiver.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hookline/hookline"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := hookline.LoadReceiverConfig(os.Getenv)
	if err == nil {
		applyGC(os.Getenv, cfg.BodyBytesInFlight)
		err = hookline.RunReceiver(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "receiver: %v\n", err)
		os.Exit(1)
	}
}
