package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// report is everything one run measured.
type report struct {
	Options map[string]string `json:"options"`
	Machine map[string]string `json:"machine"`
	Servers []serverResult    `json:"servers"`
	Workers []workerResult    `json:"workers"`
	// SoakDrain is two default workers draining the backlog.
	SoakDrain drainResult `json:"soak_drain"`
	EndToEnd  e2eResult   `json:"end_to_end"`
	// EndToEndCurve is the end-to-end latency at several rates, the last
	// of which is EndToEnd.
	EndToEndCurve []e2eResult `json:"end_to_end_curve"`
	// Ordering is the worker with ordered handlers beside unordered ones.
	Ordering *orderingResult `json:"ordering,omitempty"`
	// CPU is the CPU phase: each configuration at each load.
	CPU []cpuResult `json:"cpu,omitempty"`
	// Storage is the CPU phase's batch receiver's database, per event.
	Storage []storageResult `json:"storage,omitempty"`
	Targets []target        `json:"targets"`
	Lost    []string        `json:"lost,omitempty"`
}

// target is one of the goals set for this machine, and whether it was met.
type target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

func (r *report) server(name string) serverResult {
	for _, s := range r.Servers {
		if s.Name == name {
			return s
		}
	}
	return serverResult{}
}

func (r *report) evaluate() {
	ceiling, single, batch := r.server("verify-only"), r.server("single"), r.server("batch")
	add := func(name, want, got string, met bool) {
		r.Targets = append(r.Targets, target{Name: name, Want: want, Got: got, Met: met})
	}
	bs := ratio(batch.Max.Rate, single.Max.Rate)
	add("batch / single throughput", "≥ 4x", fmt.Sprintf("%.2fx", bs), bs >= 4)
	bc := ratio(batch.Max.Rate, ceiling.Max.Rate)
	add("batch / verify-only throughput", "≥ 40%", fmt.Sprintf("%.0f%%", 100*bc), bc >= 0.4)
	for _, conns := range splitInts(r.Options["cpu-conns"]) {
		for _, kind := range []string{"stripe", "bank"} {
			bare, ok1 := r.cpuMean("bare", kind, conns)
			bt, ok2 := r.cpuMean("batch", kind, conns)
			sg, ok3 := r.cpuMean("single", kind, conns)
			if !ok1 || !ok2 || !ok3 {
				continue
			}
			x := ratio(bt.Rate, bare.Rate)
			add(fmt.Sprintf("batch / bare ceiling, %s events, %d connections", kind, conns), "≥ 0.45", fmt.Sprintf("%.2f", x), x >= 0.45)
			y := ratio(bt.Rate, sg.Rate)
			add(fmt.Sprintf("batch / single, %s events, %d connections", kind, conns), "≥ 4x", fmt.Sprintf("%.2fx", y), y >= 4)
		}
	}
	add("batch p99 at 80% of its maximum", "≤ 50 ms", fmt.Sprintf("%.1f ms", batch.At80.P99), batch.At80.P99 <= 50)
	if batch.Big != nil {
		add(fmt.Sprintf("receiver peak RSS (incl. %s connections)", r.Options["big-conns"]), "< 150 MB", fmt.Sprintf("%.0f MB", batch.PeakRSSMB), batch.PeakRSSMB < 150)
	}
	best := 0.0
	for _, w := range r.Workers {
		best = max(best, w.JobsPerSec)
		add(fmt.Sprintf("worker / River no-op, concurrency %d", w.Concurrency), "≥ 0.7", fmt.Sprintf("%.2f", w.Ratio()), w.Ratio() >= 0.7)
		if w.Concurrency >= 200 {
			add(fmt.Sprintf("connections, concurrency %d", w.Concurrency), "≤ 20", fmt.Sprint(w.MaxConns), w.MaxConns <= 20)
		}
	}
	add("worker, example jobs per second (best level)", "≥ 5000", fmt.Sprintf("%.0f", best), best >= 5000)
	// The 5-minute soak's backlog drained at 311 jobs/s before group commit.
	if d := r.SoakDrain; d.JobsPerSec > 0 {
		add("soak backlog drain (2 default workers)", "≥ 8 × 311 = 2488 jobs/s", fmt.Sprintf("%.0f jobs/s (%.1fx)", d.JobsPerSec, d.JobsPerSec/311), d.JobsPerSec >= 8*311)
	}
	if o := r.Ordering; o != nil {
		add(fmt.Sprintf("ordered / unordered worker throughput (%d events over %d objects)", o.Events, o.Objects), "≥ 0.8",
			fmt.Sprintf("%.2f", o.Ratio()), o.Ratio() >= 0.8)
	}
	if e := r.EndToEnd; e.Events > 0 {
		add("end to end p99 (200 to the effect's commit) at half the worker's maximum", "≤ 100 ms", fmt.Sprintf("%.1f ms at %.0f/s", e.P99, e.Rate), e.P99 <= 100)
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Receiver\n\n")
	fmt.Fprintf(&b, "| Configuration | Events/s (max) | p50 ms | p99 ms | p99.9 ms | Failed | p99 ms at 80%% | Peak RSS MB | Acked / stored / jobs |\n")
	fmt.Fprintf(&b, "|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, s := range r.Servers {
		check := "n/a (no database)"
		if s.Acked >= 0 {
			check = fmt.Sprintf("%d / %d / %d", s.Acked, s.Stored, s.Jobs)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.2f | %.2f | %.2f | %d | %.2f (at %.0f/s) | %.0f | %s |\n",
			s.Name, s.Max.Rate, s.Max.P50, s.Max.P99, s.Max.P999, s.Max.Failed+s.At80.Failed, s.At80.P99, s.At80.TargetRate, s.PeakRSSMB, check)
	}
	ceiling, single, batch := r.server("verify-only"), r.server("single"), r.server("batch")
	fmt.Fprintf(&b, "\nRatios: batch/ceiling = **%.2f**, batch/single = **%.2f**, single/ceiling = %.2f.\n",
		ratio(batch.Max.Rate, ceiling.Max.Rate), ratio(batch.Max.Rate, single.Max.Rate), ratio(single.Max.Rate, ceiling.Max.Rate))
	fmt.Fprintf(&b, "\nUnder light load (%s events/s, open loop), p50 / p99 ms:", r.Options["light-rate"])
	for _, s := range r.Servers {
		fmt.Fprintf(&b, " %s %.2f / %.2f;", s.Name, s.Light.P50, s.Light.P99)
	}
	fmt.Fprintf(&b, " batch minus single p50: %+.2f ms (the batch wait is at most INGEST_BATCH_MAX_WAIT).\n", batch.Light.P50-single.Light.P50)
	if batch.Big != nil {
		fmt.Fprintf(&b, "\nBatch mode with %s connections: %.0f events/s, p99 %.1f ms, %d failed.\n",
			r.Options["big-conns"], batch.Big.Rate, batch.Big.P99, batch.Big.Failed)
	}
	r.cpuMarkdown(&b)
	r.storageMarkdown(&b)
	fmt.Fprintf(&b, "\n## Worker (backlog of %s events, example handler, grouped)\n\n", r.Options["backlog"])
	fmt.Fprintf(&b, "The median of %s runs per concurrency, each a River no-op drain then a worker drain of the same backlog; the range is the lowest and highest ratio.\n\n", r.Options["worker-runs"])
	fmt.Fprintf(&b, "| Concurrency | Worker jobs/s | River no-op jobs/s | Worker / River | Range | Worker connections (max) | River no-op connections (max) |\n|---:|---:|---:|---:|---|---:|---:|\n")
	for _, w := range r.Workers {
		fmt.Fprintf(&b, "| %d | %.0f | %.0f | **%.2f** | %.2f–%.2f | %d | %d |\n", w.Concurrency, w.JobsPerSec, w.RiverNoOp, w.Ratio(), w.RatioLow, w.RatioHigh, w.MaxConns, w.RiverMaxConns)
	}
	if d := r.SoakDrain; d.JobsPerSec > 0 {
		fmt.Fprintf(&b, "\nThe soak's backlog (%d events) drained by %d workers with the default settings: **%.0f jobs/s** on at most %d connections (311 jobs/s before group commit).\n",
			d.Jobs, d.Workers, d.JobsPerSec, d.MaxConns)
	}
	fmt.Fprintf(&b, "\n## End to end (receiver 200 → effect committed, and → River job completed)\n\n")
	fmt.Fprintf(&b, "| Events/s | Share of the worker's best rate | Effect p50 ms | Effect p99 ms | Completed p50 ms | Completed p99 ms |\n|---:|---:|---:|---:|---:|---:|\n")
	for _, e := range r.EndToEndCurve {
		fmt.Fprintf(&b, "| %.0f | %.0f%% | %.1f | %.1f | %.1f | %.1f |\n", e.Rate, 100*e.Fraction, e.P50, e.P99, e.CompletedP50, e.CompletedP99)
	}
	fmt.Fprintf(&b, "\nRiver's batch completer completes jobs every 250 ms unless 100 are waiting, so a job is completed after its effect has committed.\n")
	if o := r.Ordering; o != nil {
		fmt.Fprintf(&b, "\n## Ordered handlers (%d Stripe subscription events over %d subscriptions, one default worker)\n\n", o.Events, o.Objects)
		fmt.Fprintf(&b, "The same events and the same handler, with each event's object key (ordered: an advisory lock per object, its mark read and written) and without; the median of %d runs, the range the lowest and highest ratio.\n\n", o.Runs)
		fmt.Fprintf(&b, "| Ordered jobs/s | Unordered jobs/s | Ordered / unordered | Range | Stale events (ordered) |\n|---:|---:|---:|---|---:|\n")
		fmt.Fprintf(&b, "| %.0f | %.0f | **%.2f** | %.2f–%.2f | %d |\n", o.OrderedPerSec, o.UnorderedPerSec, o.Ratio(), o.RatioLow, o.RatioHigh, o.Stale)
	}
	fmt.Fprintf(&b, "\n## Targets\n\n| Target | Want | Got | Met |\n|---|---|---|---|\n")
	for _, t := range r.Targets {
		met := "yes"
		if !t.Met {
			met = "**no**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.Name, t.Want, t.Got, met)
	}
	fmt.Fprintf(&b, "\n## Machine and options\n\n")
	for _, m := range []map[string]string{r.Machine, r.Options} {
		for _, k := range sortedKeys(m) {
			fmt.Fprintf(&b, "- %s: %s\n", k, m[k])
		}
	}
	if len(r.Lost) > 0 {
		fmt.Fprintf(&b, "\n**LOST EVENTS: %s**\n", strings.Join(r.Lost, "; "))
	}
	return b.String()
}

func (r *report) write(dir, md string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), js, 0o644); err != nil {
		return err
	}
	if err := r.chart(filepath.Join(dir, "chart.png")); err != nil {
		return err
	}
	return r.workerChart(filepath.Join(dir, "workers.png"))
}

