package faults_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/clustertest"
	"github.com/hookline/hookline/internal/ledgertest"
	"github.com/hookline/hookline/internal/pgtest"
)

// TestDatabaseOutageAnswers503NeverAcksAndRecoversWithoutRestart takes the
// database away in the middle of a flood: new connections to it are refused
// (ALLOW_CONNECTIONS false) and every backend connected to it is terminated,
// the receiver's and the workers' alike. The shared Postgres server itself is
// not restarted: other packages' tests use it at the same time.
//
// While the database is away the receiver must answer 503 with Retry-After,
// and never 2xx to a request that began after the cut and was answered
// before the restore: it cannot have committed it. When connections are
// allowed again the same receiver and worker processes must carry on by
// themselves, and after the providers' retries every acknowledged event is
// stored and applied exactly once.
func TestDatabaseOutageAnswers503NeverAcksAndRecoversWithoutRestart(t *testing.T) {
	parallel(t)
	ctx := context.Background()
	phase := stopwatch(t)
	c := clustertest.New(t)
	c.Forbid(ledgertest.Canary)
	r := c.StartReceiver(t, receiverEnv...)
	// A job whose completion could not be written during the outage stays
	// running until rescued: a short rescue keeps the drain short.
	workers := []*clustertest.Proc{c.StartWorker(t, withEnv(workerEnv, shortRescue...)...), c.StartWorker(t, withEnv(workerEnv, shortRescue...)...)}
	procs := append([]*clustertest.Proc{r}, workers...)
	pids := make([]int, len(procs))
	for i, p := range procs {
		pids[i] = p.Pid()
	}

	l := ledgertest.New()
	s := ledgertest.NewSender(l, r.URL)
	obs := ledgertest.Observe(s)
	phase("cluster started")
	stop := flood(t, s, ledgertest.NewGenerator("dbout"), seed(t))
	waitAcks(t, obs, 300, 60*time.Second, "before the outage")
	phase("flood flowing")

	admin, err := pgx.Connect(ctx, pgtest.AdminURL())
	require.NoError(t, err)
	defer admin.Close(ctx)
	allow := func(on bool) {
		t.Helper()
		_, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{c.DB.Name}.Sanitize()+" WITH ALLOW_CONNECTIONS "+map[bool]string{true: "true", false: "false"}[on])
		require.NoError(t, err)
	}
	// Whatever happens, the database must accept connections again for the
	// checks and for its drop.
	t.Cleanup(func() {
		_, _ = admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{c.DB.Name}.Sanitize()+" WITH ALLOW_CONNECTIONS true")
	})

	allow(false)
	terminated := 0
	clustertest.WaitFor(t, 30*time.Second, "every backend of the database to be gone", func() bool {
		// pg_terminate_backend(pid, timeout) waits for the backend to exit, so
		// no transaction of it can commit after this returns.
		var n, left int
		require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity
			WHERE datname = $1 AND pid <> pg_backend_pid()`, c.DB.Name).Scan(&n))
		terminated += n
		require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, c.DB.Name).Scan(&left))
		return left == 0
	})
	cut := time.Now()
	t.Logf("database cut: %d backends terminated, new connections refused", terminated)

	// Hold the outage until the receiver has demonstrably refused a good
	// number of deliveries, and for at least 3s.
	held503 := func() int {
		n := 0
		for _, a := range obs.Within(cut, time.Now()) {
			if a.Status == http.StatusServiceUnavailable {
				n++
			}
		}
		return n
	}
	clustertest.WaitFor(t, 60*time.Second, "50 answers 503 during the outage", func() bool {
		return held503() >= 50 && time.Since(cut) >= 3*time.Second
	})
	// No backend may have slipped in: the window below is only proof if the
	// database was unreachable for all of it.
	var sneaked int
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, c.DB.Name).Scan(&sneaked))
	require.Zero(t, sneaked, "backends connected to the database during the outage")
	restore := time.Now()
	allow(true)
	outage := restore.Sub(cut)

	// The same processes recover by themselves: the receiver acknowledges
	// new deliveries again, and both report ready.
	waitAcks(t, obs, 300, 60*time.Second, "after the database came back")
	recovered := firstAckAfter(obs, restore).Sub(restore)
	clustertest.WaitReady(t, r.URL, 30*time.Second)
	for _, w := range workers {
		clustertest.WaitReady(t, w.URL, 30*time.Second)
	}
	t.Logf("first 2xx %s after the restore; all ready %s after it", recovered, time.Since(restore))
	stop()
	phase("flood stopped")

	// The test's own pool lost its connections too.
	c.DB.Pool.Reset()
	drain := retryAndDrain(t, c, l, s, 2*time.Minute)
	phase("retried and drained")
	rerun, rescued := jobRuns(t, c)

	for i, p := range procs {
		require.False(t, p.Exited(), "%s (pid %d) must survive the outage", p.Name, pids[i])
		require.Equal(t, pids[i], p.Pid())
	}

	// The window: begun after the cut, answered before the restore.
	var in503, inAcked, in400, inOther, noRetryAfter int
	var acked []string
	for _, a := range obs.Within(cut, restore) {
		switch {
		case a.Acked():
			inAcked++
			if len(acked) < 10 {
				acked = append(acked, a.Key+" "+a.Start.Format(time.StampMicro)+"→"+a.End.Format(time.StampMicro))
			}
		case a.Status == http.StatusServiceUnavailable:
			in503++
		case a.Status == http.StatusBadRequest:
			in400++
		default:
			inOther++
		}
	}
	all503 := 0
	for _, a := range obs.Attempts() {
		if a.Status == http.StatusServiceUnavailable {
			all503++
			if a.RetryAfter == "" {
				noRetryAfter++
			}
		}
	}
	t.Logf("outage %s (cut %s, restore %s): inside it %d×503, %d×2xx, %d×400, %d other",
		outage, cut.Format(time.StampMicro), restore.Format(time.StampMicro), in503, inAcked, in400, inOther)
	require.Zero(t, inAcked, "2xx answers to requests begun after the cut and answered before the restore, e.g. %v", acked)
	require.Positive(t, in503, "the receiver must answer 503 while the database is away")
	require.Zero(t, inOther, "while the database is away every answer must be 503 (or 400 for a refused delivery), never another error or none")
	for _, a := range obs.Within(cut, restore) {
		if a.Status == http.StatusBadRequest {
			kind, _ := l.KindOf(a.Key)
			require.NotEqual(t, ledgertest.Valid, kind, "a valid event got 400 during the outage: %s", a.Key)
		}
	}
	require.Zero(t, noRetryAfter, "every 503 carries Retry-After")

	check(t, c, l, "faults/database-outage", map[string]any{
		"outage_s":              seconds(outage),
		"backends_terminated":   terminated,
		"answers_503":           all503,
		"answers_503_in_outage": in503,
		"answers_2xx_in_outage": inAcked,
		"restarts":              0,
		"recovered_s":           seconds(recovered),
		"drain_s":               seconds(drain),
		"jobs_rerun":            rerun,
		"jobs_rescued":          rescued,
	})
}

// firstAckAfter returns when the first attempt begun after t was answered
// 2xx.
func firstAckAfter(obs *ledgertest.Observer, t time.Time) time.Time {
	var first time.Time
	for _, a := range obs.Attempts() {
		if a.Acked() && !a.Start.Before(t) && (first.IsZero() || a.End.Before(first)) {
			first = a.End
		}
	}
	return first
}
