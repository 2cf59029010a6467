package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/ops"
)

func TestEventsListFiltersBySourceStatusTypeAndTime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Inserted oldest first; the list shows them newest first.
	staleID, staleJob := b.addEvent(t, "stripe", "evt_stale", "customer.subscription.updated")
	b.markProcessed(t, staleID, staleJob, time.Now().Add(-47*time.Hour))
	b.exec(t, `UPDATE inbox_events SET received_at = now() - interval '2 days', object_key = 'sub_9', superseded_by = 'evt_done' WHERE id = $1`, staleID)
	oldID, oldJob := b.addEvent(t, "bank", "tr_old", "transfer.settled")
	b.markProcessed(t, oldID, oldJob, time.Now().Add(-47*time.Hour))
	b.exec(t, `UPDATE inbox_events SET received_at = now() - interval '2 days' WHERE id = $1`, oldID)
	doneID, doneJob := b.addEvent(t, "stripe", "evt_done", "charge.succeeded")
	b.markProcessed(t, doneID, doneJob, time.Now())
	b.exec(t, `UPDATE inbox_events SET object_key = 'sub_9' WHERE id = $1`, doneID)
	_, deadJob := b.addEvent(t, "stripe", "evt_dead", "charge.refunded")
	b.setJob(t, deadJob, "discarded", "first failure", "handle event stripe/evt_dead: card declined")
	_, retryJob := b.addEvent(t, "bank", "tr_retry", "transfer.settled")
	b.setJob(t, retryJob, "retryable", "db timeout")
	_, lostJob := b.addEvent(t, "stripe", "evt_nojob", "charge.succeeded")
	b.exec(t, `DELETE FROM river_job WHERE id = $1`, lostJob)
	// A discarded job that a replay superseded does not make its event failed.
	_, supersededJob := b.addEvent(t, "stripe", "evt_retried", "charge.succeeded")
	b.setJob(t, supersededJob, "discarded", "old failure")
	b.hookctlJSON(t, new(ops.Replayed), "replay", "stripe", "evt_retried", "--reason", "fixed", "--json")

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"AllNewestFirst", nil, []string{"evt_retried", "evt_nojob", "tr_retry", "evt_dead", "evt_done", "tr_old", "evt_stale"}},
		{"ByObject", []string{"--source", "stripe", "--object", "sub_9"}, []string{"evt_done", "evt_stale"}},
		{"StaleIsProcessedWithoutItsOrderedHandler", []string{"--status", "stale"}, []string{"evt_stale"}},
		{"BySource", []string{"--source", "bank"}, []string{"tr_retry", "tr_old"}},
		{"ByType", []string{"--type", "transfer.settled"}, []string{"tr_retry", "tr_old"}},
		{"SinceDuration", []string{"--since", "1h"}, []string{"evt_retried", "evt_nojob", "tr_retry", "evt_dead", "evt_done"}},
		{"SinceTime", []string{"--since", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}, []string{"evt_retried", "evt_nojob", "tr_retry", "evt_dead", "evt_done"}},
		{"Limit", []string{"--limit", "2"}, []string{"evt_retried", "evt_nojob"}},
		{"ProcessedLeavesOutStale", []string{"--status", "processed"}, []string{"evt_done", "tr_old"}},
		{"Unprocessed", []string{"--status", "unprocessed"}, []string{"evt_retried", "evt_nojob", "tr_retry", "evt_dead"}},
		{"ReceivedHasNoJob", []string{"--status", "received"}, []string{"evt_nojob"}},
		{"FailedIsTheLatestJobDiscardedOrCancelled", []string{"--status", "failed"}, []string{"evt_dead"}},
		{"Discarded", []string{"--status", "discarded"}, []string{"evt_dead"}},
		{"Retryable", []string{"--status", "retryable"}, []string{"tr_retry"}},
		{"AvailableAndSource", []string{"--status", "available", "--source", "stripe"}, []string{"evt_retried"}},
		{"NoMatch", []string{"--status", "running"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var events []ops.EventSummary
			b.hookctlJSON(t, &events, append([]string{"events", "list", "--json"}, tt.args...)...)
			got := make([]string, len(events))
			for i, ev := range events {
				got[i] = ev.EventID
			}
			require.Equal(t, tt.want, got)
		})
	}

	t.Run("ShowsStatusAttemptsAndLastError", func(t *testing.T) {
		t.Parallel()
		var events []ops.EventSummary
		b.hookctlJSON(t, &events, "events", "list", "--json", "--status", "failed")
		require.Len(t, events, 1)
		ev := events[0]
		require.Equal(t, "discarded", ev.Status)
		require.Equal(t, "charge.refunded", ev.Type)
		require.Nil(t, ev.ProcessedAt)
		require.NotNil(t, ev.Job)
		require.Equal(t, deadJob, ev.Job.ID)
		require.Equal(t, 2, ev.Job.Attempt)
		require.Equal(t, "handle event stripe/evt_dead: card declined", ev.Job.LastError)

		stdout, _, err := b.hookctl(t, "events", "list")
		require.NoError(t, err)
		require.Contains(t, stdout, "RECEIVED")
		require.Contains(t, stdout, "handle event stripe/evt_dead: card declined")
		require.Contains(t, stdout, "processed")
	})
}

