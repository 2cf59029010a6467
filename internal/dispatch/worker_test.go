package dispatch_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/examples/balances"
	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/dispatch"
	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type testBundle struct {
	db     *pgtest.DB
	client *river.Client[pgx.Tx]
	events <-chan *river.Event
}

// setup starts a real River client working the events queue with mux.
func setup(t *testing.T, mux *hooklinetype.Mux) *testBundle {
	t.Helper()
	db := pgtest.NewDB(t)
	client, events := startWorker(t, db, mux, dispatch.WorkerOpts{}, 5)
	return &testBundle{db: db, client: client, events: events}
}

// startWorker starts a River client whose Worker, made with mux and opts,
// works the events queue of db with up to maxWorkers jobs at once; it is
// stopped when the test ends. events reports each job that completes,
// fails (retried or not) or is cancelled.
func startWorker(t *testing.T, db *pgtest.DB, mux *hooklinetype.Mux, opts dispatch.WorkerOpts, maxWorkers int) (client *river.Client[pgx.Tx], events <-chan *river.Event) {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	workers := river.NewWorkers()
	river.AddWorker(workers, dispatch.NewWorker(db.Pool, mux, logger, opts))
	client, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{
		FetchCooldown:     10 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		Logger:            logger,
		Queues:            map[string]river.QueueConfig{hooklinetype.Queue: {MaxWorkers: maxWorkers}},
		TestOnly:          true,
		Workers:           workers,
	})
	require.NoError(t, err)
	events, cancel := client.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled)
	t.Cleanup(cancel)
	require.NoError(t, client.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, client.Stop(ctx))
	})
	return client, events
}

// ingestBank stores a bank event and enqueues its job, as the receiver does.
func (b *testBundle) ingestBank(t *testing.T, id, eventType string, payload string) {
	t.Helper()
	outcome, err := ingest.NewSingle(b.db.Pool, b.client).Ingest(context.Background(), inbox.NewEvent{
		Source: "bank", EventID: id, Type: eventType, Payload: []byte(payload),
	})
	require.NoError(t, err)
	require.Equal(t, ingest.Accepted, outcome)
}

// waitFinal waits for the next job to reach a final state and returns it.
// Failures that will be retried are skipped over.
func (b *testBundle) waitFinal(t *testing.T) *rivertype.JobRow {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case ev := <-b.events:
			retrying := ev.Job.State == rivertype.JobStateAvailable || ev.Job.State == rivertype.JobStateRetryable
			if ev.Kind == river.EventKindJobFailed && retrying {
				continue
			}
			return ev.Job
		case <-timeout:
			t.Fatal("no job finished within 15s")
			return nil
		}
	}
}

func (b *testBundle) balance(t *testing.T, account string) int64 {
	t.Helper()
	cents, err := balances.Get(context.Background(), b.db.Pool, account)
	require.NoError(t, err)
	return cents
}

func (b *testBundle) processed(t *testing.T, eventID string) bool {
	t.Helper()
	var processed bool
	require.NoError(t, b.db.Pool.QueryRow(context.Background(),
		`SELECT processed_at IS NOT NULL FROM inbox_events WHERE event_id = $1`, eventID).Scan(&processed))
	return processed
}

func exampleMux() *hooklinetype.Mux {
	mux := hooklinetype.NewMux()
	balances.Register(mux)
	return mux
}

func TestWorkerAppliesEffectMarksProcessedAndCompletesJob(t *testing.T) {
	t.Parallel()
	b := setup(t, exampleMux())
	b.ingestBank(t, "tr_1", "transfer.settled", `{"id":"tr_1","type":"transfer.settled","account":"acc_9","amount_cents":1250}`)

	job := b.waitFinal(t)
	require.Equal(t, rivertype.JobStateCompleted, job.State)
	require.Equal(t, int64(1250), b.balance(t, "bank:acc_9"))
	require.True(t, b.processed(t, "tr_1"))
}

