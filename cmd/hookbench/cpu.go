package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux this runs on.
const clockTicks = 100

// procCPU returns the CPU seconds (user + system) pid has used, from
// /proc/<pid>/stat, or 0 if it cannot be read (the process has gone).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	return statCPU(b)
}

// statCPU reads utime + stime, in seconds, from the text of a
// /proc/<pid>/stat file.
func statCPU(b []byte) float64 {
	// The command name, in parentheses, may hold spaces: count the fields
	// after its closing parenthesis (field 3, state, is the first).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / clockTicks
}

// pgProcs lists the Postgres processes that work for a benchmark
// database: its backends (pg_stat_activity, by database name) and the
// server's own background processes (WAL writer, checkpointer, …), which
// the commits cost too. Other databases' backends are left out: Postgres
// is shared with other work on this machine.
func (db *database) pgProcs(ctx context.Context) ([]int, error) {
	rows, err := db.pool.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1 OR backend_type <> 'client backend'`, db.name)
	if err != nil {
		return nil, fmt.Errorf("list Postgres processes: %w", err)
	}
	defer rows.Close()
	var pids []int
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			return nil, err
		}
		pids = append(pids, pid)
	}
	return pids, rows.Err()
}

// cpuMeter samples the CPU time of a server process and, if db is set,
// of the Postgres processes working for it.
type cpuMeter struct {
	pid int
	db  *database
	at  time.Time
	// pg holds each Postgres process's CPU seconds when the meter started.
	pg   map[int]float64
	proc float64
	// wal is the cluster's WAL position when the meter started.
	wal string
}

func startCPU(ctx context.Context, pid int, db *database) (*cpuMeter, error) {
	m := &cpuMeter{pid: pid, db: db, pg: map[int]float64{}}
	if db != nil {
		pids, err := db.pgProcs(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range pids {
			m.pg[p] = procCPU(p)
		}
		if err := db.pool.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&m.wal); err != nil {
			return nil, fmt.Errorf("read WAL position: %w", err)
		}
	}
	m.at, m.proc = time.Now(), procCPU(pid)
	return m, nil
}

// stop returns the seconds elapsed, the CPU seconds the server used and
// those Postgres used since start, and the bytes of WAL written since. A
// backend that started during the phase counts from zero; one that ended
// during it is lost (the pools keep theirs open). WAL is the cluster's:
// other work on it in the meantime counts too.
func (m *cpuMeter) stop(ctx context.Context) (elapsed, server, pg, wal float64, err error) {
	server, elapsed = procCPU(m.pid)-m.proc, time.Since(m.at).Seconds()
	if m.db == nil {
		return elapsed, server, 0, 0, nil
	}
	pids, err := m.db.pgProcs(ctx)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	for _, p := range pids {
		pg += procCPU(p) - m.pg[p]
	}
	if err := m.db.pool.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::float8`, m.wal).Scan(&wal); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("read WAL written: %w", err)
	}
	return elapsed, server, pg, wal, nil
}

// cpuResult is one server at one load: its throughput, latency and the
// CPU it and Postgres spent per 1,000 acknowledged (200) events.
type cpuResult struct {
	Server string  `json:"server"`
	Events string  `json:"events"`
	Conns  int     `json:"conns"`
	Round  int     `json:"round"`
	Rate   float64 `json:"events_per_sec"`
	P99    float64 `json:"p99_ms"`
	Failed int     `json:"failed"`
	// ServerCPU and PGCPU are CPU seconds per 1,000 acknowledged events.
	ServerCPU float64 `json:"server_cpu_s_per_1k"`
	PGCPU     float64 `json:"postgres_cpu_s_per_1k"`
	// WAL is the bytes of WAL written per acknowledged event.
	WAL float64 `json:"wal_bytes_per_event"`
	// ServerCores, PGCores and LoadCores are CPU seconds per second: the
	// cores used by the server, Postgres and hookbench's load generator.
	ServerCores float64 `json:"server_cores"`
	PGCores     float64 `json:"postgres_cores"`
	LoadCores   float64 `json:"load_cores"`
}

// cpuServer is one configuration of the CPU phase, started once.
type cpuServer struct {
	name string
	p    *process
	db   *database
	ev   map[string]*events
}

