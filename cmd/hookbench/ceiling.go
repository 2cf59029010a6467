package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/hookline/hookline/internal/httpserver"
	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/logging"
	"github.com/hookline/hookline/internal/receiver"
	"github.com/hookline/hookline/internal/sources"
	"github.com/hookline/hookline/internal/verify"
)

// serveCeiling runs the verify-only server: the receiver's own echo stack,
// routes, body limit, signature check and envelope parsing, with an ingester
// that acknowledges without touching a database. It is the ceiling the real
// receiver is measured against, and lives here, not in cmd/receiver, so that
// no production binary can ever be configured to acknowledge unstored events.
func serveCeiling(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("ceiling-server", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	secret := fs.String("bank-secret", "", "bank HMAC secret")
	stripeSecret := fs.String("stripe-secret", "", "Stripe webhook secret")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The receiver's own sources, built as it builds them from its
	// environment.
	env := map[string]string{"BANK_WEBHOOK_SECRET": *secret, "STRIPE_WEBHOOK_SECRET": *stripeSecret}
	srcs, _, err := sources.Load(func(k string) string { return env[k] }, "", verify.DefaultStripeTolerance)
	if err != nil {
		return fmt.Errorf("sources: %w", err)
	}
	logger, err := logging.New(stderr, "json", slog.LevelInfo)
	if err != nil {
		return err
	}
	h := receiver.New(logger, srcs, discard{}, alwaysUp{}, receiver.Options{MaxBodyBytes: 1 << 20, IngestTimeout: 5 * time.Second, RetryAfter: 5 * time.Second})
	srv := httpserver.New(*addr, h, httpserver.Timeouts{})
	go func() { <-ctx.Done(); _ = srv.Shutdown(context.WithoutCancel(ctx)) }()
	if err := srv.ListenAndServe(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

type discard struct{}

func (discard) Ingest(_ context.Context, ev inbox.NewEvent) (ingest.Outcome, error) {
	if ev.Release != nil {
		ev.Release()
	}
	return ingest.Accepted, nil
}

type alwaysUp struct{}

func (alwaysUp) Ping(context.Context) error { return nil }