func TestWorkerRetriesAfterHandlerErrorAndAppliesEffectOnce(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	mux := hooklinetype.NewMux()
	mux.RegisterFunc("bank", "transfer.settled", func(ctx context.Context, tx pgx.Tx, ev hooklinetype.Event) error {
		// Write the effect, then fail: the write must roll back with the
		// failed attempt, so the balance ends at one application.
		if err := balances.Add(ctx, tx, "bank:flaky", 100); err != nil {
			return err
		}
		if calls.Add(1) == 1 {
			return errors.New("downstream hiccup")
		}
		return nil
	})
	b := setup(t, mux)
	b.ingestBank(t, "tr_flaky", "transfer.settled", `{}`)

	job := b.waitFinal(t)
	require.Equal(t, rivertype.JobStateCompleted, job.State)
	require.Equal(t, 2, job.Attempt)
	require.Len(t, job.Errors, 1)
	require.Contains(t, job.Errors[0].Error, "downstream hiccup")
	require.Equal(t, int32(2), calls.Load())
	require.Equal(t, int64(100), b.balance(t, "bank:flaky"))
}

func TestWorkerCompletesEventWithNoHandlerWithoutEffect(t *testing.T) {
	t.Parallel()
	b := setup(t, exampleMux())
	b.ingestBank(t, "tr_unknown", "account.opened", `{"id":"tr_unknown","account":"acc_9","amount_cents":5}`)

	job := b.waitFinal(t)
	require.Equal(t, rivertype.JobStateCompleted, job.State)
	require.Equal(t, 1, job.Attempt, "an unhandled type must not be retried")
	require.Zero(t, b.balance(t, "bank:acc_9"))
	require.True(t, b.processed(t, "tr_unknown"))
}

func TestAMuxWithANotFoundHandlerDecidesUnhandledEvents(t *testing.T) {
	t.Parallel()
	mux := exampleMux()
	mux.NotFound = hooklinetype.HandlerFunc(func(context.Context, pgx.Tx, hooklinetype.Event) error {
		return hooklinetype.Permanent(errors.New("nobody handles this type"))
	})
	b := setup(t, mux)
	b.ingestBank(t, "tr_unknown", "account.opened", `{"id":"tr_unknown"}`)

	job := b.waitFinal(t)
	require.Equal(t, rivertype.JobStateCancelled, job.State, "NotFound's permanent error cancels the job")
	require.False(t, b.processed(t, "tr_unknown"))
}

func TestWorkerCancelsPermanentFailureInsteadOfRetrying(t *testing.T) {
	t.Parallel()
	b := setup(t, exampleMux())
	b.ingestBank(t, "tr_noamount", "transfer.settled", `{"id":"tr_noamount","account":"acc_9"}`)

	job := b.waitFinal(t)
	require.Equal(t, rivertype.JobStateCancelled, job.State)
	require.Equal(t, 1, job.Attempt)
	require.False(t, b.processed(t, "tr_noamount"))
}

func TestWorkerNeverAppliesAnEventTwiceUnlessReplayed(t *testing.T) {
	t.Parallel()
	b := setup(t, exampleMux())
	b.ingestBank(t, "tr_once", "transfer.settled", `{"id":"tr_once","account":"acc_1","amount_cents":10}`)
	require.Equal(t, rivertype.JobStateCompleted, b.waitFinal(t).State)

	var inboxID int64
	require.NoError(t, b.db.Pool.QueryRow(context.Background(),
		`SELECT id FROM inbox_events WHERE event_id = 'tr_once'`).Scan(&inboxID))

	// A stray second job for the same event completes without effect.
	_, err := b.client.Insert(context.Background(), hooklinetype.JobArgs{InboxID: inboxID, Source: "bank", EventID: "tr_once"}, nil)
	require.NoError(t, err)
	require.Equal(t, rivertype.JobStateCompleted, b.waitFinal(t).State)
	require.Equal(t, int64(10), b.balance(t, "bank:acc_1"))

	// A deliberate replay applies it again.
	_, err = b.client.Insert(context.Background(), hooklinetype.JobArgs{InboxID: inboxID, Source: "bank", EventID: "tr_once", Replay: true}, nil)
	require.NoError(t, err)
	require.Equal(t, rivertype.JobStateCompleted, b.waitFinal(t).State)
	require.Equal(t, int64(20), b.balance(t, "bank:acc_1"))
}

func TestWorkerCancelsJobWhoseEventIsGone(t *testing.T) {
	t.Parallel()
	b := setup(t, exampleMux())
	_, err := b.client.Insert(context.Background(), hooklinetype.JobArgs{InboxID: 987654, Source: "bank", EventID: "gone"}, nil)
	require.NoError(t, err)
	job := b.waitFinal(t)
	require.Equal(t, rivertype.JobStateCancelled, job.State)
	require.Contains(t, job.Errors[0].Error, "not found")
}
