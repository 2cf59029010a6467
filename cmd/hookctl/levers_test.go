package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline"
	"github.com/hookline/hookline/internal/ops"
	"github.com/hookline/hookline/internal/shed"
	"github.com/hookline/hookline/internal/throttle"
)

// setenv makes hookctl see k=v on top of the bundle's environment.
func (b *testBundle) setenv(k, v string) {
	b.getenv = b.withEnv(map[string]string{k: v})
}

// runWorker runs the real worker (hookline.RunWorker) with concurrency
// slots on the bundle's database, its handler for stripe charge.succeeded
// blocking until release is closed, and returns its admin address. The
// worker stops when t ends.
func (b *testBundle) runWorker(t *testing.T, concurrency int, release <-chan struct{}) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	env := map[string]string{
		"DATABASE_URL": b.db.URL, "WORKER_CONCURRENCY": fmt.Sprint(concurrency), "WORKER_ADDR": addr,
		"WORKER_PRUNE_INTERVAL": "0", "WORKER_FETCH_POLL_INTERVAL": "50ms",
	}
	cfg, err := hookline.LoadWorkerConfig(func(k string) string { return env[k] })
	require.NoError(t, err)
	cfg.Logger = slog.New(slog.DiscardHandler)
	mux := hookline.NewMux()
	mux.RegisterFunc("stripe", "charge.succeeded", func(ctx context.Context, _ pgx.Tx, _ hookline.Event) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hookline.RunWorker(ctx, cfg, mux) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(40 * time.Second):
			t.Error("the worker did not stop")
		}
	})
	return addr
}

// scrape returns the worker's /metrics.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}

// TestStatusShowsJobsWaitingAtTheGateUnderThrottle2 runs the real worker
// with 8 slots under "hookctl throttle 2", and 10 events whose handler
// blocks: River fetches 8 and counts them running, 2 execute and 6 wait at
// the gate. status, drain and the metrics must say so, not "8 running".
func TestStatusShowsJobsWaitingAtTheGateUnderThrottle2(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, _, err := b.hookctl(t, "throttle", "2")
	require.NoError(t, err)
	release := make(chan struct{})
	defer close(release) // before the worker's cleanup, so its jobs finish
	addr := b.runWorker(t, 8, release)

	// Events are added once the worker has taken its share, so that none
	// starts under its initial limit of 8.
	var view throttleView
	require.Eventually(t, func() bool {
		b.hookctlJSON(t, &view, "throttle", "--json")
		return len(view.LiveWorkers) == 1 && view.LiveWorkers[0].EffectiveLimit == 2
	}, 15*time.Second, 100*time.Millisecond, "the worker announces its share of 2")
	for i := range 10 {
		b.addEvent(t, "stripe", fmt.Sprint("evt_", i), "charge.succeeded")
	}

	var st statusJSON
	require.Eventually(t, func() bool {
		b.hookctlJSON(t, &st, "status", "--json")
		return st.Jobs.Running == 8 && st.Running.WaitingAtGate == 6
	}, 15*time.Second, 100*time.Millisecond, "River runs 8 jobs, 6 of them at the gate")
	require.Equal(t, throttle.Running{Executing: 2, WaitingAtGate: 6}, st.Running)
	require.Equal(t, 2, *st.Throttle.Limit)
	require.Equal(t, "tester", *st.Throttle.SetBy)
	require.Len(t, st.Announced, 1)
	require.Equal(t, 2, st.Announced[0].Executing)
	require.Equal(t, 6, st.Announced[0].WaitingAtGate)
	require.Equal(t, 2, st.Announced[0].EffectiveLimit)
	require.Equal(t, 8, st.Announced[0].ConfiguredLimit)

	stdout, _, err := b.hookctl(t, "status")
	require.NoError(t, err)
	require.Contains(t, stdout, "running: 2 executing, 6 waiting at the throttle gate")
	require.Contains(t, stdout, "global limit 2, set by tester")
	require.Contains(t, stdout, "2 of 8 (share)")
	require.Contains(t, stdout, "note: 6 running jobs wait at the throttle gate")

	// A timeout long enough for the first poll on a loaded machine: with
	// 200ms, the drain could time out before printing any progress.
	stdout, _, err = b.hookctl(t, "drain", "--timeout", "2s", "--interval", "50ms")
	require.ErrorIs(t, err, ops.ErrDrainTimeout)
	require.Contains(t, stdout, "running 8 (6 of them waiting at the throttle gate)")
	require.ErrorContains(t, err, "running 8 of which 6 wait at the throttle gate")
	stdout, _, err = b.hookctl(t, "drain", "--timeout", "2s", "--interval", "50ms", "--json")
	require.ErrorIs(t, err, ops.ErrDrainTimeout)
	var res ops.DrainResult
	require.NoError(t, json.Unmarshal([]byte(stdout), &res), "stdout: %s", stdout)
	require.Equal(t, throttle.Running{Executing: 2, WaitingAtGate: 6}, res.Running)

	stdout, _, err = b.hookctl(t, "throttle")
	require.NoError(t, err)
	require.Contains(t, stdout, "global concurrency limit: 2 (set by tester at")
	require.Contains(t, stdout, "WORKER_CONCURRENCY 8, runs at most 2 (its share); 2 executing, 6 waiting at the gate")

	var running []string // the running series, without the rest of /metrics
	for line := range strings.Lines(scrape(t, addr)) {
		if strings.HasPrefix(line, "hookline_") && strings.Contains(line, "running") {
			running = append(running, strings.TrimSpace(line))
		}
	}
	require.ElementsMatch(t, []string{
		`hookline_worker_jobs_running{phase="executing"} 2`,
		`hookline_worker_jobs_running{phase="waiting_at_gate"} 6`,
		`hookline_queue_running_jobs{phase="executing"} 2`,
		`hookline_queue_running_jobs{phase="waiting_at_gate"} 6`,
		`hookline_queue_running_jobs{phase="unreported"} 0`,
		`hookline_queue_jobs{state="running"} 8`,
	}, running)
}

