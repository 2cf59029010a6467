package hookline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/logging"
	"github.com/hookline/hookline/internal/logtest"
	"github.com/hookline/hookline/internal/migrate"
	"github.com/hookline/hookline/internal/pgtest"
	"github.com/hookline/hookline/internal/schema"
)

// runBundle is a receiver or worker running in the test's process, as
// RunReceiver or RunWorker, with its logs captured.
type runBundle struct {
	logs *logtest.Buffer
	stop context.CancelFunc
	errc chan error
}

// wait returns what the run returned, within 30s.
func (b *runBundle) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-b.errc:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("did not return within 30s; logs:\n%s", b.logs.String())
		return nil
	}
}

// addr waits for the log line msg and returns its "addr".
func (b *runBundle) addr(t *testing.T, msg string) string {
	t.Helper()
	var addr string
	require.Eventually(t, func() bool {
		select {
		case err := <-b.errc:
			t.Fatalf("returned %v before logging %q; logs:\n%s", err, msg, b.logs.String())
		default:
		}
		for _, line := range b.lines(t) {
			if line["msg"] == msg {
				addr, _ = line["addr"].(string)
				return true
			}
		}
		return false
	}, 20*time.Second, 10*time.Millisecond, "no %q in the logs", msg)
	return addr
}

// lines decodes the JSON log lines written so far.
func (b *runBundle) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.logs.String()))
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), sc.Text())
		out = append(out, m)
	}
	return out
}

// msgs lists the messages of the log lines written so far, in order.
func (b *runBundle) msgs(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, l := range b.lines(t) {
		out = append(out, l["msg"].(string))
	}
	return out
}

func newRunBundle(t *testing.T) (*runBundle, *slog.Logger, context.Context) {
	t.Helper()
	b := &runBundle{logs: &logtest.Buffer{}, errc: make(chan error, 1)}
	logger, err := logging.New(b.logs, "json", slog.LevelInfo)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	b.stop = cancel
	t.Cleanup(cancel)
	return b, logger, ctx
}

// startReceiver runs RunReceiver on dbURL with env added to a minimal
// configuration.
func startReceiver(t *testing.T, dbURL string, env map[string]string) *runBundle {
	t.Helper()
	vars := map[string]string{
		"DATABASE_URL": dbURL, "RECEIVER_ADDR": "127.0.0.1:0", "STRIPE_WEBHOOK_SECRET": "whsec_test", "BANK_WEBHOOK_SECRET": "bank_test",
		"SHUTDOWN_TIMEOUT": "2s", "DATABASE_MAX_CONNS": "4",
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := LoadReceiverConfig(func(k string) string { return vars[k] })
	require.NoError(t, err)
	b, logger, ctx := newRunBundle(t)
	cfg.Logger = logger
	go func() { b.errc <- RunReceiver(ctx, cfg) }()
	return b
}

// startWorker runs RunWorker on dbURL with env added to a minimal
// configuration.
func startWorker(t *testing.T, dbURL string, env map[string]string) *runBundle {
	t.Helper()
	vars := map[string]string{
		"DATABASE_URL": dbURL, "WORKER_ADDR": "127.0.0.1:0", "WORKER_CONCURRENCY": "2",
		"WORKER_SOFT_STOP_TIMEOUT": "2s", "WORKER_PRUNE_INTERVAL": "0",
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := LoadWorkerConfig(func(k string) string { return vars[k] })
	require.NoError(t, err)
	b, logger, ctx := newRunBundle(t)
	cfg.Logger = logger
	go func() { b.errc <- RunWorker(ctx, cfg, NewMux()) }()
	return b
}

// readyz answers GET base/readyz: its status and its body's fields.
func readyz(t *testing.T, base string) (int, map[string]string) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp.StatusCode, body
}

// busyPort returns an address that something already listens on.
func busyPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// unapplyLatestHookline makes Hookline's latest migration pending, as if
// this build were newer than the database, and returns its version.
func unapplyLatestHookline(t *testing.T, db *pgtest.DB) int64 {
	t.Helper()
	var v int64
	require.NoError(t, db.Pool.QueryRow(context.Background(),
		`DELETE FROM goose_db_version WHERE version_id = (SELECT max(version_id) FROM goose_db_version) RETURNING version_id`).Scan(&v))
	return v
}

func TestReceiverReadyzAnswers503WithTheFixUntilTheDatabaseIsMigrated(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDB(t)
	b := startReceiver(t, db.URL, nil)
	base := "http://" + b.addr(t, "receiver listening")

	status, body := readyz(t, base)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Regexp(t, "^Database is not migrated: River migrations 1-[0-9, -]+ and Hookline migrations 1-[0-9, -]+ are pending; run `hookctl migrate`$", body["error"])
	require.Eventually(t, func() bool { return strings.Contains(b.logs.String(), "run `hookctl migrate`") }, 10*time.Second, 10*time.Millisecond,
		"the log says what to do too:\n%s", b.logs.String())

	_, err := migrate.Up(context.Background(), db.Pool)
	require.NoError(t, err)
	require.Eventually(t, func() bool { s, _ := readyz(t, base); return s == http.StatusOK }, 15*time.Second, 100*time.Millisecond,
		"ready within seconds of hookctl migrate")
	b.stop()
	require.NoError(t, b.wait(t))
}

func TestReceiverReadyzAnswers503WhileAMigrationIsPending(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	v := unapplyLatestHookline(t, db)
	b := startReceiver(t, db.URL, nil)
	status, body := readyz(t, "http://"+b.addr(t, "receiver listening"))
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "Database is not migrated: Hookline migration "+itoa(v)+" is pending; run `hookctl migrate`", body["error"])
}

