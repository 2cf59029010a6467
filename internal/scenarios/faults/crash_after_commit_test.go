package faults_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/clustertest"
	"github.com/hookline/hookline/internal/ledgertest"
)

// TestWorkerKilledAfterAGroupCommitsRerunsItsJobsWithNoEffect kills a
// worker in the gap the worker's design opens: a group's effects have
// committed, with their inbox rows marked applied, but River has not yet
// completed the group's jobs. To hold the worker in that gap, the test
// row-locks the running jobs, so River's completer waits on them, and kills
// the worker once every event is applied. The jobs stay "running" until
// the next worker's rescuer retries them; each rerun must find its event
// applied and complete with no effect, which the ledger checks.
func TestWorkerKilledAfterAGroupCommitsRerunsItsJobsWithNoEffect(t *testing.T) {
	parallel(t)
	ctx := context.Background()
	phase := stopwatch(t)
	c := clustertest.New(t)
	c.Forbid(ledgertest.Canary)
	r := c.StartReceiver(t, receiverEnv...)

	const events = 30
	l := ledgertest.New()
	s := ledgertest.NewSender(l, r.URL)
	gen := ledgertest.NewGenerator("aftercommit")
	for range events {
		require.True(t, s.Deliver(ctx, gen.Next(ledgertest.Valid)))
	}
	phase("events stored, no worker yet")

	// Its groups wait a second to fill, time enough to lock the jobs it
	// has fetched before their group commits.
	victim := c.StartWorker(t, withEnv(workerEnv, append(shortRescue, "WORKER_CONCURRENCY=40", "WORKER_GROUP_MAX_WAIT=1s")...)...)
	clustertest.WaitFor(t, 10*time.Second, "the worker to fetch every job", func() bool {
		return countJobs(t, c, "running") == events
	})
	tx, err := c.DB.Pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck // released below; a no-op then
	var locked int
	require.NoError(t, tx.QueryRow(ctx, `WITH l AS (SELECT id FROM river_job WHERE kind = 'process_event' AND state = 'running' FOR UPDATE)
		SELECT count(*) FROM l`).Scan(&locked))
	require.Equal(t, events, locked, "every job is locked while still running")
	phase("jobs running and locked")

	clustertest.WaitFor(t, 20*time.Second, "every event to be applied", func() bool {
		var applied int
		require.NoError(t, c.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM inbox_events WHERE processed_at IS NOT NULL`).Scan(&applied))
		return applied == events
	})
	victim.Kill(t)
	// A backend waiting on a lock does not notice its client is gone: once
	// the lock is released it would run the completer's UPDATE, which
	// needs no client to commit. Ending the dead worker's sessions keeps
	// the crash whole.
	_, err = c.DB.Pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'hookline-worker'`)
	require.NoError(t, err)
	clustertest.WaitFor(t, 10*time.Second, "the dead worker's sessions to end", func() bool {
		var n int
		require.NoError(t, c.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'hookline-worker'`).Scan(&n))
		return n == 0
	})
	phase("every effect committed; worker killed before River completed a job")
	require.Equal(t, events, countJobs(t, c, "running"), "River completed no job: the kill fell in the gap")
	require.NoError(t, tx.Rollback(ctx))

	c.StartWorker(t, withEnv(workerEnv, shortRescue...)...)
	states := c.WaitDrained(t, 150*time.Second)
	phase("rescued and drained")
	require.Equal(t, map[string]int{"completed": events}, states)
	rerun, rescued := jobRuns(t, c)
	require.Equal(t, events, rescued, "every job was rescued from the dead worker and run again")

	rep := check(t, c, l, "faults/worker-crash-after-commit", map[string]any{
		"events": events, "jobs_rescued": rescued, "jobs_rerun": rerun,
	})
	require.Equal(t, events, rep.Effects, "each event applied exactly once, though each job ran twice")
}

func countJobs(t *testing.T, c *clustertest.Cluster, state string) int {
	t.Helper()
	var n int
	err := c.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE kind = 'process_event' AND state = $1`, state).Scan(&n)
	if err != nil {
		t.Fatalf("count %s jobs: %v", state, err)
	}
	return n
}
