// Command receiver accepts signed webhooks over HTTP, verifies them, and
// stores each with its processing job in one Postgres transaction before
// answering 2xx.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/dbpool"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/logging"
	"github.com/hookline/hookline/internal/metrics"
	"github.com/hookline/hookline/internal/receiver"
	"github.com/hookline/hookline/internal/shed"
	"github.com/hookline/hookline/internal/sources"
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
	MaxConns        int           `env:"DATABASE_MAX_CONNS" envDefault:"0"`
	Addr            string        `env:"RECEIVER_ADDR" envDefault:":8080"`
	SourcesFile     string        `env:"HOOKLINE_SOURCES"`
	StripeTolerance time.Duration `env:"STRIPE_TIMESTAMP_TOLERANCE" envDefault:"5m"`
	MaxBodyBytes    int64         `env:"MAX_BODY_BYTES" envDefault:"1048576"`
	IngestMode      string        `env:"INGEST_MODE" envDefault:"batch"`
	BatchMaxSize    int           `env:"INGEST_BATCH_MAX_SIZE" envDefault:"100"`
	BatchMaxWait    time.Duration `env:"INGEST_BATCH_MAX_WAIT" envDefault:"2ms"`
	BatchFlushers   int           `env:"INGEST_BATCH_FLUSHERS" envDefault:"4"`
	IngestTimeout   time.Duration `env:"INGEST_TIMEOUT" envDefault:"5s"`
	NotifyCooldown  time.Duration `env:"INGEST_NOTIFY_COOLDOWN" envDefault:"10ms"`
	RetryAfter      time.Duration `env:"RETRY_AFTER" envDefault:"5s"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"25s"`
	DebugAddr       string        `env:"RECEIVER_DEBUG_ADDR"`
	LogFormat       string        `env:"LOG_FORMAT" envDefault:"json"`
	LogLevel        slog.Level    `env:"LOG_LEVEL" envDefault:"info"`
}

func run(ctx context.Context, _ []string, getenv func(string) string, stderr io.Writer) error {
	var cfg Config
	if err := config.Load(getenv, &cfg); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	logger, err := logging.New(stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return fmt.Errorf("LOG_FORMAT: %w", err)
	}
	// Without a sources file, STRIPE_WEBHOOK_SECRET and BANK_WEBHOOK_SECRET
	// (or their _FILE forms) declare the stripe and bank sources.
	srcs, summaries, err := sources.Load(getenv, cfg.SourcesFile, cfg.StripeTolerance)
	if err != nil {
		return err
	}
	for _, s := range summaries {
		logger.Info("source", "name", s.Name, "path", s.Path, "type", s.Type, "secret_labels", s.SecretLabels)
	}

	// The pool connects lazily: the receiver starts, and reports not ready,
	// while the database is down, rather than crash-looping.
	// Batch mode needs a connection per flusher, plus headroom for
	// readiness probes; single mode, one per request in flight.
	autoConns := cfg.BatchFlushers + 2
	if cfg.IngestMode == "single" {
		autoConns = 16
	}
	pool, err := dbpool.New(ctx, cfg.DatabaseURL, cfg.MaxConns, autoConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	// An insert-only River client: never started, it only enqueues. Its
	// FetchCooldown also spaces the NOTIFYs that wake the workers: River's
	// 100ms default delayed each event by ~50ms on average, end to end.
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{FetchCooldown: cfg.NotifyCooldown, Logger: logger})
	if err != nil {
		return fmt.Errorf("create river client: %w", err)
	}

	// This process's own registry: nothing is registered globally.
	reg := metrics.NewRegistry()

	var ing receiver.Ingester
	switch cfg.IngestMode {
	case "single":
		ing = ingest.NewSingle(pool, rc)
	case "batch":
		b := ingest.NewBatcher(pool, rc, logger, ingest.BatchOptions{
			MaxSize: cfg.BatchMaxSize, MaxWait: cfg.BatchMaxWait, Flushers: cfg.BatchFlushers, Timeout: cfg.IngestTimeout,
			Observer: metrics.NewIngest(reg),
		})
		// Runs after the HTTP server has drained: flush what its last
		// requests left in the open batch.
		defer func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.IngestTimeout)
			defer cancel()
			if err := b.Close(ctx); err != nil {
				logger.Error("flush on shutdown", "error", err)
			}
		}()
		ing = b
	}

	// Shed limits (hookctl shed) are re-read every second.
	limiter := shed.NewLimiter()
	go limiter.Run(ctx, pool, time.Second, logger)

	handler := receiver.New(logger, srcs, ing, pool, receiver.Options{
		Shed:          limiter,
		MaxBodyBytes:  cfg.MaxBodyBytes,
		IngestTimeout: cfg.IngestTimeout,
		RetryAfter:    cfg.RetryAfter,
		Recorder:      metrics.NewReceiver(reg),
		Metrics:       metrics.Handler(reg, logger),
	})
	if cfg.DebugAddr != "" {
		go serveDebug(logger, cfg.DebugAddr)
	}
	logger.Info("ingest mode", "mode", cfg.IngestMode, "batch_max_size", cfg.BatchMaxSize, "batch_max_wait", cfg.BatchMaxWait, "batch_flushers", cfg.BatchFlushers)
	return serve(ctx, logger, receiver.NewServer(cfg.Addr, handler), cfg.ShutdownTimeout)
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

func (c Config) validate() error {
	switch {
	case c.MaxBodyBytes <= 0:
		return fmt.Errorf("MAX_BODY_BYTES=%d must be positive", c.MaxBodyBytes)
	case c.IngestMode != "batch" && c.IngestMode != "single":
		return fmt.Errorf("INGEST_MODE=%q: want batch or single", c.IngestMode)
	case c.BatchMaxSize < 1 || c.BatchMaxSize > 10_000:
		return fmt.Errorf("INGEST_BATCH_MAX_SIZE=%d out of range [1, 10000]", c.BatchMaxSize)
	case c.BatchMaxWait <= 0:
		return fmt.Errorf("INGEST_BATCH_MAX_WAIT=%s must be positive", c.BatchMaxWait)
	case c.IngestTimeout <= 0:
		return fmt.Errorf("INGEST_TIMEOUT=%s must be positive", c.IngestTimeout)
	case c.BatchFlushers < 1:
		return fmt.Errorf("INGEST_BATCH_FLUSHERS=%d must be at least 1", c.BatchFlushers)
	}
	return nil
}

// serveDebug serves Go's profiler on its own address, which must never be
// exposed beyond the host: profiles show memory, and so may show secrets.
func serveDebug(logger *slog.Logger, addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	logger.Warn("serving pprof; keep this address private", "addr", addr)
	if err := srv.ListenAndServe(); err != nil {
		logger.Error("debug server", "addr", addr, "error", err)
	}
}
