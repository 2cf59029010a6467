package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/ops"
)

func TestDrainExitsZeroWhenTheQueueIsEmpty(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Dead letters and finished jobs are not a backlog.
	_, discarded := b.addEvent(t, "stripe", "evt_dead", "charge.succeeded")
	b.setJob(t, discarded, "discarded", "boom")
	inboxID, done := b.addEvent(t, "stripe", "evt_done", "charge.succeeded")
	b.markProcessed(t, inboxID, done, time.Now())

	var res ops.DrainResult
	b.hookctlJSON(t, &res, "drain", "--timeout", "5s", "--json")
	require.True(t, res.Drained)
	require.Zero(t, res.Remaining)

	stdout, _, err := b.hookctl(t, "drain", "--timeout", "5s")
	require.NoError(t, err)
	require.Contains(t, stdout, "queue events drained")
}

func TestDrainFailsWithATimeoutWhileJobsRemain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.addEvent(t, "stripe", "evt_1", "charge.succeeded")
	_, retrying := b.addEvent(t, "stripe", "evt_2", "charge.succeeded")
	b.setJob(t, retrying, "retryable", "boom")

	stdout, stderr, err := b.hookctl(t, "drain", "--timeout", "300ms", "--interval", "50ms", "--json")
	require.ErrorIs(t, err, ops.ErrDrainTimeout)
	require.ErrorContains(t, err, "2 jobs remain")
	var res ops.DrainResult
	require.NoError(t, json.Unmarshal([]byte(stdout), &res), "stdout: %s", stdout)
	require.False(t, res.Drained)
	require.Equal(t, int64(2), res.Remaining)
	require.Equal(t, ops.Backlog{Available: 1, Retryable: 1}, res.Backlog)
	require.Contains(t, stderr, "remaining 2", "with --json, progress goes to stderr")
}

func TestDrainWaitsForTheWorkersToFinishTheBacklog(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, id := range []string{"evt_1", "evt_2", "evt_3"} {
		b.addEvent(t, "stripe", id, "charge.succeeded")
	}
	// The worker starts paused, and is resumed while drain polls.
	_, _, err := b.hookctl(t, "pause")
	require.NoError(t, err)
	b.startWorker(t, nil)
	resumed := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, _, err := b.hookctl(t, "resume")
		resumed <- err
	}()
	stdout, _, err := b.hookctl(t, "drain", "--timeout", "20s", "--interval", "50ms")
	require.NoError(t, err)
	require.NoError(t, <-resumed)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	require.Contains(t, lines[0], "the queue is paused")
	require.Contains(t, lines[1], "remaining 3", "not a terminal: plain progress lines")
	require.NotContains(t, stdout, "\r")
	require.Contains(t, lines[len(lines)-1], "queue events drained: 3 jobs")
}

func TestDrainWarnsThatAPausedQueueCannotDrain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.addEvent(t, "stripe", "evt_1", "charge.succeeded")
	_, _, err := b.hookctl(t, "pause")
	require.NoError(t, err)

	stdout, _, err := b.hookctl(t, "drain", "--timeout", "200ms", "--interval", "50ms")
	require.ErrorIs(t, err, ops.ErrDrainTimeout)
	require.Contains(t, stdout, "the queue is paused")
}

func TestDrainRejectsANonPositiveInterval(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, _, err := b.hookctl(t, "drain", "--interval", "0s")
	require.ErrorContains(t, err, "--interval positive")
}

func TestDrainPrinterRedrawsOneLineOnATerminal(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	p := newDrainPrinter(&out, true)
	eta := 4 * time.Second
	p.show(ops.DrainProgress{Remaining: 10, Backlog: ops.Backlog{Available: 10}})
	p.show(ops.DrainProgress{Remaining: 8, Backlog: ops.Backlog{Available: 8}, Rate: 2, ETA: &eta, Elapsed: time.Second})
	require.NotContains(t, out.String(), "\n", "the line is redrawn, not repeated")
	require.Equal(t, 2, strings.Count(out.String(), "\r"))
	require.Contains(t, out.String(), "remaining 8")
	require.Contains(t, out.String(), "rate 2.0 jobs/s")
	require.Contains(t, out.String(), "eta 4s")
	p.finish()
	require.True(t, strings.HasSuffix(out.String(), "\n"))
}
