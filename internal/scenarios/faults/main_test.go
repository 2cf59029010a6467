package faults_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/clustertest"
	"github.com/hookline/hookline/internal/ledgertest"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// floodClients is the load of every scenario: enough to keep batches and
// jobs in flight when the fault strikes, modest enough for four scenarios
// at once on a 2-core machine.
const floodClients = 16

// Postgres is shared: by these scenarios, by other packages' tests running
// at the same time, and its max_connections is 100. Each process therefore
// keeps a small pool: a worker runs 4 jobs at once on at most 8
// connections (2 handler transactions, River's listener, fetches,
// completions, elections), and a receiver commits with 2 flushers on 4.
var (
	workerEnv   = []string{"WORKER_CONCURRENCY=4", "DATABASE_MAX_CONNS=8"}
	receiverEnv = []string{"INGEST_BATCH_FLUSHERS=2"}
)

// slots lets two scenarios run at once, which keeps the package within CI's
// few minutes and the connections within the server's budget.
var slots = make(chan struct{}, 2)

// parallel marks t parallel and waits for a slot, held until t's cleanup
// has stopped its processes and dropped its database.
func parallel(t *testing.T) {
	t.Helper()
	t.Parallel()
	slots <- struct{}{}
	t.Cleanup(func() { <-slots })
}

// withEnv returns base followed by extra, for a process's environment.
func withEnv(base []string, extra ...string) []string {
	return append(append([]string(nil), base...), extra...)
}

// shortRescue makes a job held by a dead worker runnable again after
// seconds rather than WORKER_RESCUE_AFTER's 5 minutes. The worker refuses a
// RESCUE_AFTER that is not longer than JOB_TIMEOUT plus THROTTLE_MAX_WAIT.
var shortRescue = []string{"WORKER_JOB_TIMEOUT=2s", "WORKER_THROTTLE_MAX_WAIT=500ms", "WORKER_RESCUE_AFTER=3s"}

// flood runs a RealTraffic load through s until the returned stop is
// called, which lets the deliveries in flight finish (with their retries)
// and returns when they have. Cleanup stops it too.
func flood(t *testing.T, s *ledgertest.Sender, gen *ledgertest.Generator, seed uint64) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	halt := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		ledgertest.Load{Sender: s, Gen: gen, Mix: ledgertest.RealTraffic, Clients: floodClients, Seed: seed}.RunUntil(ctx, halt)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(halt)
			select {
			case <-done:
			case <-time.After(2 * time.Minute):
				t.Errorf("the flood's deliveries in flight did not finish within 2m of stopping it")
				cancel()
				<-done
			}
			cancel()
		})
	}
	t.Cleanup(func() { cancel(); stop() })
	return stop
}

// waitAcks waits until the sender has had n more 2xx answers than it had
// when called: proof that the pipeline is flowing, not a clock.
func waitAcks(t *testing.T, obs *ledgertest.Observer, n int, within time.Duration, what string) {
	t.Helper()
	target := obs.Acks() + n
	clustertest.WaitFor(t, within, strconv.Itoa(n)+" more acknowledgements "+what, func() bool { return obs.Acks() >= target })
}

// retryAndDrain stops nothing: it retries every valid event never
// acknowledged, as providers would after the fault, requires them all
// acknowledged, waits for the queue to drain and returns how long that took.
func retryAndDrain(t *testing.T, c *clustertest.Cluster, l *ledgertest.Ledger, s *ledgertest.Sender, within time.Duration) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if left := l.RetryUnacked(ctx, s, floodClients); left != 0 {
		t.Fatalf("%d events still unacknowledged after the provider-style retries", left)
	}
	start := time.Now()
	c.WaitDrained(t, within)
	return time.Since(start)
}

// check runs the ledger's check, names the scenario, adds its figures,
// fails t on any violation and saves the report.
func check(t *testing.T, c *clustertest.Cluster, l *ledgertest.Ledger, scenario string, extra map[string]any) ledgertest.Report {
	t.Helper()
	rep, err := l.Check(context.Background(), c.DB.Pool)
	if err != nil {
		t.Fatalf("check ledger: %v", err)
	}
	rep.Scenario = scenario
	for k, v := range extra {
		rep.Extra[k] = v
	}
	rep.Require(t)
	rep.Save(t)
	return rep
}

// seed is the run's random seed: HOOKLINE_FAULTS_SEED, or the clock. It is
// logged so that a failing run's choices can be repeated.
func seed(t *testing.T) uint64 {
	t.Helper()
	n := uint64(time.Now().UnixNano())
	if v := os.Getenv("HOOKLINE_FAULTS_SEED"); v != "" {
		var err error
		if n, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("HOOKLINE_FAULTS_SEED=%q: %v", v, err)
		}
	}
	t.Logf("seed %d (HOOKLINE_FAULTS_SEED=%d repeats it)", n, n)
	return n
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x6661756c7473)) }

// riverClientID returns the River client id a worker logged when it
// started: the id River writes into river_job.attempted_by.
func riverClientID(t *testing.T, w *clustertest.Proc) string {
	t.Helper()
	var id string
	clustertest.WaitFor(t, 20*time.Second, "the worker to log its River client id", func() bool {
		for _, line := range strings.Split(w.Out.String(), "\n") {
			if !strings.Contains(line, "River client started") {
				continue
			}
			var rec struct {
				ClientID string `json:"client_id"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.ClientID != "" {
				id = rec.ClientID
				return true
			}
		}
		return false
	})
	return id
}

// waitReady waits until base/readyz answers 200: the process can reach the
// database again.
func seconds(d time.Duration) float64 { return float64(d.Milliseconds()) / 1000 }

// stopwatch returns a function that logs what happened and how long after
// the stopwatch started, so that a run's log shows where its time went.
func stopwatch(t *testing.T) func(what string) {
	t.Helper()
	start := time.Now()
	return func(what string) {
		t.Helper()
		t.Logf("+%5.1fs %s", time.Since(start).Seconds(), what)
	}
}

// jobRuns counts the event jobs that ran more than once, and those among
// them that River's rescuer took back from a worker presumed dead.
func jobRuns(t *testing.T, c *clustertest.Cluster) (rerun, rescued int) {
	t.Helper()
	err := c.DB.Pool.QueryRow(context.Background(), `SELECT
			count(*) FILTER (WHERE attempt > 1),
			count(*) FILTER (WHERE EXISTS (SELECT 1 FROM unnest(errors) e WHERE e->>'error' LIKE 'Stuck job rescued%'))
		FROM river_job WHERE kind = 'process_event'`).Scan(&rerun, &rescued)
	if err != nil {
		t.Fatalf("count job reruns: %v", err)
	}
	return rerun, rescued
}
