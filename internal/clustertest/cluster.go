// Package clustertest runs Hookline's real binaries (receiver, worker,
// hookctl) against a fresh Postgres database, for tests that prove what the
// processes do together: under load, when one is killed, when the database
// goes away.
//
// A test builds a Cluster, starts as many receivers and workers as it needs,
// signals or kills them, and at the end checks the database. Every process's
// output is captured; when the test ends, Cluster fails it if any line
// contains a secret or a string the test marked as forbidden (body text, for
// one), so each scenario also checks the logs' hygiene.
//
//	func TestMain(m *testing.M) { clustertest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		c := clustertest.New(t)
//		r := c.StartReceiver(t)
//		c.StartWorker(t)
//		// POST to r.URL + "/api/webhooks/bank" ...
//	}
package clustertest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookline/hookline/internal/logtest"
	"github.com/hookline/hookline/internal/pgtest"
)

// The signing secrets of the sources every cluster declares: "stripe" and
// "bank", from the environment as in a default deployment.
// StandardWebhooksSecret is in the environment as SVIX_WEBHOOK_SECRET, for
// tests whose sources file declares a standardwebhooks source.
const (
	StripeSecret           = "whsec_cluster_stripe_secret"
	BankSecret             = "cluster_bank_secret_value"
	StandardWebhooksSecret = "whsec_Y2x1c3Rlci1zdGFuZGFyZC13ZWJob29rcw=="
)

// The binaries are built once per test binary, from the working tree, into
// a directory Main removes: a package-level once because TestMain is the
// only place that outlives every test of a package.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Main runs a package's tests, then removes the binaries and the template
// database. Call it from TestMain.
func Main(m *testing.M) {
	dir, err := os.MkdirTemp("", "hookline-cluster-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "clustertest:", err)
		os.Exit(1)
	}
	binDir = dir
	release, err := takeTurn(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "clustertest:", err)
		os.Exit(1)
	}
	code := pgtest.Run(m)
	release()
	os.RemoveAll(dir)
	os.Exit(code)
}

// turnLock is the advisory lock that packages running clusters hold while
// they run ("hookline-cluster" in ASCII).
const turnLock = 0x686c636c7573

// takeTurn waits until no other test package is running clusters on the
// shared server, and holds that turn until release. go test runs packages
// in parallel, and two packages of scenarios, each with several receivers
// and workers, can hold most of the server's 100 connections between them;
// a receiver refused a connection then answers 503, which a scenario
// rightly counts as a failed request. The turn is a session-level advisory
// lock, so it ends with the test binary however that ends.
func takeTurn(ctx context.Context) (release func(), err error) {
	conn, err := pgx.Connect(ctx, pgtest.AdminURL())
	if err != nil {
		return nil, fmt.Errorf("connect to take a turn on the test server: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(turnLock)); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("wait for a turn on the test server: %w", err)
	}
	return func() { conn.Close(context.Background()) }, nil
}

// Binary returns the path of cmd/<name>, building every command on first use.
func Binary(t testing.TB, name string) string {
	t.Helper()
	if binDir == "" {
		t.Fatal("clustertest: call clustertest.Main(m) from TestMain")
	}
	buildOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", binDir+"/", "github.com/hookline/hookline/cmd/...")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/...: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}

// Cluster is a migrated database and the processes a test started on it.
type Cluster struct {
	// DB is the cluster's own database, dropped when the test ends.
	DB *pgtest.DB
	// Env is what every process gets: DATABASE_URL and the source secrets.
	Env []string

	mu        sync.Mutex
	procs     []*Proc
	forbidden []string
}

// New creates a database, migrates it with `hookctl migrate`, and registers
// the log check that runs when t ends.
func New(t testing.TB) *Cluster {
	t.Helper()
	db := pgtest.NewEmptyDB(t)
	c := &Cluster{
		DB: db,
		Env: []string{
			"DATABASE_URL=" + db.URL,
			"STRIPE_WEBHOOK_SECRET=" + StripeSecret,
			"BANK_WEBHOOK_SECRET=" + BankSecret,
			"SVIX_WEBHOOK_SECRET=" + StandardWebhooksSecret,
		},
		forbidden: []string{StripeSecret, BankSecret, StandardWebhooksSecret},
	}
	if out, err := c.Hookctl(t, "migrate"); err != nil {
		t.Fatalf("hookctl migrate: %v\n%s", err, out)
	}
	// Registered after the processes' own cleanups would be too late to
	// see them fail; cleanups run last-in first-out, so this one, added
	// first, runs after every process has been stopped.
	t.Cleanup(func() { c.checkLogs(t) })
	return c
}

// Forbid adds strings that must never appear in any process's output, such
// as the text of the bodies a test sends.
func (c *Cluster) Forbid(s ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forbidden = append(c.forbidden, s...)
}

// Hookctl runs hookctl with args against the cluster's database and
// returns its combined output.
func (c *Cluster) Hookctl(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(Binary(t, "hookctl"), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, c.Env...)
	out, err := cmd.CombinedOutput()
	c.checkOutput(t, "hookctl "+strings.Join(args, " "), 0, string(out))
	return string(out), err
}

// StartReceiver starts a receiver on a free port, or on the RECEIVER_ADDR
// given in env, and waits until /healthz answers.
func (c *Cluster) StartReceiver(t testing.TB, env ...string) *Proc {
	t.Helper()
	addr := lookup(env, "RECEIVER_ADDR")
	if addr == "" {
		addr = FreeAddr(t)
		env = append(env, "RECEIVER_ADDR="+addr)
	}
	p := c.Start(t, "receiver", addr, append([]string{"SHUTDOWN_TIMEOUT=20s"}, env...))
	WaitHealthy(t, p.URL, 20*time.Second)
	return p
}

// StartWorker starts a worker with its admin server on a free port, fetching
// promptly, and waits until /healthz answers.
//
// Its concurrency is 100, and its pool 12 connections (6 handler
// transactions), not the default 20, so that the clusters of tests running
// at once stay within the shared server's max_connections (100 by
// default). env may set either back.
func (c *Cluster) StartWorker(t testing.TB, env ...string) *Proc {
	t.Helper()
	addr := FreeAddr(t)
	base := []string{"WORKER_ADDR=" + addr, "WORKER_FETCH_COOLDOWN=10ms", "WORKER_FETCH_POLL_INTERVAL=100ms", "WORKER_CONCURRENCY=100", "DATABASE_MAX_CONNS=12"}
	p := c.Start(t, "worker", addr, append(base, env...))
	WaitHealthy(t, p.URL, 20*time.Second)
	return p
}

// Start runs cmd/<name> with the cluster's environment plus env; later
// entries win. addr is where it serves HTTP, for Proc.URL. It is killed
// when t ends, if still running.
func (c *Cluster) Start(t testing.TB, name, addr string, env []string) *Proc {
	t.Helper()
	p := &Proc{Name: name, Addr: addr, URL: "http://" + addr, Out: &logtest.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(Binary(t, name))
	p.cmd.Env = append(append([]string{"PATH=" + os.Getenv("PATH"), "LOG_FORMAT=json", "LOG_LEVEL=debug",
		// Tests read a receiver's lines as soon as its answer arrives.
		"LOG_FLUSH_INTERVAL=0"}, c.Env...), env...)
	p.cmd.Stdout = p.Out
	p.cmd.Stderr = p.Out
	// If the test binary dies without its cleanups (a -timeout panic, a
	// kill), its processes must not live on holding connections and the
	// database it could not drop.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s (pid %d) output:\n%s", name, p.cmd.Process.Pid, tail(p.Out.String(), 200))
		}
	})
	return p
}

