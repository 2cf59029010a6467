package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

type bench struct {
	o    options
	self string
	log  io.Writer
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "hookbench: "+format+"\n", args...)
}

// serverResult is what was measured of one receiver configuration.
type serverResult struct {
	Name      string      `json:"name"`
	Max       loadResult  `json:"max"`
	At80      loadResult  `json:"at_80_percent"`
	Light     loadResult  `json:"light"`
	Big       *loadResult `json:"big_conns,omitempty"`
	PeakRSSMB float64     `json:"peak_rss_mb"`
	Acked     int         `json:"unique_acked"`
	Stored    int         `json:"stored"`
	Jobs      int         `json:"jobs"`
}

// measure runs the load phases against a started server.
func (b *bench) measure(ctx context.Context, name string, p *process, ev *events, big bool) serverResult {
	url := p.base + "/api/webhooks/bank"
	r := serverResult{Name: name}
	b.logf("%s: warming up", name)
	closedLoop(ctx, url, ev, b.o.conns, time.Second)
	b.logf("%s: light load, %.0f events/s", name, b.o.lightRate)
	r.Light = openLoop(ctx, url, ev, b.o.lightRate, b.o.duration/2, b.o.conns)
	b.logf("%s: maximum throughput, %d connections, %s", name, b.o.conns, b.o.duration)
	r.Max = closedLoop(ctx, url, ev, b.o.conns, b.o.duration)
	b.logf("%s: %.0f events/s; now p99 at 80%% of it", name, r.Max.Rate)
	r.At80 = openLoop(ctx, url, ev, 0.8*r.Max.Rate, b.o.duration, b.o.conns)
	if big {
		b.logf("%s: %d connections", name, b.o.bigConns)
		res := closedLoop(ctx, url, ev, b.o.bigConns, b.o.duration)
		r.Big = &res
	}
	r.PeakRSSMB = p.peakRSSMB()
	return r
}

func (b *bench) ceiling(ctx context.Context, rep *report) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	p, err := startProcess(ctx, b.self, []string{"ceiling-server", "-addr", addr, "-bank-secret", benchSecret, "-stripe-secret", benchStripeSecret}, nil, "http://"+addr)
	if err != nil {
		return err
	}
	defer p.stop()
	r := b.measure(ctx, "verify-only", p, newEvents("ceiling", benchSecret, b.o.dupShare, 4_000_000), false)
	r.Acked, r.Stored, r.Jobs = -1, -1, -1
	rep.Servers = append(rep.Servers, r)
	return nil
}

func (b *bench) single(ctx context.Context, rep *report) error {
	return b.receiver(ctx, rep, "single", "")
}
func (b *bench) batch(ctx context.Context, rep *report) error {
	return b.receiver(ctx, rep, "batch", "")
}

// traced measures batch mode with tracing on at the default sampling
// (parentbased_always_on: every request), exporting over OTLP/HTTP to a
// collector in this process that accepts and drops the spans.
func (b *bench) traced(ctx context.Context, rep *report) error {
	sink, err := startOTLPSink()
	if err != nil {
		return err
	}
	defer sink.close()
	err = b.receiver(ctx, rep, "batch", "batch, traced", "OTEL_EXPORTER_OTLP_ENDPOINT="+sink.url)
	b.logf("batch, traced: the collector took %d exports, %.1f MB", sink.posts.Load(), float64(sink.bytes.Load())/1e6)
	if err == nil && sink.posts.Load() == 0 {
		return errors.New("tracing was on, but no span reached the collector")
	}
	return err
}