func TestThrottleWithNoArgumentShowsTheLimitAndEachWorkersShare(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, `
		INSERT INTO worker_processes (id, host, pid, configured_limit, effective_limit, jobs_executing, jobs_waiting) VALUES
			('host-a/1/1', 'host-a', 1, 50, 50, 7, 0)`)

	stdout, _, err := b.hookctl(t, "throttle")
	require.NoError(t, err)
	require.Equal(t, "global concurrency limit: none (each process runs up to its WORKER_CONCURRENCY)\n"+
		"1 live worker process(es) (announced in the last 30s):\n"+
		"  host-a/1/1 (host host-a, pid 1): WORKER_CONCURRENCY 50, runs at most 50 (its own); 7 executing, 0 waiting at the gate\n", stdout)
	var view throttleView
	b.hookctlJSON(t, &view, "throttle", "--json")
	require.Nil(t, view.Limit)
	require.Nil(t, view.SetBy)

	_, _, err = b.hookctl(t, "throttle", "3")
	require.NoError(t, err)
	b.exec(t, `UPDATE worker_processes SET effective_limit = 3, jobs_executing = 3, jobs_waiting = 47`)
	stdout, _, err = b.hookctl(t, "throttle")
	require.NoError(t, err)
	require.Contains(t, stdout, "global concurrency limit: 3 (set by tester at ")
	require.Contains(t, stdout, "runs at most 3 (its share); 3 executing, 47 waiting at the gate")
	b.hookctlJSON(t, &view, "throttle", "--json")
	require.Equal(t, 3, *view.Limit)
	require.Equal(t, "tester", *view.SetBy)
	require.WithinDuration(t, time.Now(), *view.SetAt, time.Minute)
	require.Len(t, view.LiveWorkers, 1)
	require.Equal(t, 47, view.LiveWorkers[0].WaitingAtGate)

	_, _, err = b.hookctl(t, "throttle", "3", "--reset")
	require.ErrorContains(t, err, "give either a limit N or --reset")
}

func TestShedWithNoArgumentsShowsTheActiveSheds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	stdout, _, err := b.hookctl(t, "shed")
	require.NoError(t, err)
	require.Equal(t, "no source is shed: the receivers admit every source\n", stdout)

	_, _, err = b.hookctl(t, "shed", "stripe", "--rate", "200")
	require.NoError(t, err)
	_, _, err = b.hookctl(t, "shed", "bank", "--rate", "0.5")
	require.NoError(t, err)
	stdout, _, err = b.hookctl(t, "shed")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	require.Len(t, lines, 3, stdout)
	require.Regexp(t, `^SOURCE +RATE \(EVENTS/S PER RECEIVER\) +SET BY +SET AT$`, lines[0])
	require.Regexp(t, `^bank +0\.5 +tester +\d{4}-`, lines[1])
	require.Regexp(t, `^stripe +200 +tester +\d{4}-`, lines[2])

	var got struct {
		Sheds []shed.Active `json:"sheds"`
	}
	b.hookctlJSON(t, &got, "shed", "--json")
	require.Len(t, got.Sheds, 2)
	require.Equal(t, "stripe", got.Sheds[1].Source)
	require.Equal(t, 200.0, got.Sheds[1].Rate)
	require.Equal(t, "tester", got.Sheds[1].SetBy)

	stdout, _, err = b.hookctl(t, "shed", "stripe", "--off")
	require.NoError(t, err)
	require.Contains(t, stdout, "shedding lifted for stripe")
	stdout, _, err = b.hookctl(t, "shed", "stripe", "--off")
	require.NoError(t, err)
	require.Equal(t, "stripe was not shed; nothing changed\n", stdout)
}