func TestReceiverReadyzAnswers200OnAMigratedDatabase(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	b := startReceiver(t, db.URL, nil)
	status, body := readyz(t, "http://"+b.addr(t, "receiver listening"))
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, map[string]string{"status": "ready"}, body)
	require.NotContains(t, b.logs.String(), "hookctl migrate")
}

func TestReceiverOnABusyPortFailsWithoutLoggingListening(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	addr := busyPort(t)
	b := startReceiver(t, db.URL, map[string]string{"RECEIVER_ADDR": addr})
	err := b.wait(t)
	require.ErrorContains(t, err, "listen on "+addr)
	require.ErrorContains(t, err, "address already in use")
	require.NotContains(t, b.msgs(t), "receiver listening", "listening is logged only after a successful bind:\n%s", b.logs.String())
}

func TestWorkerOnABusyAdminPortFailsWithoutStartingRiver(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	addr := busyPort(t)
	b := startWorker(t, db.URL, map[string]string{"WORKER_ADDR": addr})
	err := b.wait(t)
	msgs := b.msgs(t)
	require.NotContains(t, msgs, "River client started", "River must not start when the admin port is busy:\n%s", b.logs.String())
	require.NotContains(t, msgs, "admin server listening")
	require.ErrorContains(t, err, "admin server: listen on "+addr)
	require.ErrorContains(t, err, "address already in use")
	var procs int
	require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM worker_processes`).Scan(&procs))
	require.Zero(t, procs, "the throttle controller never announced the process")
}

func TestWorkerOnAnUnmigratedDatabaseSaysRunHookctlMigrateAndNeverStartsRiver(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDB(t)
	b := startWorker(t, db.URL, nil)
	err := b.wait(t)
	require.ErrorIs(t, err, schema.ErrNotMigrated)
	require.ErrorContains(t, err, "run `hookctl migrate`")
	require.NotContains(t, b.msgs(t), "River client started", b.logs.String())
	require.Empty(t, b.logs.String(), "the error is printed once, by the caller, not logged as well")
}

// TestWorkerStartsOnAMigratedDatabaseAndIsReady is the control for the
// failures above. (That the bind comes before River is proven by
// TestWorkerOnABusyAdminPortFailsWithoutStartingRiver: River logs its start
// from a goroutine of its own, so the order of the lines here would not
// catch a bind moved after it.)
func TestWorkerStartsOnAMigratedDatabaseAndIsReady(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	b := startWorker(t, db.URL, nil)
	base := "http://" + b.addr(t, "admin server listening")
	require.Eventually(t, func() bool { return strings.Contains(b.logs.String(), `"msg":"worker started"`) }, 20*time.Second, 10*time.Millisecond)
	status, body := readyz(t, base)
	require.Equal(t, http.StatusOK, status, body)

	msgs := b.msgs(t)
	require.Contains(t, msgs, "River client started")
	require.Less(t, slices.Index(msgs, "admin server listening"), slices.Index(msgs, "River client started"), "%q", msgs)
	b.stop()
	require.NoError(t, b.wait(t))
}

// TestReceiverStopsWhatItStartedBeforeItReturns runs alone (not parallel):
// it looks for the receiver's goroutines among all of the test binary's.
func TestReceiverStopsWhatItStartedBeforeItReturns(t *testing.T) {
	db := pgtest.NewDB(t)
	b := startReceiver(t, db.URL, map[string]string{"RECEIVER_DEBUG_ADDR": "127.0.0.1:0"})
	b.addr(t, "receiver listening")
	debugAddr := b.addr(t, "serving pprof; keep this address private")
	resp, err := http.Get("http://" + debugAddr + "/debug/pprof/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	b.stop()
	require.NoError(t, b.wait(t))
	_, err = net.DialTimeout("tcp", debugAddr, time.Second)
	require.Error(t, err, "the pprof server is shut down when the receiver returns")
	var stacks bytes.Buffer
	require.NoError(t, pprof.Lookup("goroutine").WriteTo(&stacks, 1))
	for _, fn := range []string{"shed.(*Limiter).Run", "schema.(*Checker).Watch", "hookline.RunReceiver"} {
		require.NotContains(t, stacks.String(), fn, "still running after RunReceiver returned")
	}
}

func TestCheckTransactionsAgreesWithItsMessage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		transactions, size int
		wantMost           int // 0: accepted
	}{
		{transactions: 0, size: 4},
		{transactions: 0, size: 20},
		{transactions: 14, size: 20},
		{transactions: 15, size: 20, wantMost: 14},
		{transactions: 18, size: 20, wantMost: 14},
		{transactions: 1, size: 7},
		{transactions: 2, size: 7, wantMost: 1},
	} {
		err := checkTransactions(tt.transactions, tt.size)
		if tt.wantMost == 0 {
			require.NoError(t, err, "%d transactions, pool of %d", tt.transactions, tt.size)
			continue
		}
		require.ErrorContains(t, err, "keep it at most "+itoa(int64(tt.wantMost)))
		require.NoError(t, checkTransactions(tt.wantMost, tt.size), "the most the message allows is accepted")
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// sslmode=prefer, pgx's default, tries TLS and then plain text.
func TestWorkerOnAnUnreachableDatabaseFailsWithItsErrorPrintedOnce(t *testing.T) {
	t.Parallel()
	b := startWorker(t, "postgres://postgres@127.0.0.1:1/none?connect_timeout=2&sslmode=prefer", nil)
	err := b.wait(t)
	require.ErrorContains(t, err, "check the database's migrations")
	require.ErrorContains(t, err, "127.0.0.1:1")
	require.Equal(t, 1, strings.Count(err.Error(), "connection refused"),
		"pgx's TLS and plain-text attempts failed the same way; say it once: %v", err)
	require.Empty(t, b.logs.String(), "the error is printed once, by the caller, not logged as well")
}
