// Command worker runs River workers that apply the business effect of each
// stored event, committing the effect and the job's completion together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/dbpool"
	"github.com/hookline/hookline/internal/dispatch"
	"github.com/hookline/hookline/internal/health"
	"github.com/hookline/hookline/internal/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "worker: %v\n", err)
		os.Exit(1)
	}
}

// Config is the worker's configuration, read from the environment.
type Config struct {
	DatabaseURL       string        `env:"DATABASE_URL,required,notEmpty"`
	MaxConns          int           `env:"DATABASE_MAX_CONNS" envDefault:"0"`
	Addr              string        `env:"WORKER_ADDR" envDefault:":9091"`
	Concurrency       int           `env:"WORKER_CONCURRENCY" envDefault:"50"`
	JobTimeout        time.Duration `env:"WORKER_JOB_TIMEOUT" envDefault:"1m"`
	RescueAfter       time.Duration `env:"WORKER_RESCUE_AFTER" envDefault:"5m"`
	SoftStopTimeout   time.Duration `env:"WORKER_SOFT_STOP_TIMEOUT" envDefault:"20s"`
	HardStopTimeout   time.Duration `env:"WORKER_HARD_STOP_TIMEOUT" envDefault:"5s"`
	FetchCooldown     time.Duration `env:"WORKER_FETCH_COOLDOWN" envDefault:"10ms"`
	FetchPollInterval time.Duration `env:"WORKER_FETCH_POLL_INTERVAL" envDefault:"1s"`
	LogFormat         string        `env:"LOG_FORMAT" envDefault:"json"`
	LogLevel          slog.Level    `env:"LOG_LEVEL" envDefault:"info"`
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := loadConfig(args, getenv)
	if err != nil {
		return err
	}
	logger, err := logging.New(stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return fmt.Errorf("LOG_FORMAT: %w", err)
	}

	// A connection per job in flight, plus River's own: fetching,
	// completing, leader election, maintenance.
	pool, err := dbpool.New(ctx, cfg.DatabaseURL, cfg.MaxConns, cfg.Concurrency+5)
	if err != nil {
		return err
	}
	defer pool.Close()

	mux := dispatch.NewMux()
	registerHandlers(mux)
	workers := river.NewWorkers()
	river.AddWorker(workers, dispatch.NewWorker(pool, mux, logger))

	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		FetchCooldown:        cfg.FetchCooldown,
		FetchPollInterval:    cfg.FetchPollInterval,
		JobTimeout:           cfg.JobTimeout,
		Logger:               logger,
		Queues:               map[string]river.QueueConfig{dispatch.Queue: {MaxWorkers: cfg.Concurrency}},
		RescueStuckJobsAfter: cfg.RescueAfter,
		Workers:              workers,
	})
	if err != nil {
		return fmt.Errorf("create river client: %w", err)
	}

	admin := &http.Server{Addr: cfg.Addr, Handler: newAdmin(pool), ReadHeaderTimeout: 5 * time.Second}
	adminErr := make(chan error, 1)
	go func() { adminErr <- admin.ListenAndServe() }()
	defer admin.Close()

	// Start with a context that outlives ctx: River treats a cancelled start
	// context as a hard stop, and the shutdown below wants a soft one first.
	if err := rc.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start river client: %w", err)
	}
	logger.Info("worker started", "queue", dispatch.Queue, "concurrency", cfg.Concurrency, "admin_addr", cfg.Addr)

	select {
	case <-ctx.Done():
	case err := <-adminErr:
		stopRiver(context.WithoutCancel(ctx), logger, rc, cfg)
		return fmt.Errorf("admin server on %s: %w", cfg.Addr, err)
	}
	return stopRiver(context.WithoutCancel(ctx), logger, rc, cfg)
}

// loadConfig reads the environment, then lets flags override it.
func loadConfig(args []string, getenv func(string) string) (Config, error) {
	var cfg Config
	if err := config.Load(getenv, &cfg); err != nil {
		return cfg, err
	}
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "jobs worked at once by this process (overrides WORKER_CONCURRENCY)")
	if err := fs.Parse(args[1:]); err != nil {
		return cfg, err
	}
	if cfg.Concurrency < 1 || cfg.Concurrency > 10_000 {
		return cfg, fmt.Errorf("concurrency %d out of range [1, 10000]", cfg.Concurrency)
	}
	if cfg.JobTimeout <= 0 {
		return cfg, fmt.Errorf("WORKER_JOB_TIMEOUT=%s must be positive", cfg.JobTimeout)
	}
	// A job still running when the rescuer deems it stuck would be started a
	// second time while the first attempt may yet commit.
	if cfg.RescueAfter <= cfg.JobTimeout {
		return cfg, fmt.Errorf("WORKER_RESCUE_AFTER=%s must be longer than WORKER_JOB_TIMEOUT=%s", cfg.RescueAfter, cfg.JobTimeout)
	}
	return cfg, nil
}

// stopRiver stops fetching and waits for jobs in flight, up to the soft
// timeout; then it cancels the jobs still running, which River returns to
// the queue as available, and waits a little longer for them to unwind.
func stopRiver(ctx context.Context, logger *slog.Logger, rc *river.Client[pgx.Tx], cfg Config) error {
	logger.Info("shutting down: finishing jobs in flight", "timeout", cfg.SoftStopTimeout)
	softCtx, cancel := context.WithTimeout(ctx, cfg.SoftStopTimeout)
	defer cancel()
	err := rc.Stop(softCtx)
	if err == nil {
		logger.Info("worker stopped")
		return nil
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stop river client: %w", err)
	}
	logger.Warn("soft stop timed out; cancelling jobs in flight", "timeout", cfg.HardStopTimeout)
	hardCtx, cancel := context.WithTimeout(ctx, cfg.HardStopTimeout)
	defer cancel()
	if err := rc.StopAndCancel(hardCtx); err != nil {
		return fmt.Errorf("hard stop river client: %w", err)
	}
	logger.Info("worker stopped after cancelling jobs")
	return nil
}

// newAdmin returns the worker's admin HTTP handler.
func newAdmin(db health.Pinger) http.Handler {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.GET("/healthz", health.Live())
	e.GET("/readyz", health.Ready(db))
	return e
}
