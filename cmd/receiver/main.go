// Command receiver accepts signed webhooks over HTTP, verifies them, and
// stores each with its processing job in one Postgres transaction before
// answering 2xx.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/logging"
	"github.com/hookline/hookline/internal/receiver"
	"github.com/hookline/hookline/internal/verify"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "receiver: %v\n", err)
		os.Exit(1)
	}
}

// Config is the receiver's configuration, read from the environment.
type Config struct {
	DatabaseURL     string        `env:"DATABASE_URL,required,notEmpty"`
	Addr            string        `env:"RECEIVER_ADDR" envDefault:":8080"`
	StripeSecrets   []string      `env:"STRIPE_WEBHOOK_SECRET"`
	StripeTolerance time.Duration `env:"STRIPE_TIMESTAMP_TOLERANCE" envDefault:"5m"`
	BankSecrets     []string      `env:"BANK_WEBHOOK_SECRET"`
	MaxBodyBytes    int64         `env:"MAX_BODY_BYTES" envDefault:"1048576"`
	IngestTimeout   time.Duration `env:"INGEST_TIMEOUT" envDefault:"5s"`
	RetryAfter      time.Duration `env:"RETRY_AFTER" envDefault:"5s"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"25s"`
	LogFormat       string        `env:"LOG_FORMAT" envDefault:"json"`
	LogLevel        slog.Level    `env:"LOG_LEVEL" envDefault:"info"`
}

func run(ctx context.Context, _ []string, getenv func(string) string, stderr io.Writer) error {
	var cfg Config
	if err := config.Load(getenv, &cfg); err != nil {
		return err
	}
	if cfg.MaxBodyBytes <= 0 {
		return fmt.Errorf("MAX_BODY_BYTES=%d must be positive", cfg.MaxBodyBytes)
	}
	logger, err := logging.New(stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return fmt.Errorf("LOG_FORMAT: %w", err)
	}
	sources, err := buildSources(cfg)
	if err != nil {
		return err
	}

	// The pool connects lazily: the receiver starts, and reports not ready,
	// while the database is down, rather than crash-looping.
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	defer pool.Close()
	// An insert-only River client: never started, it only enqueues.
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: logger})
	if err != nil {
		return fmt.Errorf("create river client: %w", err)
	}

	handler := receiver.New(logger, sources, ingest.NewSingle(pool, rc), pool, receiver.Options{
		MaxBodyBytes:  cfg.MaxBodyBytes,
		IngestTimeout: cfg.IngestTimeout,
		RetryAfter:    cfg.RetryAfter,
	})
	return serve(ctx, logger, receiver.NewServer(cfg.Addr, handler), cfg.ShutdownTimeout)
}

// buildSources turns the configured secrets into the receiver's sources. A
// source with no secret is a configuration error, not a source to skip.
func buildSources(cfg Config) ([]receiver.Source, error) {
	stripeSecrets := config.List(cfg.StripeSecrets)
	if len(stripeSecrets) == 0 {
		return nil, errors.New("STRIPE_WEBHOOK_SECRET (or STRIPE_WEBHOOK_SECRET_FILE) is not set: the stripe source needs at least one secret")
	}
	bankSecrets := config.List(cfg.BankSecrets)
	if len(bankSecrets) == 0 {
		return nil, errors.New("BANK_WEBHOOK_SECRET (or BANK_WEBHOOK_SECRET_FILE) is not set: the bank source needs at least one secret")
	}
	stripeV, err := verify.NewStripe(stripeSecrets, cfg.StripeTolerance)
	if err != nil {
		return nil, fmt.Errorf("STRIPE_TIMESTAMP_TOLERANCE=%s: %w", cfg.StripeTolerance, err)
	}
	bankV, err := verify.NewHMAC(verify.HMACHeader, bankSecrets)
	if err != nil {
		return nil, fmt.Errorf("bank source: %w", err)
	}
	return []receiver.Source{
		{Name: "stripe", Verifier: stripeV, KeepHeaders: []string{verify.StripeHeader, "Content-Type", "User-Agent"}},
		{Name: "bank", Verifier: bankV, KeepHeaders: []string{verify.HMACHeader, "Content-Type", "User-Agent"}},
	}, nil
}

// serve runs srv until ctx is cancelled, then stops accepting connections
// and lets the requests in flight finish, for at most timeout.
func serve(ctx context.Context, logger *slog.Logger, srv *http.Server, timeout time.Duration) error {
	errc := make(chan error, 1)
	go func() {
		logger.Info("receiver listening", "addr", srv.Addr)
		errc <- srv.ListenAndServe()
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("listen on %s: %w", srv.Addr, err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing requests in flight", "timeout", timeout)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("receiver stopped")
	return nil
}
