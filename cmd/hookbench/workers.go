package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
)

// workerResult is the worker's throughput at one concurrency, beside River's
// own for jobs that do nothing, on the same backlog, settings and machine.
type workerResult struct {
	Concurrency int     `json:"concurrency"`
	Jobs        int     `json:"jobs"`
	JobsPerSec  float64 `json:"jobs_per_sec"`
	Seconds     float64 `json:"seconds"`
	// MaxConns is the most connections the worker held while draining.
	MaxConns int `json:"max_conns"`
	// RiverNoOp is River's rate with a worker that does nothing, and
	// RiverMaxConns the connections it held.
	RiverNoOp     float64 `json:"river_noop_jobs_per_sec"`
	RiverMaxConns int     `json:"river_noop_max_conns"`
	// RatioLow and RatioHigh are the lowest and highest ratio over the
	// runs; the rest is the median run's.
	RatioLow  float64 `json:"ratio_low"`
	RatioHigh float64 `json:"ratio_high"`
}

// Ratio is the worker's rate as a share of River's no-op rate.
func (w workerResult) Ratio() float64 { return ratio(w.JobsPerSec, w.RiverNoOp) }

// drainResult is how fast a deployment's workers drain a backlog left by a
// flood, as after the soak (make soak).
type drainResult struct {
	Workers     int     `json:"workers"`
	Concurrency int     `json:"concurrency"`
	Jobs        int     `json:"jobs"`
	JobsPerSec  float64 `json:"jobs_per_sec"`
	MaxConns    int     `json:"max_conns"`
}

// workers measures, at each concurrency, how fast the worker binary drains
// a backlog through the example handler, and how fast River drains the same
// backlog with a worker that does nothing: the framework's ceiling.
func (b *bench) workers(ctx context.Context, rep *report) error {
	for _, c := range b.o.workerLevels {
		// The median of several runs, each a River no-op drain then a
		// worker drain: on a small shared machine one run can be 20% off.
		var runs []workerResult
		for range max(1, b.o.workerRuns) {
			res := workerResult{Concurrency: c, Jobs: b.o.backlog}
			for _, noop := range []bool{true, false} {
				rate, conns, err := b.drainOnce(ctx, fmt.Sprintf("worker%d", c), b.o.backlog, 1, c, noop)
				if err != nil {
					return err
				}
				if noop {
					res.RiverNoOp, res.RiverMaxConns = rate, conns
				} else {
					res.JobsPerSec, res.MaxConns, res.Seconds = rate, conns, float64(b.o.backlog)/rate
				}
			}
			b.logf("worker, concurrency %d: %.0f jobs/s on %d connections; River no-op %.0f jobs/s; ratio %.2f",
				c, res.JobsPerSec, res.MaxConns, res.RiverNoOp, res.Ratio())
			runs = append(runs, res)
		}
		slices.SortFunc(runs, func(a, b workerResult) int { return cmp.Compare(a.Ratio(), b.Ratio()) })
		med := runs[len(runs)/2]
		med.RatioLow, med.RatioHigh = runs[0].Ratio(), runs[len(runs)-1].Ratio()
		for _, r := range runs {
			med.MaxConns = max(med.MaxConns, r.MaxConns)
		}
		rep.Workers = append(rep.Workers, med)
	}
	return nil
}

// soakDrain measures the drain of the soak's backlog: two worker processes
// with the default settings, as a deployment runs them.
func (b *bench) soakDrain(ctx context.Context, rep *report) error {
	const workers = 2
	rate, conns, err := b.drainOnce(ctx, "soakdrain", b.o.drainBacklog, workers, 0, false)
	if err != nil {
		return err
	}
	rep.SoakDrain = drainResult{Workers: workers, Jobs: b.o.drainBacklog, JobsPerSec: rate, MaxConns: conns}
	b.logf("soak drain, %d workers with default settings: %.0f jobs/s on %d connections", workers, rate, conns)
	return nil
}

// drainOnce fills a fresh database with a backlog of n events, starts procs worker
// processes at concurrency c (0: the worker's default), or River no-op
// processes, waits until every job is completed, and returns the rate,
// measured by the database from the first job's start to the last one's
// completion, and the most connections the processes held at once.
func (b *bench) drainOnce(ctx context.Context, name string, n, procs, c int, noop bool) (float64, int, error) {
	return b.drain(ctx, name, n, procs, c, noop, func(db *database) error { return fillBacklog(ctx, db, n) }, nil)
}

