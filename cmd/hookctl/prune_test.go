package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ops"
)

func TestPruneRefusesKeysKeptNoLongerThanPayloads(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"Equal", []string{"--older-than", "7d", "--keep-keys-for", "7d"}, "must be longer than older-than"},
		{"Shorter", []string{"--older-than", "7d", "--keep-keys-for", "72h"}, "must be longer than older-than"},
		{"DefaultKeysShorter", []string{"--older-than", "31d"}, "must be longer than older-than"},
		{"NoOlderThan", []string{"--keep-keys-for", "30d"}, "--older-than is required"},
		{"NotADuration", []string{"--older-than", "a week"}, "invalid duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := b.hookctl(t, append([]string{"prune"}, tt.args...)...)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// pruneRow is what prune may change in an inbox row.
type pruneRow struct {
	Payload  []byte
	Headers  map[string]string
	PrunedAt *time.Time
}

func (b *testBundle) pruneRow(t *testing.T, inboxID int64) (pruneRow, bool) {
	t.Helper()
	var r pruneRow
	err := b.db.Pool.QueryRow(context.Background(), `SELECT payload, headers, pruned_at FROM inbox_events WHERE id = $1`, inboxID).
		Scan(&r.Payload, &r.Headers, &r.PrunedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, false
	}
	require.NoError(t, err)
	return r, true
}

func TestPruneEmptiesOldPayloadsKeepsTheirKeysAndNeverTouchesUnprocessedEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// old adds an event received and, if processedAgo > 0, processed that
	// long ago.
	old := func(eventID string, receivedAgo, processedAgo time.Duration) (int64, int64) {
		inboxID, jobID := b.addEvent(t, "stripe", eventID, "charge.succeeded")
		b.exec(t, `UPDATE inbox_events SET received_at = now() - $2::interval WHERE id = $1`, inboxID, receivedAgo)
		if processedAgo > 0 {
			b.markProcessed(t, inboxID, jobID, time.Now().Add(-processedAgo))
		}
		return inboxID, jobID
	}
	day := 24 * time.Hour
	payloadGone, _ := old("evt_10d", 10*day, 10*day)
	rowGone, _ := old("evt_40d", 40*day, 40*day)
	lateProcessed, _ := old("evt_40d_processed_late", 40*day, 20*day)
	recent, _ := old("evt_1h", time.Hour, time.Hour)
	unprocessedOld, unprocessedJob := old("evt_unprocessed", 40*day, 0)
	b.setJob(t, unprocessedJob, "discarded", "boom")
	replaying, _ := old("evt_replaying", 40*day, 40*day)
	_, _, err := b.hookctl(t, "replay", "stripe", "evt_replaying")
	require.NoError(t, err)

	var dry ops.PruneResult
	b.hookctlJSON(t, &dry, "prune", "--older-than", "7d", "--dry-run", "--json")
	require.True(t, dry.DryRun)
	require.Equal(t, int64(1), dry.RowsDeleted)
	require.Equal(t, int64(2), dry.PayloadsPruned)
	r, _ := b.pruneRow(t, payloadGone)
	require.Nil(t, r.PrunedAt, "a dry run changes nothing")

	var res ops.PruneResult
	b.hookctlJSON(t, &res, "prune", "--older-than", "7d", "--keep-keys-for", "30d", "--json")
	require.False(t, res.DryRun)
	require.Equal(t, dry.RowsDeleted, res.RowsDeleted)
	require.Equal(t, dry.PayloadsPruned, res.PayloadsPruned)
	require.WithinDuration(t, time.Now().Add(-7*day), res.PayloadCutoff, time.Minute)
	require.WithinDuration(t, time.Now().Add(-30*day), res.KeyCutoff, time.Minute)

	for _, id := range []int64{payloadGone, lateProcessed} {
		r, found := b.pruneRow(t, id)
		require.True(t, found, "the key is kept")
		require.Empty(t, r.Payload)
		require.Empty(t, r.Headers)
		require.NotNil(t, r.PrunedAt)
	}
	_, found := b.pruneRow(t, rowGone)
	require.False(t, found, "past the key retention, the row goes")
	for _, id := range []int64{recent, unprocessedOld, replaying} {
		r, found := b.pruneRow(t, id)
		require.True(t, found)
		require.NotEmpty(t, r.Payload, "inbox id %d", id)
		require.Nil(t, r.PrunedAt)
	}

	// A redelivery of the pruned event is still a duplicate.
	var created bool
	require.NoError(t, pgx.BeginFunc(context.Background(), b.db.Pool, func(tx pgx.Tx) error {
		_, created, err = inbox.Insert(context.Background(), tx, inbox.NewEvent{Source: "stripe", EventID: "evt_10d", Payload: []byte(`{}`)})
		return err
	}))
	require.False(t, created)

	// A pruned event cannot be replayed.
	_, _, err = b.hookctl(t, "replay", "stripe", "evt_10d")
	require.ErrorIs(t, err, ops.ErrPruned)

	stdout, _, err := b.hookctl(t, "prune", "--older-than", "7d")
	require.NoError(t, err)
	require.Contains(t, stdout, "deleted 0 events")
	require.Contains(t, stdout, "emptied the payload of 0 events")
}

func TestPruneWarnsWhenKeysAreKeptLessThanStripesRetryWindow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, stderr, err := b.hookctl(t, "prune", "--older-than", "1h", "--keep-keys-for", "2d", "--dry-run")
	require.NoError(t, err)
	require.Contains(t, stderr, "less than Stripe's 3-day retry window")
}

func TestPruneHelpStatesTheKeyRetentionInvariant(t *testing.T) {
	t.Parallel()
	b := setup(t)
	stdout, _, err := b.hookctl(t, "prune", "--help")
	require.NoError(t, err)
	require.Contains(t, stdout, "must exceed every provider's retry window")
	require.Contains(t, stdout, "Stripe retries for up to 3")
}
