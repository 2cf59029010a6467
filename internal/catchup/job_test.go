package catchup_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/catchup"
	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/metrics"
	"github.com/hookline/hookline/internal/stripemocktest"
)

// startWorker starts a River client that runs the periodic catch-up every
// interval against url, as a worker process does.
func (b *testBundle) startWorker(t *testing.T, f *stripemocktest.Fake, url string, interval time.Duration, obs catchup.Observer) *river.Client[pgx.Tx] {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	w, err := catchup.NewWorker(b.db.Pool, catchup.JobOpts{
		Stripe: catchup.StripeOptions{Key: f.Key, URL: url}, Lookback: 72 * time.Hour, Source: "stripe",
		Timeout: time.Minute, By: "worker-test",
	}, logger, obs)
	require.NoError(t, err)
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	// The events' own worker, as in a worker process (River refuses to
	// insert a kind it has no worker for); its queue is not worked here.
	river.AddWorker(workers, river.WorkFunc(func(context.Context, *river.Job[hooklinetype.JobArgs]) error { return nil }))
	client, err := river.NewClient(riverpgxv5.New(b.db.Pool), &river.Config{
		Logger: logger, PeriodicJobs: []*river.PeriodicJob{catchup.Periodic(interval)},
		Queues: map[string]river.QueueConfig{catchup.Queue: {MaxWorkers: 1}}, TestOnly: true, Workers: workers,
	})
	require.NoError(t, err)
	require.NoError(t, client.Start(context.Background()))
	t.Cleanup(func() { _ = client.Stop(context.Background()) })
	return client
}

func TestPeriodicCatchupRecoversMissedEventsAndCountsThem(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	f := stripemocktest.NewFake(t, 30)
	for _, ev := range f.Events[:5] {
		_, err := b.webhook.Ingest(ctx, inbox.NewEvent{Source: "stripe", EventID: ev.ID, Type: ev.Type, Payload: stripemocktest.EventJSON(ev)})
		require.NoError(t, err)
	}
	reg := prometheus.NewRegistry()
	m := metrics.NewCatchup(reg)
	url := f.Start()
	client := b.startWorker(t, f, url, 300*time.Millisecond, m)
	done, cancel := client.Subscribe(river.EventKindJobCompleted)
	defer cancel()
	waitRuns := func(n int) {
		t.Helper()
		for range n {
			select {
			case ev := <-done:
				require.Equal(t, "catchup_stripe", ev.Job.Kind)
			case <-time.After(30 * time.Second):
				t.Fatal("no periodic catch-up run")
			}
		}
	}
	waitRuns(2) // at start, and again a period later: the completed run does not block the next
	b.requireEachStoredOnce(t, 30, 25)
	require.Equal(t, 25, b.count(t, `SELECT count(*) FROM recovery_audit WHERE recovered_by = 'worker-test' AND reason = 'periodic catch-up, look-back 72h0m0s'`))

	// A new event the webhook path misses.
	f.Mu.Lock()
	f.Events = append([]stripemocktest.FakeEvent{{ID: "evt_9999", Type: "invoice.paid", Created: time.Now().Unix()}}, f.Events...)
	f.Mu.Unlock()
	waitRuns(2)
	b.requireEachStoredOnce(t, 31, 26)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP hookline_catchup_recovered_events_total Events that periodic catch-up stored from a provider's API because the inbox lacked them: events the webhook path missed. Any increase deserves a look.
# TYPE hookline_catchup_recovered_events_total counter
hookline_catchup_recovered_events_total{source="stripe"} 26
`), "hookline_catchup_recovered_events_total"))
}

func TestPeriodicCatchupRunsInOneWorkerAtATime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := stripemocktest.NewFake(t, 10)
	release := make(chan struct{})
	f.Fail = func(int, string) (int, http.Header) { <-release; return 0, nil }
	url := f.Start()
	// Two worker processes, each enqueuing every 50ms if it leads.
	b.startWorker(t, f, url, 50*time.Millisecond, nil)
	b.startWorker(t, f, url, 50*time.Millisecond, nil)
	// Before the workers stop, even on failure: they wait for their runs.
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)

	running := `SELECT count(*) FROM river_job WHERE kind = 'catchup_stripe' AND state = 'running'`
	require.Eventually(t, func() bool { return b.count(t, running) == 1 }, 30*time.Second, 10*time.Millisecond)
	time.Sleep(500 * time.Millisecond) // ten periods
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'catchup_stripe' AND state NOT IN ('completed', 'discarded', 'cancelled')`),
		"one run, and none queued behind it")
	require.Len(t, f.Afters(), 1, "one request to Stripe")
	unblock()
	require.Eventually(t, func() bool {
		return b.count(t, `SELECT count(*) FROM inbox_events`) == 10
	}, 30*time.Second, 10*time.Millisecond)
}
