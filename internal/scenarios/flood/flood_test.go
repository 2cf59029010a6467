package flood_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/clustertest"
	"github.com/hookline/hookline/internal/ledgertest"
)

// The flood's shape. The default soak is short because the workers, at a
// few hundred jobs a second on the 2-core machine, need several times as
// long as the flood to drain what the receiver took in: 10s of flood is
// about a minute of test in all. 64 clients keep the receiver near its maximum on the
// 2-core benchmark machine (docs/BENCHMARKS.md: about 3,800 events/s with 64
// connections and nothing else running); the workers, the checker and
// Postgres share the same cores here, so the rate is lower and reported.
const (
	floodClients    = 64
	defaultSoak     = 10 * time.Second
	flatAfter       = time.Minute // shorter runs are all warm-up
	flatFactor      = 1.5         // last third ≤ 1.5 × middle third + flatSlackMB
	flatSlackMB     = 20
	seriesPoints    = 60
	retryClients    = 16
	minDrainTimeout = 2 * time.Minute
)

// TestFloodKeepsEveryAcknowledgedEventAndFlatMemory is the flood soak of
// docs/RELIABILITY.md: one receiver in its default batch mode and two
// workers under a sustained closed-loop flood of real-looking traffic, for
// HOOKLINE_SOAK. Afterwards every acknowledged event is stored and applied
// exactly once, nothing tampered or stale is stored, and, on a run of a
// minute or more, no process's RSS grew from the middle third of the run to
// the last. Throughput, p99, peak RSS, the RSS slope and the drain time are
// reported, never required.
func TestFloodKeepsEveryAcknowledgedEventAndFlatMemory(t *testing.T) {
	t.Parallel()
	soak := defaultSoak
	if v := os.Getenv("HOOKLINE_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "HOOKLINE_SOAK must be a Go duration such as 5m")
		soak = d
	}

	c := clustertest.New(t)
	c.Forbid(ledgertest.Canary)
	r := c.StartReceiver(t)
	w1 := c.StartWorker(t)
	w2 := c.StartWorker(t)
	procs := []*clustertest.Proc{r, w1, w2}
	names := []string{"receiver", "worker1", "worker2"}

	l := ledgertest.New()
	s := ledgertest.NewSender(l, r.URL)
	load := ledgertest.Load{Sender: s, Gen: ledgertest.NewGenerator("flood"), Mix: ledgertest.RealTraffic, Clients: floodClients, Seed: 1}

	// The load stops the way a provider's traffic would: no new delivery
	// after soak, and those in flight go on until answered (Load.Run would
	// cut them off when its context ended, leaving them unacknowledged).
	smp := startSampler(l, time.Second, names, procs...)
	loadCtx, cancelLoad := context.WithTimeout(context.Background(), soak+2*time.Minute)
	defer cancelLoad()
	stop := make(chan struct{})
	started := time.Now()
	timer := time.AfterFunc(soak, func() { close(stop) })
	defer timer.Stop()
	load.RunUntil(loadCtx, stop)
	loadEnd := time.Now()
	ran := loadEnd.Sub(started)
	samples, sampleErrs := smp.Stop()
	for i, p := range procs {
		require.False(t, p.Exited(), "%s exited during the flood", names[i])
	}
	require.Empty(t, sampleErrs, "reading RSS during the flood")
	atEnd := l.Progress()

	// A delivery that gave up before it was acknowledged (none should, as
	// the load waits for those in flight) is retried, as a provider would.
	ctx := context.Background()
	retried := len(l.Unacked())
	retryCtx, cancelRetry := context.WithTimeout(ctx, time.Minute)
	defer cancelRetry()
	require.Zero(t, l.RetryUnacked(retryCtx, s, retryClients), "valid events still unacknowledged after retrying")

	var backlog int
	require.NoError(t, c.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM river_job
		WHERE kind = 'process_event' AND state NOT IN ('completed', 'cancelled', 'discarded')`).Scan(&backlog))
	// A worker does a few hundred jobs a second on this machine; allow for
	// a tenth of that, and never less than two minutes, but fail with a
	// clear message before the test binary's own deadline panics.
	within := max(minDrainTimeout, time.Duration(backlog/50)*time.Second)
	if deadline, ok := t.Deadline(); ok {
		within = min(within, time.Until(deadline)-30*time.Second)
	}
	waitNoPendingJob(t, c, within)
	drain := time.Since(loadEnd)
	c.WaitDrained(t, 10*time.Second)

	rep, err := l.Check(ctx, c.DB.Pool)
	require.NoError(t, err)
	// The CI form must not overwrite the last long soak's report, which
	// RELIABILITY.md quotes.
	rep.Scenario = "flood_soak"
	if soak < flatAfter {
		rep.Scenario = "flood_short"
	}
	peak := map[string]float64{}
	trends := map[string]rssTrend{}
	for i, name := range names {
		tr := trend(samples, i)
		trends[name] = tr
		peak[name] = tr.PeakMB
	}
	series := downsample(samples, seriesPoints)
	flatChecked := ran >= flatAfter
	rep.Extra = map[string]any{
		"duration_s":             round1(ran.Seconds()),
		"clients":                floodClients,
		"answers_2xx_per_s":      round1(float64(atEnd.Answered2xx) / ran.Seconds()),
		"acked_events_per_s":     round1(float64(rep.Acked) / ran.Seconds()),
		"p99_ms":                 rep.P99Millis,
		"peak_rss_mb":            peak,
		"rss":                    trends,
		"rss_flatness_asserted":  flatChecked,
		"rss_series_processes":   names,
		"rss_series":             series,
		"retried_after_load":     retried,
		"backlog_at_end_of_load": backlog,
		"drain_s":                round1(drain.Seconds()),
		"drain_jobs_per_s":       round1(float64(backlog) / drain.Seconds()),
	}
	rep.Require(t)
	rep.Save(t)

	// Every answer is one a provider understands: 200, 400 for a bad
	// signature or a stale timestamp, 429 and 503 to retry. A 500 would
	// be a bug even if the retry then succeeded.
	for code, n := range rep.Statuses {
		switch code {
		case 200, 400, 429, 503:
		default:
			t.Errorf("%d deliveries were answered %d", n, code)
		}
	}
	require.Positive(t, rep.Acked, "the flood acknowledged nothing")

	if !flatChecked {
		t.Logf("RSS flatness not asserted: the run lasted %s, under %s (set HOOKLINE_SOAK)", ran.Round(time.Second), flatAfter)
		return
	}
	for _, name := range names {
		tr := trends[name]
		if limit := flatFactor*tr.MiddleMB + flatSlackMB; tr.LastMB > limit {
			t.Errorf("%s RSS grew: last third %.1f MB, middle third %.1f MB (limit %.1f MB); slope %.2f MB/min",
				name, tr.LastMB, tr.MiddleMB, limit, tr.SlopeMBMin)
		}
	}
}

// waitNoPendingJob waits until no event job is left to run. It asks once a
// second whether one exists, rather than count a table of hundreds of
// thousands of jobs every 50ms as WaitDrained does: that would take its
// share of the two cores from the workers it waits for, and lengthen the
// drain it measures.
func waitNoPendingJob(t *testing.T, c *clustertest.Cluster, within time.Duration) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(within)
	for {
		var pending bool
		require.NoError(t, c.DB.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM river_job
			WHERE state IN ('available', 'pending', 'retryable', 'running', 'scheduled') AND kind = 'process_event')`).Scan(&pending))
		if !pending {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("event jobs still pending %s after the load ended", within)
		}
		time.Sleep(time.Second)
	}
}