// cpuPhase runs every configuration — the bare ceiling, the receiver's own
// stack without a database, and the receiver in single and batch mode
// (and, with -compare-bin, those built from another tree) — at each
// connection count with Stripe and with bank events, interleaved round by
// round, so that each ratio compares loads measured minutes apart at most.
func (b *bench) cpuPhase(ctx context.Context, rep *report) error {
	var servers []*cpuServer
	defer func() {
		for _, s := range servers {
			s.p.stop()
			if s.db != nil {
				s.db.drop(ctx)
			}
		}
	}()
	newEv := func(run string) map[string]*events {
		st := newEvents(run+"s", benchStripeSecret, b.o.dupShare, 2_000_000)
		st.stripe = true
		return map[string]*events{"stripe": st, "bank": newEvents(run+"b", benchSecret, b.o.dupShare, 2_000_000)}
	}
	for _, name := range []string{"bare", "verify-only"} {
		if !b.o.cpuServers[name] {
			continue
		}
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		cmd := map[string]string{"bare": "bare-server", "verify-only": "ceiling-server"}[name]
		p, err := startProcess(ctx, b.self, []string{cmd, "-addr", addr, "-bank-secret", benchSecret, "-stripe-secret", benchStripeSecret}, nil, "http://"+addr)
		if err != nil {
			return err
		}
		servers = append(servers, &cpuServer{name: name, p: p, ev: newEv("cpu" + strings.ReplaceAll(name, "-", ""))})
	}
	type recv struct {
		name, bin, mode string
		env             []string
	}
	var recvs []recv
	for _, mode := range []string{"single", "batch"} {
		if !b.o.cpuServers[mode] {
			continue
		}
		recvs = append(recvs, recv{name: mode, bin: b.o.binDir, mode: mode})
		if b.o.compareBin != "" {
			recvs = append(recvs, recv{name: mode + " (" + b.o.compareName + ")", bin: b.o.compareBin, mode: mode})
		}
	}
	for _, v := range b.o.variants {
		name, rest, _ := strings.Cut(v, "=")
		f := strings.Fields(rest)
		r := recv{name: name, bin: f[0], mode: "batch", env: f[1:]}
		for _, e := range r.env {
			if m, ok := strings.CutPrefix(e, "INGEST_MODE="); ok {
				r.mode = m
			}
		}
		recvs = append(recvs, r)
	}
	for i, r := range recvs {
		db, err := newDatabase(ctx, b.o.adminURL, fmt.Sprintf("cpu%d", i))
		if err != nil {
			return err
		}
		addr, err := freeAddr()
		if err != nil {
			db.drop(ctx)
			return err
		}
		p, err := startProcess(ctx, filepath.Join(r.bin, "receiver"), nil, append([]string{
			"DATABASE_URL=" + db.url, "DATABASE_MAX_CONNS=" + strconv.Itoa(b.o.poolConns),
			"RECEIVER_ADDR=" + addr, "INGEST_MODE=" + r.mode,
			"BANK_WEBHOOK_SECRET=" + benchSecret, "STRIPE_WEBHOOK_SECRET=" + benchStripeSecret,
		}, append(slices.Clone(b.o.cpuEnv), r.env...)...), "http://"+addr)
		if err != nil {
			db.drop(ctx)
			return err
		}
		servers = append(servers, &cpuServer{name: r.name, p: p, db: db, ev: newEv(fmt.Sprintf("cpu%d", i))})
	}
	for round := range b.o.cpuRounds {
		for _, conns := range b.o.cpuConns {
			for _, kind := range []string{"stripe", "bank"} {
				for _, s := range servers {
					ev := s.ev[kind]
					url := s.p.base + ev.path()
					closedLoop(ctx, url, ev, conns, time.Second)
					m, err := startCPU(ctx, s.p.cmd.Process.Pid, s.db)
					if err != nil {
						return err
					}
					load := procCPU(os.Getpid())
					res := closedLoop(ctx, url, ev, conns, b.o.duration)
					load = procCPU(os.Getpid()) - load
					elapsed, server, pg, wal, err := m.stop(ctx)
					if err != nil {
						return err
					}
					c := cpuResult{Server: s.name, Events: kind, Conns: conns, Round: round + 1, Rate: res.Rate, P99: res.P99, Failed: res.Failed,
						ServerCores: server / elapsed, PGCores: pg / elapsed, LoadCores: load / elapsed}
					if res.OK > 0 {
						c.ServerCPU, c.PGCPU = 1000*server/float64(res.OK), 1000*pg/float64(res.OK)
						c.WAL = wal / float64(res.OK)
					}
					b.logf("cpu round %d, %d conns, %s: %s %.0f events/s, p99 %.1f ms, %.3f + %.3f (Postgres) CPU s per 1k, %.0f WAL bytes per event",
						round+1, conns, kind, s.name, c.Rate, c.P99, c.ServerCPU, c.PGCPU, c.WAL)
					rep.CPU = append(rep.CPU, c)
				}
			}
		}
	}
	for _, s := range servers {
		if s.db == nil {
			continue
		}
		s.p.stop()
		if s.name == "batch" {
			st, err := storage(ctx, s.name, s.db)
			if err != nil {
				return err
			}
			rep.Storage = st
		}
		for _, kind := range []string{"stripe", "bank"} {
			r := serverResult{Name: "cpu: " + s.name + ", " + kind}
			if err := b.check(ctx, rep, s.db, s.ev[kind], &r); err != nil {
				return err
			}
		}
	}
	return nil
}

