package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/ops"
)

// queuePausedAt returns river_queue.paused_at of the events queue, and
// whether the queue has a row.
func (b *testBundle) queuePausedAt(t *testing.T) (*time.Time, bool) {
	t.Helper()
	var pausedAt *time.Time
	var found bool
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `
		SELECT count(*) > 0, max(paused_at) FROM river_queue WHERE name = 'events'`).Scan(&found, &pausedAt))
	return pausedAt, found
}

func TestPauseBeforeAnyWorkerStartedCreatesTheQueueRowAndTheWorkerStartsPaused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, found := b.queuePausedAt(t)
	require.False(t, found, "no worker has started, so River has no row for the queue")

	var paused ops.PauseResult
	b.hookctlJSON(t, &paused, "pause", "--json")
	require.True(t, paused.Paused)
	require.True(t, paused.Changed)
	require.True(t, paused.CreatedQueueRow)
	pausedAt, found := b.queuePausedAt(t)
	require.True(t, found)
	require.NotNil(t, pausedAt)

	b.startWorker(t, nil)
	inboxID, _ := b.addEvent(t, "stripe", "evt_1", "charge.succeeded")
	time.Sleep(500 * time.Millisecond)
	require.Nil(t, b.processedAt(t, inboxID), "a paused queue's jobs are not worked")

	var resumed ops.PauseResult
	b.hookctlJSON(t, &resumed, "resume", "--json")
	require.False(t, resumed.Paused)
	require.True(t, resumed.Changed)
	pausedAt, _ = b.queuePausedAt(t)
	require.Nil(t, pausedAt)
	require.Eventually(t, func() bool { return b.processedAt(t, inboxID) != nil }, 10*time.Second, 20*time.Millisecond,
		"once resumed, the worker processes the event")
}

func TestPauseAndResumeReportNoChangeWhenAlreadyInThatState(t *testing.T) {
	t.Parallel()
	b := setup(t)

	stdout, _, err := b.hookctl(t, "resume")
	require.NoError(t, err, "resuming a queue without a row is not an error")
	require.Contains(t, stdout, "was not paused")
	_, found := b.queuePausedAt(t)
	require.False(t, found, "resume creates nothing")

	var first, second ops.PauseResult
	b.hookctlJSON(t, &first, "pause", "--json")
	b.hookctlJSON(t, &second, "pause", "--json")
	require.True(t, second.Paused)
	require.False(t, second.Changed)
	require.False(t, second.CreatedQueueRow)
	require.Equal(t, first.PausedAt.UTC(), second.PausedAt.UTC(), "a second pause keeps the first pause time")

	stdout, _, err = b.hookctl(t, "pause")
	require.NoError(t, err)
	require.Contains(t, stdout, "already paused")

	b.hookctlJSON(t, &first, "resume", "--json")
	b.hookctlJSON(t, &second, "resume", "--json")
	require.True(t, first.Changed)
	require.False(t, second.Changed)
	require.False(t, second.Paused)
}

func TestPauseOfAQueueAWorkerAlreadyRegisteredUsesItsRow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.startWorker(t, nil)
	require.Eventually(t, func() bool { _, found := b.queuePausedAt(t); return found }, 10*time.Second, 20*time.Millisecond)

	var paused ops.PauseResult
	b.hookctlJSON(t, &paused, "pause", "--json")
	require.True(t, paused.Changed)
	require.False(t, paused.CreatedQueueRow)

	inboxID, _ := b.addEvent(t, "stripe", "evt_1", "charge.succeeded")
	time.Sleep(500 * time.Millisecond)
	require.Nil(t, b.processedAt(t, inboxID), "the running worker stopped fetching")

	stdout, _, err := b.hookctl(t, "resume")
	require.NoError(t, err)
	require.Contains(t, stdout, "resumed queue events")
	require.Eventually(t, func() bool { return b.processedAt(t, inboxID) != nil }, 10*time.Second, 20*time.Millisecond)
}
