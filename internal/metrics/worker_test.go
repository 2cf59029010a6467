package metrics_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/metrics"
	"github.com/hookline/hookline/internal/pgtest"
)

// scriptArgs ask scriptWorker to end each attempt as Script says.
type scriptArgs struct {
	// Script lists what attempts 1, 2, … do: "ok", "error", "panic",
	// "cancel" or "snooze"; attempts past its end succeed.
	Script []string `json:"script"`
}

func (scriptArgs) Kind() string { return "script" }

type scriptWorker struct {
	river.WorkerDefaults[scriptArgs]
	mu    sync.Mutex
	steps map[int64]int // runs so far, by job id: snoozes keep the attempt
}

func (w *scriptWorker) Work(_ context.Context, job *river.Job[scriptArgs]) error {
	w.mu.Lock()
	step := w.steps[job.ID]
	w.steps[job.ID]++
	w.mu.Unlock()
	if step >= len(job.Args.Script) {
		return nil
	}
	switch job.Args.Script[step] {
	case "error":
		return errors.New("scripted failure")
	case "panic":
		panic("scripted panic")
	case "cancel":
		return river.JobCancel(errors.New("scripted cancel"))
	case "snooze":
		return river.JobSnooze(0)
	}
	return nil
}

// retryAtOnce keeps the test from waiting out River's backoff.
type retryAtOnce struct{}

func (retryAtOnce) NextRetry(*rivertype.JobRow) time.Time { return time.Now() }

func TestWorkerMiddlewareCountsEachAttemptByOutcome(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	reg := metrics.NewRegistry()
	m := metrics.NewWorker(reg, "script")
	workers := river.NewWorkers()
	river.AddWorker(workers, &scriptWorker{steps: map[int64]int{}})
	client, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{
		FetchCooldown:     10 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		Logger:            discard,
		Middleware:        []rivertype.Middleware{m},
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 5}},
		RetryPolicy:       retryAtOnce{},
		TestOnly:          true,
		Workers:           workers,
	})
	require.NoError(t, err)
	require.NoError(t, client.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, client.Stop(ctx))
	})

	ctx := context.Background()
	for _, job := range []struct {
		script      []string
		maxAttempts int
	}{
		{script: []string{"ok"}},                    // completed
		{script: []string{"error", "ok"}},           // failed, completed
		{script: []string{"panic", "ok"}},           // failed, completed
		{script: []string{"error"}, maxAttempts: 1}, // discarded
		{script: []string{"cancel"}},                // cancelled
		{script: []string{"snooze", "ok"}},          // snoozed, completed
	} {
		_, err := client.Insert(ctx, scriptArgs{Script: job.script}, &river.InsertOpts{MaxAttempts: job.maxAttempts})
		require.NoError(t, err)
	}

	want := map[string]float64{"completed": 4, "failed": 2, "discarded": 1, "cancelled": 1, "snoozed": 1, "interrupted": 0}
	count := func(outcome string) float64 {
		return sample(t, gather(t, reg), "hookline_worker_jobs_total", map[string]string{"kind": "script", "outcome": outcome}).GetCounter().GetValue()
	}
	require.Eventually(t, func() bool {
		for outcome, n := range want {
			if count(outcome) != n {
				return false
			}
		}
		return true
	}, 15*time.Second, 20*time.Millisecond, "want %v", want)
	duration := sample(t, gather(t, reg), "hookline_worker_job_duration_seconds", map[string]string{"kind": "script"}).GetHistogram()
	require.Equal(t, uint64(9), duration.GetSampleCount())
}

func TestWorkerConcurrencyLimitReportsTheLastValueSet(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	m := metrics.NewWorker(reg)
	m.SetConcurrencyLimit(50)
	m.SetConcurrencyLimit(7)
	require.Equal(t, 7.0, sample(t, gather(t, reg), "hookline_worker_concurrency_limit", nil).GetGauge().GetValue())
}
