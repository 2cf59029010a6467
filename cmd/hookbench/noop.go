package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/dbpool"
	"github.com/hookline/hookline/internal/dispatch"
	"github.com/hookline/hookline/internal/httpserver"
)

// noOpWorker does nothing with an event job: what River costs alone.
type noOpWorker struct {
	river.WorkerDefaults[hooklinetype.JobArgs]
}

func (noOpWorker) Work(context.Context, *river.Job[hooklinetype.JobArgs]) error { return nil }

// serveNoOp runs `hookbench noop-worker`: a River client with the worker
// binary's River settings, its pool size and the same event jobs, whose
// worker does nothing. Its drain rate is the framework's ceiling, against
// which the worker's is judged. It reads the worker's variables
// (DATABASE_URL, WORKER_ADDR, WORKER_CONCURRENCY, WORKER_FETCH_COOLDOWN),
// and serves /healthz until ctx ends.
func serveNoOp(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	concurrency, err := envInt(getenv, "WORKER_CONCURRENCY", 50)
	if err != nil {
		return err
	}
	cooldown := 10 * time.Millisecond
	if v := getenv("WORKER_FETCH_COOLDOWN"); v != "" {
		if cooldown, err = time.ParseDuration(v); err != nil {
			return fmt.Errorf("WORKER_FETCH_COOLDOWN=%q: %w", v, err)
		}
	}
	// The worker binary's automatic size.
	pool, err := dbpool.New(ctx, getenv("DATABASE_URL"), 0, min(concurrency+dispatch.RiverConns, 20), "hookbench-noop")
	if err != nil {
		return err
	}
	defer pool.Close()
	workers := river.NewWorkers()
	river.AddWorker(workers, noOpWorker{})
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		FetchCooldown: cooldown, FetchPollInterval: time.Second, JobTimeout: time.Minute, Logger: logger,
		Queues: map[string]river.QueueConfig{hooklinetype.Queue: {MaxWorkers: concurrency}}, Workers: workers,
	})
	if err != nil {
		return fmt.Errorf("create river client: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	srv := httpserver.New(getenv("WORKER_ADDR"), mux, httpserver.Timeouts{})
	go func() { <-ctx.Done(); _ = srv.Shutdown(context.WithoutCancel(ctx)) }()
	if err := rc.Start(ctx); err != nil {
		return fmt.Errorf("start river client: %w", err)
	}
	defer rc.Stop(context.WithoutCancel(ctx)) //nolint:errcheck
	if err := srv.ListenAndServe(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

func envInt(getenv func(string) string, name string, def int) (int, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: %w", name, v, err)
	}
	return n, nil
}