// receiver measures the real receiver binary in one ingest mode, with env
// added to its environment, then checks that every acknowledged event was
// stored, with its job. name, if set, names the configuration instead of
// mode.
func (b *bench) receiver(ctx context.Context, rep *report, mode, name string, env ...string) error {
	db, err := newDatabase(ctx, b.o.adminURL, mode)
	if err != nil {
		return err
	}
	defer db.drop(ctx)
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	p, err := startProcess(ctx, filepath.Join(b.o.binDir, "receiver"), nil, append([]string{
		"DATABASE_URL=" + db.url, "DATABASE_MAX_CONNS=" + strconv.Itoa(b.o.poolConns),
		"RECEIVER_ADDR=" + addr, "INGEST_MODE=" + mode,
		"BANK_WEBHOOK_SECRET=" + benchSecret, "STRIPE_WEBHOOK_SECRET=" + benchStripeSecret,
	}, env...), "http://"+addr)
	if err != nil {
		return err
	}
	if name == "" {
		name = mode
	}
	ev := newEvents(mode, benchSecret, b.o.dupShare, 4_000_000)
	r := b.measure(ctx, name, p, ev, mode == "batch" && len(env) == 0)
	p.stop()

	if err := b.check(ctx, rep, db, ev, &r); err != nil {
		return err
	}
	rep.Servers = append(rep.Servers, r)
	return nil
}

// check verifies the benchmark's own promise: every acknowledged event is
// in the inbox, and every stored event has exactly one job.
func (b *bench) check(ctx context.Context, rep *report, db *database, ev *events, r *serverResult) error {
	acked := ev.ackedIDs()
	rows, err := db.pool.Query(ctx, `SELECT event_id FROM inbox_events`)
	if err != nil {
		return fmt.Errorf("list stored events: %w", err)
	}
	stored, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list stored events: %w", err)
	}
	have := make(map[string]bool, len(stored))
	for _, id := range stored {
		have[id] = true
	}
	missing := 0
	for id := range acked {
		if !have[id] {
			missing++
		}
	}
	r.Acked, r.Stored = len(acked), len(stored)
	if r.Jobs, err = db.count(ctx, `SELECT count(*) FROM river_job WHERE kind = 'process_event'`); err != nil {
		return err
	}
	if missing > 0 {
		rep.Lost = append(rep.Lost, fmt.Sprintf("%s: %d acknowledged events not stored", r.Name, missing))
	}
	if r.Jobs != r.Stored {
		rep.Lost = append(rep.Lost, fmt.Sprintf("%s: %d events stored but %d jobs", r.Name, r.Stored, r.Jobs))
	}
	return nil
}