func TestEventsListRejectsAnUnknownStatus(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, _, err := b.hookctl(t, "events", "list", "--status", "dead")
	require.ErrorContains(t, err, `--status "dead": want one of processed,`)
}

func TestEventsGetShowsJobsAndReplaysAndThePayloadOnlyWithPayload(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inboxID, firstJob := b.addEvent(t, "stripe", "evt_1", "charge.succeeded")
	b.setJob(t, firstJob, "discarded", "boom", "still boom")
	var replayed ops.Replayed
	b.hookctlJSON(t, &replayed, "replay", "stripe", "evt_1", "--reason", "handler fixed", "--json")

	var ev struct {
		ops.EventDetail
		PayloadBase64 *string `json:"payload_base64"`
		Payload       *string `json:"payload"`
	}
	b.hookctlJSON(t, &ev, "events", "get", "stripe", "evt_1", "--json")
	require.Equal(t, inboxID, ev.InboxID)
	require.Equal(t, "available", ev.Status, "the latest job is the replay")
	require.Len(t, ev.Jobs, 2)
	require.Equal(t, replayed.JobID, ev.Jobs[0].ID)
	require.True(t, ev.Jobs[0].Replay)
	require.Equal(t, firstJob, ev.Jobs[1].ID)
	require.Equal(t, "still boom", ev.Jobs[1].LastError)
	require.Len(t, ev.Replays, 1)
	require.Equal(t, "tester", ev.Replays[0].ReplayedBy)
	require.Equal(t, "handler fixed", ev.Replays[0].Reason)
	require.Equal(t, len(`{"id":"evt_1"}`), ev.PayloadBytes)
	require.Nil(t, ev.PayloadBase64)
	require.Nil(t, ev.Payload)
	require.Nil(t, ev.Headers)

	b.hookctlJSON(t, &ev, "events", "get", "stripe", "evt_1", "--json", "--payload")
	require.NotNil(t, ev.PayloadBase64)
	body, err := base64.StdEncoding.DecodeString(*ev.PayloadBase64)
	require.NoError(t, err)
	require.Equal(t, `{"id":"evt_1"}`, string(body))
	require.Equal(t, `{"id":"evt_1"}`, *ev.Payload)
	require.Equal(t, map[string]string{"Content-Type": "application/json"}, ev.Headers)

	stdout, _, err := b.hookctl(t, "events", "get", "stripe", "evt_1")
	require.NoError(t, err)
	require.Contains(t, stdout, "shown with --payload")
	require.NotContains(t, stdout, `{"id":"evt_1"}`)
	require.Contains(t, stdout, "still boom")
	require.Contains(t, stdout, "handler fixed")

	stdout, _, err = b.hookctl(t, "events", "get", "stripe", "evt_1", "--payload")
	require.NoError(t, err)
	require.Contains(t, stdout, `{"id":"evt_1"}`)
	require.Contains(t, stdout, "Content-Type: application/json")
}

func TestEventsGetEscapesControlCharactersOfTheBody(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, `INSERT INTO inbox_events (source, event_id, payload) VALUES ('bank', 'tr_esc', '\x1b5b324a0aff'::bytea)`)
	stdout, _, err := b.hookctl(t, "events", "get", "bank", "tr_esc", "--payload")
	require.NoError(t, err)
	require.NotContains(t, stdout, "\x1b")
	require.Contains(t, stdout, `\u001b[2J`+"\n"+`\xff`)
}

func TestEventsGetOfAnUnknownEventFails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, _, err := b.hookctl(t, "events", "get", "stripe", "evt_missing")
	require.ErrorIs(t, err, ops.ErrEventNotFound)
	require.ErrorContains(t, err, "stripe/evt_missing")
}

// The JSON list is an array even when empty, for scripts.
func TestEventsListPrintsAnEmptyJSONArray(t *testing.T) {
	t.Parallel()
	b := setup(t)
	stdout, _, err := b.hookctl(t, "events", "list", "--json")
	require.NoError(t, err)
	var v []any
	require.NoError(t, json.Unmarshal([]byte(stdout), &v))
	require.NotNil(t, v)
	require.Empty(t, v)
}

