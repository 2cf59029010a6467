package faults_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/clustertest"
	"github.com/hookline/hookline/internal/ledgertest"
)

// TestRollingDeployFailsNoRequestAndRunsEachJobOnce replaces two receivers
// and two workers one at a time under a flood, as a rolling deploy does.
// Each receiver is first taken out of the load balancer (the sender's
// targets) and drained of its requests in flight, as a readiness change or
// preStop hook would, then sent SIGTERM: it must exit 0, and its replacement
// joins the targets. Each worker is then sent SIGTERM: it stops fetching,
// finishes its jobs in flight (WORKER_SOFT_STOP_TIMEOUT) and must exit 0
// without having had to cancel any; then its replacement starts.
//
// Nothing may fail: no delivery goes unanswered and none is answered 5xx or
// 429 during the whole run; the only refusals are the 400s of the tampered
// and stale events. And no job is lost or run twice: every event job is
// completed on its first attempt with no error recorded. A job that a stop
// had cancelled would be rerun, its effect still applied once thanks to the
// completing transaction, but a graceful deploy has no reason to cancel one:
// jobs take milliseconds and the soft stop waits 20s.
func TestRollingDeployFailsNoRequestAndRunsEachJobOnce(t *testing.T) {
	parallel(t)
	ctx := context.Background()
	phase := stopwatch(t)
	c := clustertest.New(t)
	c.Forbid(ledgertest.Canary)
	receivers := []*clustertest.Proc{c.StartReceiver(t, receiverEnv...), c.StartReceiver(t, receiverEnv...)}
	workers := []*clustertest.Proc{c.StartWorker(t, workerEnv...), c.StartWorker(t, workerEnv...)}
	urls := func() []string {
		var out []string
		for _, r := range receivers {
			if r != nil {
				out = append(out, r.URL)
			}
		}
		return out
	}

	l := ledgertest.New()
	s := ledgertest.NewSender(l, urls()...)
	obs := ledgertest.Observe(s)
	stop := flood(t, s, ledgertest.NewGenerator("deploy"), seed(t))
	waitAcks(t, obs, 200, 60*time.Second, "before the deploy")
	phase("flood flowing")

	for i, old := range receivers {
		waitAcks(t, obs, 300, 60*time.Second, "before replacing a receiver")
		receivers[i] = nil
		s.SetTargets(urls()...)
		// The load balancer drains: deliveries that picked this receiver
		// before the change finish. The sender counts them from the pick,
		// so zero means none can still reach it.
		clustertest.WaitFor(t, 30*time.Second, "the drained receiver to have no request in flight", func() bool {
			return s.InFlight(old.URL) == 0
		})
		require.NoError(t, old.Stop(t, syscall.SIGTERM, 30*time.Second), "receiver (pid %d) must exit 0 on SIGTERM", old.Pid())
		receivers[i] = c.StartReceiver(t, receiverEnv...)
		s.SetTargets(urls()...)
		phase(fmt.Sprintf("receiver %d: pid %d drained and stopped (exit 0), pid %d serving on %s", i, old.Pid(), receivers[i].Pid(), receivers[i].Addr))
	}
	jobsAtSigterm := 0
	for i, old := range workers {
		waitAcks(t, obs, 300, 60*time.Second, "before replacing a worker")
		var held int
		require.NoError(t, c.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'process_event'
			AND state = 'running' AND attempted_by[cardinality(attempted_by)] = $1`, riverClientID(t, old)).Scan(&held))
		jobsAtSigterm += held
		require.NoError(t, old.Stop(t, syscall.SIGTERM, 40*time.Second), "worker (pid %d) must exit 0 on SIGTERM", old.Pid())
		require.NotContains(t, old.Out.String(), "soft stop timed out", "worker (pid %d) had to cancel jobs in flight", old.Pid())
		workers[i] = c.StartWorker(t, workerEnv...)
		phase(fmt.Sprintf("worker %d: pid %d stopped (exit 0) with %d jobs running just before SIGTERM, pid %d started", i, old.Pid(), held, workers[i].Pid()))
	}
	waitAcks(t, obs, 300, 60*time.Second, "after the deploy")
	stop()
	phase("flood stopped")

	drain := retryAndDrain(t, c, l, s, 2*time.Minute)
	phase("retried and drained")
	var notOnce int
	var examples []string
	rows, err := c.DB.Pool.Query(ctx, `SELECT id, attempt, coalesce(array_length(errors, 1), 0) FROM river_job
		WHERE kind = 'process_event' AND (attempt <> 1 OR errors IS NOT NULL) ORDER BY id`)
	require.NoError(t, err)
	for rows.Next() {
		var id int64
		var attempt, errs int
		require.NoError(t, rows.Scan(&id, &attempt, &errs))
		notOnce++
		if len(examples) < 10 {
			examples = append(examples, fmt.Sprintf("job %d: attempt %d, %d errors", id, attempt, errs))
		}
	}
	require.NoError(t, rows.Err())

	rep := check(t, c, l, "faults/rolling-deploy", map[string]any{
		"receivers_replaced":      len(receivers),
		"workers_replaced":        len(workers),
		"jobs_not_run_once":       notOnce,
		"jobs_running_at_sigterm": jobsAtSigterm,
		"drain_s":                 seconds(drain),
		"graceful_exits_zero":     len(receivers) + len(workers),
	})
	require.Zero(t, rep.NoAnswer, "deliveries that got no answer during the deploy")
	var failed []string
	for status, n := range rep.Statuses {
		if status >= 500 || status == http.StatusTooManyRequests {
			failed = append(failed, fmt.Sprintf("%d×%d", n, status))
		}
	}
	require.Empty(t, failed, "failed answers during the deploy")
	var refusedValid []string
	for _, a := range obs.Attempts() {
		if a.Status == http.StatusBadRequest {
			if k, ok := l.KindOf(a.Key); !ok || k == ledgertest.Valid {
				refusedValid = append(refusedValid, a.Key)
			}
		}
	}
	require.Empty(t, refusedValid, "the only 400s are those of tampered and stale events")
	require.Zero(t, notOnce, "every job runs once: %s", strings.Join(examples, "; "))
}