func TestShedRefusesASourceThatIsNotConfigured(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// No secret is set: the names are known without one.
	_, _, err := b.hookctl(t, "shed", "strpe", "--rate", "5")
	require.EqualError(t, err, `source "strpe" is not configured: without HOOKLINE_SOURCES the receivers serve stripe, bank; did you mean "stripe"? (--force sheds it anyway, for receivers configured otherwise)`)
	_, _, err = b.hookctl(t, "shed", "github", "--rate", "5")
	require.EqualError(t, err, `source "github" is not configured: without HOOKLINE_SOURCES the receivers serve stripe, bank (--force sheds it anyway, for receivers configured otherwise)`)
	var got struct {
		Sheds []shed.Active `json:"sheds"`
	}
	b.hookctlJSON(t, &got, "shed", "--json")
	require.Empty(t, got.Sheds, "a refused shed stores nothing")

	_, _, err = b.hookctl(t, "shed", "strpe", "--rate", "5", "--force")
	require.NoError(t, err)
	b.hookctlJSON(t, &got, "shed", "--json")
	require.Len(t, got.Sheds, 1)
	require.Equal(t, "strpe", got.Sheds[0].Source)

	// With a sources file, its names are the known ones.
	path := filepath.Join(t.TempDir(), "sources.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`sources:
  - {name: github, type: github, secrets: [{label: current, env: GITHUB_WEBHOOK_SECRET}]}
  - {name: shop, type: shopify, secrets: [{label: current, env: SHOPIFY_WEBHOOK_SECRET}]}
`), 0o600))
	b.setenv("HOOKLINE_SOURCES", path)
	_, _, err = b.hookctl(t, "shed", "github", "--rate", "5")
	require.NoError(t, err, "a source of the file, though its secret is not set here")
	_, _, err = b.hookctl(t, "shed", "stripe", "--rate", "5")
	require.EqualError(t, err, `source "stripe" is not configured: HOOKLINE_SOURCES=`+path+` declares github, shop (--force sheds it anyway, for receivers configured otherwise)`)
	_, _, err = b.hookctl(t, "shed", "shpo", "--rate", "5")
	require.ErrorContains(t, err, `did you mean "shop"?`)

	// A file hookctl cannot read is no licence to shed any name.
	b.setenv("HOOKLINE_SOURCES", filepath.Join(t.TempDir(), "missing.yaml"))
	_, _, err = b.hookctl(t, "shed", "github", "--rate", "5")
	require.ErrorContains(t, err, "check the source name: HOOKLINE_SOURCES=")
	require.ErrorContains(t, err, `cannot read the file: no such file or directory (--force sheds "github" without the check)`)
}

func TestStatusShowsTheThrottleAndTheSheds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var st statusJSON
	b.hookctlJSON(t, &st, "status", "--json")
	require.Nil(t, st.Throttle.Limit)
	require.NotNil(t, st.Sheds)
	require.Empty(t, st.Sheds)
	stdout, _, err := b.hookctl(t, "status")
	require.NoError(t, err)
	require.Contains(t, stdout, "Throttle              no global limit: each worker runs up to its WORKER_CONCURRENCY")
	require.Contains(t, stdout, "Shed                  none: every source is admitted")

	_, _, err = b.hookctl(t, "throttle", "4")
	require.NoError(t, err)
	_, _, err = b.hookctl(t, "shed", "stripe", "--rate", "200")
	require.NoError(t, err)
	// Two running jobs: one reported executing by a live worker, one held
	// by no live worker (a process that stopped announcing).
	for i, state := range []string{"running", "running"} {
		_, jobID := b.addEvent(t, "stripe", fmt.Sprint("evt_", i), "charge.succeeded")
		b.setJob(t, jobID, state)
	}
	b.exec(t, `
		INSERT INTO worker_processes (id, host, pid, configured_limit, effective_limit, jobs_executing, jobs_waiting, last_seen_at) VALUES
			('host-a/1/1', 'host-a', 1, 50, 4, 1, 0, now()),
			('host-b/2/2', 'host-b', 2, 50, 4, 0, 9, now() - interval '5 minutes')`)

	b.hookctlJSON(t, &st, "status", "--json")
	require.Equal(t, 4, *st.Throttle.Limit)
	require.Equal(t, "tester", *st.Throttle.SetBy)
	require.Len(t, st.Sheds, 1)
	require.Equal(t, shed.Active{Source: "stripe", Rate: 200, SetBy: "tester", SetAt: st.Sheds[0].SetAt}, st.Sheds[0])
	require.Equal(t, throttle.Running{Executing: 1, Unreported: 1}, st.Running, "the stale process's waiting jobs do not count")
	require.Contains(t, st.Notes, "source stripe is shed: above 200 events/s each receiver answers 429; `hookctl shed stripe --off` lifts it")

	stdout, _, err = b.hookctl(t, "status")
	require.NoError(t, err)
	require.Contains(t, stdout, "Throttle              global limit 4, set by tester at ")
	require.Contains(t, stdout, "Shed                  stripe at 200 events/s per receiver (set by tester at ")
	require.Contains(t, stdout, "running: 1 executing, 0 waiting at the throttle gate, 1 at no live worker's gate")
}
