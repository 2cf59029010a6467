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

// receiverKills is how many times the CI form kills the receiver.
const receiverKills = 3

// TestReceiverCrashLosesNothingAcknowledged kills the receiver with SIGKILL
// in the middle of a flood, several times, and restarts it on the same
// address. Requests in flight are cut off without an answer, and those sent
// while it is down are refused; the provider retries them all. Whatever a
// cut-off request had committed is found as a duplicate on its retry, so
// nothing is counted twice, and nothing that was acknowledged is lost: the
// answer is sent only after the commit.
func TestReceiverCrashLosesNothingAcknowledged(t *testing.T) {
	parallel(t)
	phase := stopwatch(t)
	rng := newRand(seed(t))
	c := clustertest.New(t)
	c.Forbid(ledgertest.Canary)
	r := c.StartReceiver(t, receiverEnv...)
	c.StartWorker(t, workerEnv...)

	l := ledgertest.New()
	s := ledgertest.NewSender(l, r.URL)
	obs := ledgertest.Observe(s)
	stop := flood(t, s, ledgertest.NewGenerator("rkill"), rng.Uint64())
	waitAcks(t, obs, 200, 60*time.Second, "before the first kill")
	phase("flood flowing")

	var downtime time.Duration
	cutOff := 0
	for k := range receiverKills {
		waitAcks(t, obs, 200+rng.IntN(1000), 60*time.Second, "between kills")
		inFlight := s.InFlight(r.URL)
		killed := time.Now()
		r.Kill(t)
		old := r
		r = c.StartReceiver(t, withEnv(receiverEnv, "RECEIVER_ADDR="+old.Addr)...)
		downtime += time.Since(killed)
		cutOff += inFlight
		phase(fmt.Sprintf("kill %d: receiver pid %d killed with %d requests in flight; pid %d up on %s after %s",
			k+1, old.Pid(), inFlight, r.Pid(), r.Addr, time.Since(killed).Round(time.Millisecond)))
	}
	waitAcks(t, obs, 300, 60*time.Second, "after the last restart")
	stop()
	phase("flood stopped")

	drain := retryAndDrain(t, c, l, s, 2*time.Minute)
	phase("retried and drained")
	cutEvents, committedUnanswered := lostAnswers(t, c, obs)

	rep := check(t, c, l, "faults/receiver-crash", map[string]any{
		"kills":              receiverKills,
		"restarts":           receiverKills,
		"in_flight_at_kills": cutOff,
		// Events with an attempt that got no answer, and those of them an
		// unanswered attempt had committed: their retry was a duplicate.
		"events_cut_off":           cutEvents,
		"committed_but_unanswered": committedUnanswered,
		"downtime_s":               seconds(downtime),
		"drain_s":                  seconds(drain),
	})
	require.Positive(t, rep.NoAnswer, "the kills must have cut off or refused some deliveries")
}

// lostAnswers counts the events with an attempt that got no answer, and
// those of them that an earlier attempt had committed before the first
// attempt that was acknowledged began: the inbox row's received_at (its
// transaction's start) comes before that attempt was even sent.
func lostAnswers(t *testing.T, c *clustertest.Cluster, obs *ledgertest.Observer) (cut, committed int) {
	t.Helper()
	firstAck := map[string]time.Time{}
	noAnswer := map[string]bool{}
	for _, a := range obs.Attempts() {
		switch {
		case a.Err != nil && a.Key != "":
			noAnswer[a.Key] = true
		case a.Acked():
			if f, ok := firstAck[a.Key]; !ok || a.Start.Before(f) {
				firstAck[a.Key] = a.Start
			}
		}
	}
	rows, err := c.DB.Pool.Query(context.Background(), `SELECT source || '/' || event_id, received_at FROM inbox_events`)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var key string
		var at time.Time
		require.NoError(t, rows.Scan(&key, &at))
		if f, ok := firstAck[key]; ok && noAnswer[key] && at.Before(f) {
			committed++
		}
	}
	require.NoError(t, rows.Err())
	return len(noAnswer), committed
}