// e2eResult is the delay from the receiver's 200 to the event's effect
// being committed (processed_at), and to River marking its job completed.
// River's batch completer completes jobs every 250 ms unless 100 are
// waiting, so the second is later by up to that, at no cost to the effect.
type e2eResult struct {
	Rate float64 `json:"events_per_sec"`
	// Fraction is Rate as a share of the worker's best rate.
	Fraction float64 `json:"fraction_of_worker_max"`
	Events   int     `json:"events"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	// CompletedP50 and CompletedP99 are to the job's completion.
	CompletedP50 float64 `json:"completed_p50_ms"`
	CompletedP99 float64 `json:"completed_p99_ms"`
}

// endToEnd runs a receiver and a worker together at steady rates below
// saturation and measures, per event, the time from its 200 to its
// effect's commit and to its job's completion.
func (b *bench) endToEnd(ctx context.Context, rep *report) error {
	db, err := newDatabase(ctx, b.o.adminURL, "e2e")
	if err != nil {
		return err
	}
	defer db.drop(ctx)
	raddr, err := freeAddr()
	if err != nil {
		return err
	}
	waddr, err := freeAddr()
	if err != nil {
		return err
	}
	base := []string{"DATABASE_URL=" + db.url, "DATABASE_MAX_CONNS=" + strconv.Itoa(b.o.poolConns), "BANK_WEBHOOK_SECRET=" + benchSecret, "STRIPE_WEBHOOK_SECRET=" + benchStripeSecret}
	recv, err := startProcess(ctx, filepath.Join(b.o.binDir, "receiver"), nil, append(base, "RECEIVER_ADDR="+raddr), "http://"+raddr)
	if err != nil {
		return err
	}
	defer recv.stop()
	wenv := append(base, "WORKER_ADDR="+waddr)
	if b.o.fetchCooldown > 0 {
		wenv = append(wenv, "WORKER_FETCH_COOLDOWN="+b.o.fetchCooldown.String())
	}
	work, err := startProcess(ctx, filepath.Join(b.o.binDir, "worker"), nil, wenv, "http://"+waddr)
	if err != nil {
		return err
	}
	defer work.stop()

	// Half the worker's best rate is the target's point; the lower rates
	// show where the curve bends on a machine the receiver, the worker,
	// Postgres and the load share.
	fractions := []float64{0.2, 0.3, 0.4, 0.5}
	if b.o.e2eRate > 0 {
		fractions = []float64{0}
	}
	best := 400.0
	for _, w := range rep.Workers {
		best = max(best, w.JobsPerSec)
	}
	// A short run first, unmeasured: the worker's first fetches and the
	// pools' first connections would otherwise land in the first point.
	if _, err := b.e2eAt(ctx, db, "http://"+raddr, min(200, best/4), "e2ewarm", 2*time.Second); err != nil {
		return err
	}
	for i, f := range fractions {
		rate := cmp.Or(b.o.e2eRate, f*best)
		res, err := b.e2eAt(ctx, db, "http://"+raddr, rate, fmt.Sprintf("e2e%d", i), b.o.duration)
		if err != nil {
			return err
		}
		res.Fraction = f
		b.logf("end to end at %.0f events/s: effect p50 %.1f ms, p99 %.1f ms; completion p99 %.1f ms", rate, res.P50, res.P99, res.CompletedP99)
		rep.EndToEndCurve = append(rep.EndToEndCurve, res)
		rep.EndToEnd = res
	}
	return nil
}

// e2eAt sends rate events/s for d to the receiver at
// base, waits until their jobs are completed, and measures each event's
// time from its 200 to its effect's commit and to its job's completion.
func (b *bench) e2eAt(ctx context.Context, db *database, base string, rate float64, run string, d time.Duration) (e2eResult, error) {
	ev := newEvents(run, benchSecret, 0, int(rate*d.Seconds())+1)
	openLoop(ctx, base+"/api/webhooks/bank", ev, rate, d, b.o.conns)
	deadline := time.Now().Add(time.Minute)
	for {
		pending, err := db.count(ctx, `SELECT count(*) FROM river_job WHERE kind = 'process_event' AND state <> 'completed'`)
		if err != nil {
			return e2eResult{}, err
		}
		if pending == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	rows, err := db.pool.Query(ctx, `
		SELECT i.event_id, i.processed_at, j.finalized_at FROM inbox_events i
		JOIN river_job j ON (j.args->>'inbox_id')::bigint = i.id
		WHERE j.state = 'completed' AND i.event_id LIKE $1`, "bench_"+run+"_%")
	if err != nil {
		return e2eResult{}, fmt.Errorf("read completion times: %w", err)
	}
	var applied, completed []time.Duration
	index := make(map[string]int64)
	for n := range ev.next.Load() {
		index[ev.id(n)] = n
	}
	for rows.Next() {
		var id string
		var proc, fin time.Time
		if err := rows.Scan(&id, &proc, &fin); err != nil {
			return e2eResult{}, err
		}
		if at := ev.ackedAt[index[id]].Load(); at > 0 {
			applied = append(applied, proc.Sub(time.Unix(0, at)))
			completed = append(completed, fin.Sub(time.Unix(0, at)))
		}
	}
	if err := rows.Err(); err != nil {
		return e2eResult{}, err
	}
	q := func(lats []time.Duration, p float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		slices.Sort(lats)
		return float64(lats[min(len(lats)-1, int(p*float64(len(lats))))].Microseconds()) / 1000
	}
	return e2eResult{Rate: rate, Events: len(applied), P50: q(applied, 0.5), P99: q(applied, 0.99),
		CompletedP50: q(completed, 0.5), CompletedP99: q(completed, 0.99)}, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range splitComma(s) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}