// checkLogs fails t if any process printed a forbidden string. It names the
// process and the line number, never the string itself: it is a secret.
func (c *Cluster) checkLogs(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		c.checkOutputLocked(t, p.Name, p.cmd.Process.Pid, p.Out.String())
	}
}

func (c *Cluster) checkOutput(t testing.TB, name string, pid int, out string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checkOutputLocked(t, name, pid, out)
}

func (c *Cluster) checkOutputLocked(t testing.TB, name string, pid int, out string) {
	t.Helper()
	for i, line := range strings.Split(out, "\n") {
		for j, s := range c.forbidden {
			if s != "" && strings.Contains(line, s) {
				t.Errorf("log hygiene: %s (pid %d) output line %d contains forbidden string #%d (%d bytes)",
					name, pid, i+1, j, len(s))
			}
		}
	}
}

// WaitDrained waits until no event job is queued, scheduled, retryable or
// running, and returns the count of event jobs in each final state.
// Maintenance jobs are left out.
func (c *Cluster) WaitDrained(t testing.TB, within time.Duration) map[string]int {
	t.Helper()
	ctx := context.Background()
	WaitFor(t, within, "every event job to finish", func() bool {
		var pending int
		if err := c.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM river_job
			WHERE kind = 'process_event' AND state NOT IN ('completed', 'cancelled', 'discarded')`).Scan(&pending); err != nil {
			t.Fatalf("count pending jobs: %v", err)
		}
		return pending == 0
	})
	states := map[string]int{}
	rows, err := c.DB.Pool.Query(ctx, `SELECT state::text, count(*) FROM river_job WHERE kind = 'process_event' GROUP BY 1`)
	if err != nil {
		t.Fatalf("count jobs by state: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatalf("scan job states: %v", err)
		}
		states[s] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("count jobs by state: %v", err)
	}
	return states
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// WaitHealthy waits until base/healthz answers 200: the process serves.
func WaitHealthy(t testing.TB, base string, within time.Duration) {
	t.Helper()
	waitOK(t, base+"/healthz", within)
}

// WaitReady waits until base/readyz answers 200: the process can reach the
// database.
func WaitReady(t testing.TB, base string, within time.Duration) {
	t.Helper()
	waitOK(t, base+"/readyz", within)
}

func waitOK(t testing.TB, url string, within time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	WaitFor(t, within, url+" to answer 200", func() bool {
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// WaitFor polls cond every 50ms until it holds, failing t after within.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func lookup(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}

func tail(s string, lines int) string {
	all := strings.Split(s, "\n")
	if len(all) <= lines {
		return s
	}
	return fmt.Sprintf("[%d earlier lines]\n%s", len(all)-lines, strings.Join(all[len(all)-lines:], "\n"))
}