// drain is drainOnce with the backlog's n events stored by fill, and, if
// it is set, after called on the drained database before it is dropped.
func (b *bench) drain(ctx context.Context, name string, n, procs, c int, noop bool, fill, after func(*database) error) (float64, int, error) {
	db, err := newDatabase(ctx, b.o.adminURL, name)
	if err != nil {
		return 0, 0, err
	}
	defer db.drop(ctx)
	if err := fill(db); err != nil {
		return 0, 0, err
	}
	app := "hookline-worker"
	if noop {
		app = "hookbench-noop"
	}
	for range procs {
		addr, err := freeAddr()
		if err != nil {
			return 0, 0, err
		}
		env := []string{"DATABASE_URL=" + db.url, "WORKER_ADDR=" + addr}
		if c > 0 {
			env = append(env, "WORKER_CONCURRENCY="+strconv.Itoa(c))
		}
		if b.o.fetchCooldown > 0 {
			env = append(env, "WORKER_FETCH_COOLDOWN="+b.o.fetchCooldown.String())
		}
		bin, args := filepath.Join(b.o.binDir, "worker"), []string(nil)
		if noop {
			bin, args = b.self, []string{"noop-worker"}
		}
		p, err := startProcess(ctx, bin, args, env, "http://"+addr)
		if err != nil {
			return 0, 0, err
		}
		defer p.stop()
	}
	var peak atomic.Int64
	sampling, stopSampling := context.WithCancel(ctx)
	var sampler sync.WaitGroup
	sampler.Go(func() { sampleConnections(sampling, db, app, &peak) })
	defer func() { stopSampling(); sampler.Wait() }()

	deadline := time.Now().Add(5 * time.Minute)
	for {
		done, err := db.count(ctx, `SELECT count(*) FROM river_job WHERE kind = 'process_event' AND state = 'completed'`)
		if err != nil {
			return 0, 0, err
		}
		if done == n {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, 0, fmt.Errorf("%s: %d of %d jobs completed in 5m", name, done, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var secs float64
	err = db.pool.QueryRow(ctx, `SELECT extract(epoch FROM max(finalized_at) - min(attempted_at))::float8 FROM river_job WHERE kind = 'process_event'`).Scan(&secs)
	if err != nil {
		return 0, 0, err
	}
	if after != nil {
		if err := after(db); err != nil {
			return 0, 0, err
		}
	}
	return float64(n) / secs, int(peak.Load()), nil
}

// sampleConnections records in peak the most connections to db that carry
// application name app, every 20ms until ctx ends.
func sampleConnections(ctx context.Context, db *database, app string, peak *atomic.Int64) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var n int64
		if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1`, app).Scan(&n); err == nil && n > peak.Load() {
			peak.Store(n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// accounts is how many distinct balances the generated events touch: enough
// that row locks on hot balances do not dominate what is measured.
const accounts = 10_000

// fillBacklog stores n bank events with their jobs, as the receiver would.
func fillBacklog(ctx context.Context, db *database, n int) error {
	rc, err := river.NewClient(riverpgxv5.New(db.pool), &river.Config{
		Logger:     slog.New(slog.DiscardHandler),
		Middleware: []rivertype.Middleware{&ingest.JobIDs{}},
	})
	if err != nil {
		return err
	}
	batcher := ingest.NewBatcher(db.pool, rc, slog.New(slog.DiscardHandler), ingest.BatchOptions{MaxSize: 500})
	defer batcher.Close(ctx) //nolint:errcheck
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < n; i += 8 {
				id := fmt.Sprintf("backlog_%d", i)
				body := fmt.Appendf(nil, `{"id":%q,"type":"transfer.settled","account":"acc_%d","amount_cents":1}`, id, i%accounts)
				if _, err := batcher.Ingest(ctx, inbox.NewEvent{Source: "bank", EventID: id, Type: "transfer.settled", Payload: body}); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return fmt.Errorf("fill backlog: %w", err)
	default:
		return nil
	}
}
