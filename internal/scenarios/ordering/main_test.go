package ordering_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/clustertest"
	"github.com/hookline/hookline/internal/dispatch"
	"github.com/hookline/hookline/internal/logtest"
	"github.com/hookline/hookline/internal/pgtest"
)

// workerEnv, when set to a database URL, makes the test binary a worker
// process rather than a test run.
const workerEnv = "ORDER_WORKER_DB"

func TestMain(m *testing.M) {
	if url := os.Getenv(workerEnv); url != "" {
		if err := runWorker(url); err != nil {
			fmt.Fprintln(os.Stderr, "order worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	clustertest.Main(m)
}

// orderTables are the test handler's tables: the object's state as the
// handler leaves it (overwritten by every run, so a stale event that ran
// would show), each committed application, each execution's entry and
// exit (written outside the handler's transaction, so that executions
// which roll back or die are seen too), and the events whose handler
// should stall until the process is killed.
const orderTables = `
	CREATE TABLE object_state (object text PRIMARY KEY, event_id text NOT NULL, event_time timestamptz NOT NULL);
	CREATE TABLE order_applied (event_id text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
	CREATE TABLE order_runs (id bigserial PRIMARY KEY, event_id text NOT NULL, pid int NOT NULL,
		entered_at timestamptz NOT NULL, left_at timestamptz);
	CREATE TABLE order_stall (event_id text PRIMARY KEY);`

// handler is the ordered test handler.
type handler struct {
	runs *pgxpool.Pool
	hold time.Duration
}

func (h *handler) Handle(ctx context.Context, tx pgx.Tx, ev hooklinetype.Event) error {
	var run int64
	if err := h.runs.QueryRow(ctx, `INSERT INTO order_runs (event_id, pid, entered_at) VALUES ($1, $2, clock_timestamp()) RETURNING id`,
		ev.EventID, os.Getpid()).Scan(&run); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO order_applied (event_id) VALUES ($1)`, ev.EventID); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO object_state VALUES ($1, $2, $3)
		ON CONFLICT (object) DO UPDATE SET event_id = excluded.event_id, event_time = excluded.event_time`,
		ev.Object, ev.EventID, ev.Time); err != nil {
		return err
	}
	var stall bool
	if err := h.runs.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM order_stall WHERE event_id = $1)`, ev.EventID).Scan(&stall); err != nil {
		return err
	}
	if stall {
		<-ctx.Done() // until the test kills the process
		return ctx.Err()
	}
	time.Sleep(h.hold)
	_, err := h.runs.Exec(ctx, `UPDATE order_runs SET left_at = clock_timestamp() WHERE id = $1`, run)
	return err
}

// runWorker is the worker process: Hookline's dispatch worker in a River
// client, with the ordered handler for stripe customer.subscription.updated,
// until SIGTERM. ORDER_WORKER_GROUP=1 registers it grouped as well.
func runWorker(url string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	pool, err := pgxpool.New(ctx, url+"&pool_max_conns=8")
	if err != nil {
		return err
	}
	defer pool.Close()
	runs, err := pgxpool.New(ctx, url+"&pool_max_conns=3")
	if err != nil {
		return err
	}
	defer runs.Close()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	mux := hooklinetype.NewMux()
	group := os.Getenv("ORDER_WORKER_GROUP") == "1"
	mux.RegisterWith("stripe", "customer.subscription.updated", &handler{runs: runs, hold: 5 * time.Millisecond},
		hooklinetype.HandlerOpts{Ordered: true, Group: group})
	workers := river.NewWorkers()
	river.AddWorker(workers, dispatch.NewWorker(pool, mux, logger, dispatch.WorkerOpts{Transactions: 2}))
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		FetchCooldown: 10 * time.Millisecond, FetchPollInterval: 50 * time.Millisecond, Logger: logger,
		Queues:               map[string]river.QueueConfig{hooklinetype.Queue: {MaxWorkers: 10}},
		JobTimeout:           3 * time.Second,
		RescueStuckJobsAfter: 4 * time.Second,
		Workers:              workers,
	})
	if err != nil {
		return err
	}
	if err := client.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return client.Stop(stopCtx)
}

// proc is a worker process.
type proc struct {
	cmd  *exec.Cmd
	out  *logtest.Buffer
	done chan struct{}
}

// startWorker starts a worker process on db's database; it is stopped when
// t ends, and its output shown if t failed.
func startWorker(t *testing.T, db *pgtest.DB, env ...string) *proc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{out: &logtest.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(exe, "-test.run=^$")
	p.cmd.Env = append(append(os.Environ(), workerEnv+"="+db.URL+sep(db.URL)+"application_name=order-worker"), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("worker pid %d output:\n%s", p.cmd.Process.Pid, p.out.String())
		}
	})
	return p
}

// kill ends the process with SIGKILL and waits for it.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

func (p *proc) pid() string { return strconv.Itoa(p.cmd.Process.Pid) }

// sep is what joins another parameter to url.
func sep(url string) string {
	for _, c := range url {
		if c == '?' {
			return "&"
		}
	}
	return "?"
}