// cpuMean averages the CPU phase's rounds of one server at one load.
func (r *report) cpuMean(server, kind string, conns int) (cpuResult, bool) {
	var sum cpuResult
	n := 0
	for _, c := range r.CPU {
		if c.Server == server && c.Events == kind && c.Conns == conns {
			sum.Rate += c.Rate
			sum.P99 += c.P99
			sum.Failed += c.Failed
			sum.ServerCPU += c.ServerCPU
			sum.PGCPU += c.PGCPU
			sum.WAL += c.WAL
			sum.ServerCores += c.ServerCores
			sum.PGCores += c.PGCores
			sum.LoadCores += c.LoadCores
			n++
		}
	}
	if n == 0 {
		return cpuResult{}, false
	}
	f := float64(n)
	sum.Server, sum.Events, sum.Conns = server, kind, conns
	sum.Rate, sum.P99, sum.ServerCPU, sum.PGCPU, sum.ServerCores, sum.PGCores = sum.Rate/f, sum.P99/f, sum.ServerCPU/f, sum.PGCPU/f, sum.ServerCores/f, sum.PGCores/f
	sum.LoadCores /= f
	sum.WAL /= f
	return sum, true
}

// cpuMarkdown writes the CPU phase's table: each server at each load,
// averaged over the rounds, with its throughput as a share of the bare
// ceiling's at the same load.
func (r *report) cpuMarkdown(b *strings.Builder) {
	if len(r.CPU) == 0 {
		return
	}
	var servers []string
	seen := map[string]bool{}
	for _, c := range r.CPU {
		if !seen[c.Server] {
			seen[c.Server] = true
			servers = append(servers, c.Server)
		}
	}
	fmt.Fprintf(b, "\n## CPU per event (%s rounds, averaged)\n\n", r.Options["cpu-rounds"])
	fmt.Fprintf(b, "CPU seconds per 1,000 acknowledged events, from /proc/<pid>/stat (utime + stime): the server process, and Postgres (the benchmark database's backends and the server's background processes). Cores are CPU seconds per second, the load generator's (hookbench itself) included: on a 2-core machine the three share 2. WAL is the bytes of write-ahead log the cluster wrote per acknowledged event.\n\n")
	fmt.Fprintf(b, "| Events | Conns | Server | Events/s | / bare | / single | p99 ms | Failed | Server CPU s / 1k | Postgres CPU s / 1k | WAL B / event | Server cores | Postgres cores | Load cores |\n")
	fmt.Fprintf(b, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, conns := range splitInts(r.Options["cpu-conns"]) {
		for _, kind := range []string{"stripe", "bank"} {
			bare, _ := r.cpuMean("bare", kind, conns)
			for _, s := range servers {
				c, ok := r.cpuMean(s, kind, conns)
				if !ok {
					continue
				}
				single := "n/a"
				if strings.HasPrefix(s, "batch") {
					if sm, ok := r.cpuMean(strings.Replace(s, "batch", "single", 1), kind, conns); ok {
						single = fmt.Sprintf("%.2fx", ratio(c.Rate, sm.Rate))
					}
				}
				fmt.Fprintf(b, "| %s | %d | %s | %.0f | %.2f | %s | %.1f | %d | %.3f | %.3f | %.0f | %.2f | %.2f | %.2f |\n",
					kind, conns, s, c.Rate, ratio(c.Rate, bare.Rate), single, c.P99, c.Failed, c.ServerCPU, c.PGCPU, c.WAL, c.ServerCores, c.PGCores, c.LoadCores)
			}
		}
	}
}

// splitInts parses a printed []int ("[64 256]").
func splitInts(s string) []int {
	var out []int
	for _, f := range strings.Fields(strings.Trim(s, "[]")) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}
