// Command hookbench measures Hookline's throughput and latency on this
// machine, in one run, so that its ratios compare like with like:
//
//  1. a verify-only server (the receiver's HTTP stack and signature check,
//     no database): the ceiling; and beside it (the CPU phase) a bare
//     net/http server that only checks the signature;
//  2. the receiver with a transaction per request (INGEST_MODE=single);
//  3. the receiver with group commit (INGEST_MODE=batch);
//  4. the CPU phase: the bare ceiling, the verify-only server and both
//     modes at 64 and 256 connections with Stripe and bank events, with
//     the CPU seconds the server and Postgres spent per 1,000 acknowledged
//     events, read from /proc;
//  5. the worker draining a backlog at several concurrencies, each beside
//     River draining the same backlog with a worker that does nothing, and
//     the connections each held;
//  6. two default workers draining a flood's backlog, as after the soak;
//  7. the end-to-end latency from the receiver's 200 to the job's completion;
//  8. ordered handlers: the worker draining 2,000 Stripe subscription
//     events over 1,000 subscriptions through the example's ordered
//     handler, with and without their object keys.
//
// It drives the real binaries over loopback HTTP, and fails if any
// acknowledged event is missing from the inbox or lacks its job.
//
//	go build -o bin/ ./cmd/... && bin/hookbench -out docs/bench
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "hookbench: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	adminURL      string
	binDir        string
	out           string
	duration      time.Duration
	conns         int
	bigConns      int
	dupShare      float64
	poolConns     int
	backlog       int
	drainBacklog  int
	workerRuns    int
	orderingRuns  int
	workerLevels  []int
	e2eRate       float64
	lightRate     float64
	fetchCooldown time.Duration
	// The CPU phase's settings.
	cpuConns    []int
	cpuRounds   int
	cpuEnv      []string
	cpuServers  map[string]bool
	compareBin  string
	compareName string
	// variants are more receivers for the CPU phase: name=bindir, then
	// space-separated NAME=value settings.
	variants []string
}

const (
	benchSecret       = "hookbench-bank-secret"
	benchStripeSecret = "whsec_hookbench"
)

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 1 && args[1] == "ceiling-server" {
		return serveCeiling(ctx, args[2:], stderr)
	}
	if len(args) > 1 && args[1] == "bare-server" {
		return serveBare(ctx, args[2:])
	}
	if len(args) > 1 && args[1] == "noop-worker" {
		return serveNoOp(ctx, os.Getenv, stderr)
	}
	var o options
	fs := flag.NewFlagSet("hookbench", flag.ContinueOnError)
	fs.StringVar(&o.adminURL, "admin-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "Postgres maintenance database; benchmark databases are created and dropped beside it")
	fs.StringVar(&o.binDir, "bin", "bin", "folder holding the receiver and worker binaries")
	fs.StringVar(&o.out, "out", "", "folder to write results.md, results.json and chart.png (default: print only)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each load phase")
	fs.IntVar(&o.conns, "conns", 256, "concurrent connections in the maximum-throughput phase")
	fs.IntVar(&o.bigConns, "big-conns", 1000, "concurrent connections in the memory phase (batch mode)")
	fs.Float64Var(&o.dupShare, "dup", 0.10, "share of deliveries that replay an earlier event")
	fs.IntVar(&o.poolConns, "pool-conns", 16, "receiver pool_max_conns, the same for both modes")
	fs.IntVar(&o.backlog, "backlog", 40000, "events in the worker's backlog")
	fs.IntVar(&o.workerRuns, "worker-runs", 3, "runs per worker concurrency; the median is reported")
	fs.IntVar(&o.orderingRuns, "ordering-runs", 9, "runs of the ordering phase, each ordered and unordered; the median ratio is reported")
	fs.IntVar(&o.drainBacklog, "drain-backlog", 100000, "events in the backlog two default workers drain, as after the soak")
	fs.Float64Var(&o.lightRate, "light-rate", 100, "events per second in the light-load latency phase")
	fs.Float64Var(&o.e2eRate, "e2e-rate", 0, "events per second in the end-to-end latency phase (default: half the best measured worker rate, so the worker is not saturated)")
	fs.DurationVar(&o.fetchCooldown, "fetch-cooldown", 0, "WORKER_FETCH_COOLDOWN for the worker phases (default: the worker's own default)")
	cpuConns := fs.String("cpu-conns", "64,256", "connection counts of the CPU phase")
	fs.IntVar(&o.cpuRounds, "cpu-rounds", 1, "rounds of the CPU phase, each running every configuration once per load")
	cpuEnv := fs.String("cpu-env", "", "space-separated NAME=value settings added to the CPU phase's receivers (e.g. INGEST_BATCH_FLUSHERS=2)")
	cpuServers := fs.String("cpu-servers", "bare,verify-only,single,batch", "configurations of the CPU phase (a profile may want batch alone)")
	fs.StringVar(&o.compareBin, "compare-bin", "", "a folder with another receiver binary, run in the CPU phase beside -bin's (before and after a change)")
	fs.StringVar(&o.compareName, "compare-name", "before", "what to call the -compare-bin receiver in the results")
	fs.Func("variant", "another receiver for the CPU phase, as 'name=bindir NAME=value ...' (INGEST_MODE=single for single mode; batch by default); repeatable", func(v string) error {
		if name, rest, ok := strings.Cut(v, "="); !ok || name == "" || strings.TrimSpace(rest) == "" {
			return fmt.Errorf("want name=bindir [NAME=value ...], not %q", v)
		}
		o.variants = append(o.variants, v)
		return nil
	})
	levels := fs.String("worker-levels", "50,200,500", "worker concurrencies to measure, each beside River's no-op rate")
	phases := fs.String("phases", "ceiling,single,batch,cpu,traced,workers,drain,e2e,ordering", "phases to run, in order")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var err error
	if o.workerLevels, err = parseInts(*levels); err != nil {
		return fmt.Errorf("-worker-levels: %w", err)
	}
	if o.cpuConns, err = parseInts(*cpuConns); err != nil {
		return fmt.Errorf("-cpu-conns: %w", err)
	}
	o.cpuEnv = strings.Fields(*cpuEnv)
	o.cpuServers = map[string]bool{}
	for _, s := range splitComma(*cpuServers) {
		o.cpuServers[s] = true
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	b := &bench{o: o, self: self, log: stderr}
	rep := report{Options: o.describe(), Machine: machineFacts(ctx, o.adminURL)}
	steps := map[string]func(context.Context, *report) error{
		"ceiling": b.ceiling, "single": b.single, "batch": b.batch, "traced": b.traced, "workers": b.workers, "drain": b.soakDrain, "e2e": b.endToEnd,
		"ordering": b.ordering, "cpu": b.cpuPhase,
	}
	for _, name := range splitComma(*phases) {
		step, ok := steps[name]
		if !ok {
			return fmt.Errorf("-phases: unknown phase %q", name)
		}
		if err := step(ctx, &rep); err != nil {
			return fmt.Errorf("phase %s: %w", name, err)
		}
	}
	rep.evaluate()
	md := rep.markdown()
	fmt.Fprint(stdout, md)
	if o.out != "" {
		if err := rep.write(o.out, md); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwrote %s\n", filepath.Join(o.out, "results.md"))
	}
	if len(rep.Lost) > 0 {
		return errors.New("the benchmark lost events: " + fmt.Sprint(rep.Lost))
	}
	return nil
}

// splitComma splits a comma-separated flag, dropping blanks.
func splitComma(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
