package e2e_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/logtest"
	"github.com/hookline/hookline/internal/pgtest"
)

const (
	stripeSecret = "whsec_e2e_stripe"
	bankSecret   = "e2e_bank_secret"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hookline-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	defer os.RemoveAll(dir)
	pgtest.Main(m)
}

// binary returns the path of a freshly built cmd/<name>. The binaries are
// built once per test run, from the working tree.
func binary(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", binDir+"/", "github.com/hookline/hookline/cmd/...")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return filepath.Join(binDir, name)
}

// proc is a running Hookline binary.
type proc struct {
	cmd  *exec.Cmd
	out  *logtest.Buffer
	done chan struct{}
	err  error
}

func start(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{out: &logtest.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary(t, name), args...)
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "LOG_FORMAT=json", "LOG_LEVEL=debug"}, env...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	require.NoError(t, p.cmd.Start())
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.out.String())
		}
	})
	return p
}

// signal sends sig and waits for the process to exit, returning its error.
func (p *proc) signal(t *testing.T, sig syscall.Signal, within time.Duration) error {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(sig))
	select {
	case <-p.done:
		return p.err
	case <-time.After(within):
		t.Fatalf("process did not exit within %s of %s", within, sig)
		return nil
	}
}

// pipeline is a receiver and a worker on a fresh database.
type pipeline struct {
	db          *pgtest.DB
	receiverURL string
	receiver    *proc
	worker      *proc
	env         []string
}

func newPipeline(t *testing.T, workerEnv ...string) *pipeline {
	t.Helper()
	db := pgtest.NewEmptyDB(t)
	env := []string{
		"DATABASE_URL=" + db.URL,
		"STRIPE_WEBHOOK_SECRET=" + stripeSecret,
		"BANK_WEBHOOK_SECRET=" + bankSecret,
	}
	migrate := exec.Command(binary(t, "hookctl"), "migrate")
	migrate.Env = env
	out, err := migrate.CombinedOutput()
	require.NoError(t, err, "%s", out)

	p := &pipeline{db: db, env: env}
	recvAddr := freeAddr(t)
	p.receiverURL = "http://" + recvAddr
	p.receiver = start(t, "receiver", append(env, "RECEIVER_ADDR="+recvAddr, "SHUTDOWN_TIMEOUT=20s"))
	waitHealthy(t, p.receiverURL)
	p.worker = p.startWorker(t, workerEnv...)
	return p
}

func (p *pipeline) startWorker(t *testing.T, extraEnv ...string) *proc {
	t.Helper()
	addr := freeAddr(t)
	env := append(append([]string{}, p.env...),
		"WORKER_ADDR="+addr, "WORKER_FETCH_COOLDOWN=10ms", "WORKER_FETCH_POLL_INTERVAL=100ms")
	w := start(t, "worker", append(env, extraEnv...))
	waitHealthy(t, "http://"+addr)
	return w
}

// waitJobs waits until no event job is queued or running, and returns the
// count of event jobs in each final state. Maintenance jobs (retention) are
// left out.
func (p *pipeline) waitJobs(t *testing.T, within time.Duration) map[string]int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var pending int
		require.NoError(t, p.db.Pool.QueryRow(context.Background(),
			`SELECT count(*) FROM river_job WHERE kind = 'process_event' AND state NOT IN ('completed', 'cancelled', 'discarded')`).Scan(&pending))
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs still pending after %s", pending, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	states := map[string]int{}
	rows, err := p.db.Pool.Query(context.Background(), `SELECT state::text, count(*) FROM river_job WHERE kind = 'process_event' GROUP BY state`)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var s string
		var n int
		require.NoError(t, rows.Scan(&s, &n))
		states[s] = n
	}
	require.NoError(t, rows.Err())
	return states
}

func (p *pipeline) balance(t *testing.T, account string) int64 {
	t.Helper()
	var cents int64
	err := p.db.Pool.QueryRow(context.Background(),
		`SELECT coalesce((SELECT balance_cents FROM account_balances WHERE account = $1), 0)`, account).Scan(&cents)
	require.NoError(t, err)
	return cents
}

// waitBlockedOn waits until one session of the pipeline's database is
// waiting for a lock in a statement on table: the sign that a request or a
// job is provably in flight, held by a lock the test took.
func (p *pipeline) waitBlockedOn(t *testing.T, table string, within time.Duration, what string) {
	t.Helper()
	waitFor(t, within, what, func() bool {
		var waiting int
		require.NoError(t, p.db.Pool.QueryRow(context.Background(), `
			SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%'`, table).Scan(&waiting))
		return waiting == 1
	})
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

func waitHealthy(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s/healthz did not answer within 15s", base)
}