// The list shows the start of a job's last error; the detail view shows all
// of it, on lines of its own: the end (the wrapped cause) is often what
// on-call needs.
func TestEventsGetShowsTheWholeLastError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, jobID := b.addEvent(t, "stripe", "evt_long", "charge.succeeded")
	lastErr := "handle event stripe/evt_long: " + strings.Repeat("upstream said no; ", 20) + "root cause: ledger row 42 locked\nsecond line"
	b.setJob(t, jobID, "discarded", "first failure", lastErr)

	stdout, _, err := b.hookctl(t, "events", "get", "stripe", "evt_long")
	require.NoError(t, err)
	require.Contains(t, stdout, fmt.Sprintf("LAST ERROR of job %d\n%s\n", jobID, lastErr))
	require.NotContains(t, stdout, "first failure", "only the last attempt's error")

	stdout, _, err = b.hookctl(t, "events", "list")
	require.NoError(t, err)
	require.Contains(t, stdout, "handle event stripe/evt_long: upstream said no;")
	require.NotContains(t, stdout, "root cause", "the list keeps its column short")
}

// Rows stored before the inbox recorded each event's job (job_id NULL) are
// still shown with their jobs, found through args.
func TestEventsListAndGetFindTheJobsOfARowWithoutJobID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	oldID, oldJob := b.addEvent(t, "stripe", "evt_before", "charge.succeeded")
	b.setJob(t, oldJob, "discarded", "boom")
	_, goneJob := b.addEvent(t, "stripe", "evt_gone", "charge.succeeded")
	b.exec(t, `DELETE FROM river_job WHERE id = $1`, goneJob)
	b.exec(t, `UPDATE inbox_events SET job_id = NULL`)
	b.addEvent(t, "stripe", "evt_after", "charge.succeeded")

	var events []ops.EventSummary
	b.hookctlJSON(t, &events, "events", "list", "--json")
	require.Len(t, events, 3)
	require.Equal(t, "available", events[0].Status)
	require.Equal(t, "received", events[1].Status, "evt_gone has no job left")
	require.Equal(t, oldID, events[2].InboxID)
	require.Equal(t, "discarded", events[2].Status)
	require.NotNil(t, events[2].Job)
	require.Equal(t, oldJob, events[2].Job.ID)

	b.hookctlJSON(t, &events, "events", "list", "--json", "--status", "received")
	require.Len(t, events, 1)
	require.Equal(t, "evt_gone", events[0].EventID)
	b.hookctlJSON(t, &events, "events", "list", "--json", "--status", "failed")
	require.Len(t, events, 1)
	require.Equal(t, "evt_before", events[0].EventID)

	var ev ops.EventDetail
	b.hookctlJSON(t, &ev, "events", "get", "stripe", "evt_before", "--json")
	require.Equal(t, "discarded", ev.Status)
	require.Len(t, ev.Jobs, 1)
	require.Equal(t, oldJob, ev.Jobs[0].ID)
}

// A full page ends with the flag that shows the next one, which starts
// below the page's last event.
func TestEventsListPagesWithBefore(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := range 5 {
		b.addEvent(t, "bank", fmt.Sprintf("tr_%d", i), "transfer.settled")
	}
	stdout, _, err := b.hookctl(t, "events", "list", "--limit", "2")
	require.NoError(t, err)
	var events []ops.EventSummary
	b.hookctlJSON(t, &events, "events", "list", "--json", "--limit", "2")
	require.Equal(t, []string{"tr_4", "tr_3"}, []string{events[0].EventID, events[1].EventID})
	next := fmt.Sprintf("--before %d", events[1].InboxID)
	require.Contains(t, stdout, "(more may follow: rerun with "+next+")")

	var pages [][]string
	before := strconv.FormatInt(events[1].InboxID, 10)
	for before != "" {
		b.hookctlJSON(t, &events, "events", "list", "--json", "--limit", "2", "--before", before)
		var page []string
		before = ""
		for _, ev := range events {
			page = append(page, ev.EventID)
		}
		if len(events) == 2 {
			before = strconv.FormatInt(events[1].InboxID, 10)
		}
		pages = append(pages, page)
	}
	require.Equal(t, [][]string{{"tr_2", "tr_1"}, {"tr_0"}}, pages)

	stdout, _, err = b.hookctl(t, "events", "list", "--limit", "2", "--before", strconv.FormatInt(events[0].InboxID, 10))
	require.NoError(t, err)
	require.NotContains(t, stdout, "more may follow")
}