func (o options) describe() map[string]string {
	return map[string]string{
		"duration": o.duration.String(), "conns": fmt.Sprint(o.conns), "big-conns": fmt.Sprint(o.bigConns),
		"dup": fmt.Sprint(o.dupShare), "pool-conns": fmt.Sprint(o.poolConns), "backlog": fmt.Sprint(o.backlog), "drain-backlog": fmt.Sprint(o.drainBacklog), "worker-runs": fmt.Sprint(o.workerRuns), "ordering-runs": fmt.Sprint(o.orderingRuns),
		"cpu-conns": fmt.Sprint(o.cpuConns), "cpu-rounds": fmt.Sprint(o.cpuRounds), "cpu-env": strings.Join(o.cpuEnv, " "), "compare-bin": o.compareBin,
		"e2e-rate": fmt.Sprint(o.e2eRate), "light-rate": fmt.Sprint(o.lightRate), "worker-levels": fmt.Sprint(o.workerLevels),
	}
}

// machineFacts records what the numbers depend on.
func machineFacts(ctx context.Context, adminURL string) map[string]string {
	m := map[string]string{"cpus": fmt.Sprint(runtime.NumCPU()), "go": runtime.Version()}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m["memory"] = strings.TrimSpace(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "MemTotal:"))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return m
	}
	defer conn.Close(ctx)
	for _, setting := range []string{"server_version", "fsync", "synchronous_commit", "shared_buffers", "max_connections", "wal_level"} {
		var v string
		if conn.QueryRow(ctx, "SELECT current_setting($1)", setting).Scan(&v) == nil {
			m["postgres "+setting] = v
		}
	}
	return m
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
