package main

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/ops"
)

func (b *testBundle) jobState(t *testing.T, jobID int64) string {
	t.Helper()
	var state string
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `SELECT state::text FROM river_job WHERE id = $1`, jobID).Scan(&state))
	return state
}

func TestRetryDiscardedRedrivesTheDeadLettersOfTheSource(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, dead1 := b.addEvent(t, "stripe", "evt_1", "charge.succeeded")
	_, dead2 := b.addEvent(t, "stripe", "evt_2", "charge.succeeded")
	_, deadBank := b.addEvent(t, "bank", "tr_1", "transfer.settled")
	_, cancelled := b.addEvent(t, "stripe", "evt_3", "charge.succeeded")
	for _, id := range []int64{dead1, dead2, deadBank} {
		b.setJob(t, id, "discarded", "boom")
	}
	b.exec(t, `UPDATE river_job SET attempt = max_attempts WHERE id = $1`, dead1)
	b.setJob(t, cancelled, "cancelled", "permanent: no customer")

	var dry ops.RetryResult
	b.hookctlJSON(t, &dry, "retry", "--discarded", "--source", "stripe", "--dry-run", "--json")
	require.Equal(t, 2, dry.Count)
	require.ElementsMatch(t, []int64{dead1, dead2}, dry.JobIDs)
	require.Equal(t, "discarded", b.jobState(t, dead1), "a dry run changes nothing")

	var res ops.RetryResult
	b.hookctlJSON(t, &res, "retry", "--discarded", "--source", "stripe", "--json")
	require.Equal(t, 2, res.Count)
	require.ElementsMatch(t, []int64{dead1, dead2}, res.JobIDs)
	require.Equal(t, "available", b.jobState(t, dead1))
	require.Equal(t, "available", b.jobState(t, dead2))
	require.Equal(t, "discarded", b.jobState(t, deadBank), "another source's dead letter")
	require.Equal(t, "cancelled", b.jobState(t, cancelled), "cancelled is not a dead letter")
	var maxAttempts, attempt int
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `SELECT attempt, max_attempts FROM river_job WHERE id = $1`, dead1).
		Scan(&attempt, &maxAttempts))
	require.Greater(t, maxAttempts, attempt, "a job that used all its attempts gets one more")

	stdout, _, err := b.hookctl(t, "retry", "--discarded")
	require.NoError(t, err)
	require.Contains(t, stdout, "retried 1 discarded jobs")
	require.Equal(t, "available", b.jobState(t, deadBank))
}

func TestRetriedDeadLetterIsProcessedByTheWorker(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inboxID, jobID := b.addEvent(t, "stripe", "evt_1", "charge.succeeded")
	b.setJob(t, jobID, "discarded", "boom")
	b.startWorker(t, nil)

	_, _, err := b.hookctl(t, "retry", "--discarded")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return b.processedAt(t, inboxID) != nil }, 10*time.Second, 20*time.Millisecond)
}

func TestRetryRequiresAState(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, _, err := b.hookctl(t, "retry")
	require.ErrorContains(t, err, "--discarded")
	require.ErrorContains(t, err, "--cancelled")
}

func TestRetryCancelledRedrivesTheCancelledJobsOfTheSourceOnly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, cancelled1 := b.addEvent(t, "stripe", "evt_1", "charge.succeeded")
	_, cancelled2 := b.addEvent(t, "stripe", "evt_2", "charge.succeeded")
	_, cancelledBank := b.addEvent(t, "bank", "tr_1", "transfer.settled")
	_, discarded := b.addEvent(t, "stripe", "evt_3", "charge.succeeded")
	for _, id := range []int64{cancelled1, cancelled2, cancelledBank} {
		b.setJob(t, id, "cancelled", "permanent: no customer")
	}
	b.setJob(t, discarded, "discarded", "boom")

	var dry ops.RetryResult
	b.hookctlJSON(t, &dry, "retry", "--cancelled", "--source", "stripe", "--dry-run", "--json")
	require.Equal(t, ops.RetryResult{Queue: "events", State: "cancelled", Source: "stripe", DryRun: true,
		JobIDs: []int64{cancelled1, cancelled2}, Count: 2}, dry)
	require.Equal(t, "cancelled", b.jobState(t, cancelled1), "a dry run changes nothing")

	stdout, _, err := b.hookctl(t, "retry", "--cancelled", "--source", "stripe")
	require.NoError(t, err)
	require.Equal(t, "retried 2 cancelled jobs of source stripe: they are available to the workers now\n", stdout)
	require.Equal(t, "available", b.jobState(t, cancelled1))
	require.Equal(t, "available", b.jobState(t, cancelled2))
	require.Equal(t, "cancelled", b.jobState(t, cancelledBank), "another source's")
	require.Equal(t, "discarded", b.jobState(t, discarded), "discarded is not cancelled")

	var both []ops.RetryResult
	b.hookctlJSON(t, &both, "retry", "--cancelled", "--discarded", "--json")
	require.Len(t, both, 2)
	require.Equal(t, []int64{discarded}, both[0].JobIDs)
	require.Equal(t, []int64{cancelledBank}, both[1].JobIDs)
}

func TestRetriedCancelledJobIsAppliedOnceTheHandlerIsFixed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, `CREATE TABLE applied (event_id text NOT NULL)`)
	var fixed atomic.Bool
	mux := hooklinetype.NewMux()
	mux.RegisterFunc("stripe", "charge.succeeded", func(ctx context.Context, tx pgx.Tx, ev hooklinetype.Event) error {
		if !fixed.Load() {
			return hooklinetype.Permanent(errors.New("charge has no customer"))
		}
		_, err := tx.Exec(ctx, `INSERT INTO applied VALUES ($1)`, ev.EventID)
		return err
	})
	b.startWorker(t, mux)
	inboxID, jobID := b.addEvent(t, "stripe", "evt_1", "charge.succeeded")
	require.Eventually(t, func() bool { return b.jobState(t, jobID) == "cancelled" }, 10*time.Second, 20*time.Millisecond,
		"a permanent error cancels the job at once")
	require.Nil(t, b.processedAt(t, inboxID))

	fixed.Store(true)
	_, _, err := b.hookctl(t, "retry", "--cancelled")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return b.processedAt(t, inboxID) != nil }, 10*time.Second, 20*time.Millisecond)
	var n int
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM applied`).Scan(&n))
	require.Equal(t, 1, n)
}
