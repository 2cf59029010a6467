package faults_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/clustertest"
	"github.com/hookline/hookline/internal/ledgertest"
)

// workerKills is how many times the CI form kills a worker.
const workerKills = 4

// TestWorkerCrashesAreRescuedAndApplyOnce kills a random worker with SIGKILL
// at random moments of a flood, each time while it holds jobs, and starts a
// replacement. The transaction of a job in flight dies with the process, so
// its effect is rolled back; the job stays "running" until the leader's
// rescuer finds it older than WORKER_RESCUE_AFTER and makes it retryable.
// The rerun applies the effect: exactly once in all, which the ledger
// checks, and at least one job must have been rescued for the scenario to
// have tested anything.
func TestWorkerCrashesAreRescuedAndApplyOnce(t *testing.T) {
	parallel(t)
	ctx := context.Background()
	phase := stopwatch(t)
	rng := newRand(seed(t))
	c := clustertest.New(t)
	c.Forbid(ledgertest.Canary)
	r := c.StartReceiver(t, receiverEnv...)
	workers := make([]*clustertest.Proc, 2)
	for i := range workers {
		workers[i] = c.StartWorker(t, withEnv(workerEnv, shortRescue...)...)
	}

	l := ledgertest.New()
	s := ledgertest.NewSender(l, r.URL)
	obs := ledgertest.Observe(s)
	stop := flood(t, s, ledgertest.NewGenerator("wkill"), rng.Uint64())
	waitAcks(t, obs, 200, 60*time.Second, "before the first kill")
	phase("flood flowing")

	heldAtKill := 0
	var victims []string
	for k := range workerKills {
		// A random moment: some more of the flood, between 200 and 1200
		// acknowledgements, then a random worker, caught holding jobs.
		waitAcks(t, obs, 200+rng.IntN(1000), 60*time.Second, "between kills")
		i := rng.IntN(len(workers))
		w := workers[i]
		id := riverClientID(t, w)
		var held int
		// It is killed whether or not it holds a job after 10s: a worker
		// that never gets one is a finding of its own, shown by the count.
		deadline := time.Now().Add(10 * time.Second)
		for {
			require.NoError(t, c.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM river_job
				WHERE kind = 'process_event' AND state = 'running' AND attempted_by[cardinality(attempted_by)] = $1`, id).Scan(&held))
			if held > 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		w.Kill(t)
		heldAtKill += held
		victims = append(victims, fmt.Sprintf("worker %d (pid %d, %d jobs running)", i, w.Pid(), held))
		phase(fmt.Sprintf("kill %d: %s", k+1, victims[len(victims)-1]))
		workers[i] = c.StartWorker(t, withEnv(workerEnv, shortRescue...)...)
	}
	waitAcks(t, obs, 300, 60*time.Second, "after the last kill")
	stop()
	phase("flood stopped")

	// The last victim's jobs wait for the rescuer: WORKER_RESCUE_AFTER, up to
	// one rescuer interval (30s), and a leader election (about 15-20s) if
	// the victim was the leader.
	drain := retryAndDrain(t, c, l, s, 150*time.Second)
	phase("retried and drained")
	rerun, rescued := jobRuns(t, c)
	require.Positive(t, heldAtKill, "no kill caught a worker holding a job: the scenario tested nothing")
	require.Positive(t, rescued, "no job was rescued, though %d were running on the workers killed", heldAtKill)

	check(t, c, l, "faults/worker-crash", map[string]any{
		"kills":                    workerKills,
		"victims":                  victims,
		"jobs_running_before_kill": heldAtKill,
		"jobs_rescued":             rescued,
		"jobs_rerun":               rerun,
		"drain_s":                  seconds(drain),
		"rescue_after_s":           3,
		"job_timeout_s":            2,
		"throttle_max_wait_s":      0.5,
	})
}
