package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/ops"
)

// replayJob is a replay job as stored, with the transaction that wrote it.
type replayJob struct {
	ID   int64
	Args hooklinetype.JobArgs
	Xmin uint32
}

func (b *testBundle) replayJobs(t *testing.T) []replayJob {
	t.Helper()
	rows, err := b.db.Pool.Query(context.Background(), `
		SELECT id, args, xmin::text::bigint FROM river_job WHERE kind = $1 AND args->>'replay' = 'true' ORDER BY id`, hooklinetype.JobKind)
	require.NoError(t, err)
	jobs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (replayJob, error) {
		var j replayJob
		var xmin int64
		err := row.Scan(&j.ID, &j.Args, &xmin)
		j.Xmin = uint32(xmin)
		return j, err
	})
	require.NoError(t, err)
	return jobs
}

func (b *testBundle) auditCount(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM replay_audit`).Scan(&n))
	return n
}

func TestReplayEnqueuesAReplayJobAndItsAuditRowInOneTransaction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inboxID, jobID := b.addEvent(t, "stripe", "evt_1", "charge.succeeded")
	b.markProcessed(t, inboxID, jobID, time.Now())

	var r ops.Replayed
	b.hookctlJSON(t, &r, "replay", "stripe", "evt_1", "--by", "alice", "--reason", "INC-1: handler fixed", "--json")
	require.Equal(t, inboxID, r.InboxID)
	require.NotZero(t, r.JobID)

	jobs := b.replayJobs(t)
	require.Len(t, jobs, 1)
	require.Equal(t, r.JobID, jobs[0].ID)
	require.Equal(t, hooklinetype.JobArgs{InboxID: inboxID, Source: "stripe", EventID: "evt_1", Type: "charge.succeeded", Replay: true}, jobs[0].Args)

	var audit struct {
		ID, InboxID, JobID int64
		Source, EventID    string
		ReplayedBy, Reason string
		Xmin               int64
	}
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `
		SELECT id, inbox_id, job_id, source, event_id, replayed_by, reason, xmin::text::bigint FROM replay_audit`).
		Scan(&audit.ID, &audit.InboxID, &audit.JobID, &audit.Source, &audit.EventID, &audit.ReplayedBy, &audit.Reason, &audit.Xmin))
	require.Equal(t, r.AuditID, audit.ID)
	require.Equal(t, inboxID, audit.InboxID)
	require.Equal(t, r.JobID, audit.JobID)
	require.Equal(t, "stripe", audit.Source)
	require.Equal(t, "evt_1", audit.EventID)
	require.Equal(t, "alice", audit.ReplayedBy)
	require.Equal(t, "INC-1: handler fixed", audit.Reason)
	require.Equal(t, jobs[0].Xmin, uint32(audit.Xmin), "the job and the audit row were written by the same transaction")
}

func TestReplayDefaultsReplayedByToTheUser(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inboxID, jobID := b.addEvent(t, "stripe", "evt_1", "charge.succeeded")
	b.markProcessed(t, inboxID, jobID, time.Now())
	stdout, _, err := b.hookctl(t, "replay", "stripe", "evt_1")
	require.NoError(t, err)
	require.Contains(t, stdout, "replayed stripe/evt_1")
	var by string
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `SELECT replayed_by FROM replay_audit`).Scan(&by))
	require.Equal(t, "tester", by, "$USER")
}

func TestReplayWritesNoJobWhenTheAuditRowFails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inboxID, jobID := b.addEvent(t, "stripe", "evt_1", "charge.succeeded")
	b.markProcessed(t, inboxID, jobID, time.Now())
	b.exec(t, `
		CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit unavailable'; END $$;
		CREATE TRIGGER refuse BEFORE INSERT ON replay_audit FOR EACH ROW EXECUTE FUNCTION refuse();`)

	_, _, err := b.hookctl(t, "replay", "stripe", "evt_1")
	require.ErrorContains(t, err, "audit unavailable")
	require.Empty(t, b.replayJobs(t), "no replay without its audit row")
}

func TestReplayAppliesTheEffectAgainThroughTheWorker(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, `CREATE TABLE applied (event_id text NOT NULL)`)
	mux := hooklinetype.NewMux()
	mux.RegisterFunc("stripe", "charge.succeeded", func(ctx context.Context, tx pgx.Tx, ev hooklinetype.Event) error {
		_, err := tx.Exec(ctx, `INSERT INTO applied VALUES ($1)`, ev.EventID)
		return err
	})
	b.startWorker(t, mux)
	applied := func() int {
		var n int
		require.NoError(t, b.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM applied`).Scan(&n))
		return n
	}
	inboxID, jobID := b.addEvent(t, "stripe", "evt_1", "charge.succeeded")
	// River completes the job after the effect's commit, so wait for that
	// too: replay refuses an event whose job is still running.
	require.Eventually(t, func() bool { return b.processedAt(t, inboxID) != nil && b.jobState(t, jobID) == "completed" }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, 1, applied())

	_, _, err := b.hookctl(t, "replay", "stripe", "evt_1", "--reason", "rebuild")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return applied() == 2 }, 10*time.Second, 20*time.Millisecond, "a replay applies the effect again")
}

func TestReplayRefusesAQueuedOrPrunedOrUnknownEvent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.addEvent(t, "stripe", "evt_queued", "charge.succeeded")
	prunedID, prunedJob := b.addEvent(t, "stripe", "evt_pruned", "charge.succeeded")
	b.markProcessed(t, prunedID, prunedJob, time.Now())
	b.exec(t, `UPDATE inbox_events SET payload = '', pruned_at = now() WHERE id = $1`, prunedID)

	tests := []struct {
		name, eventID string
		want          error
	}{
		{"Queued", "evt_queued", ops.ErrQueued},
		{"Pruned", "evt_pruned", ops.ErrPruned},
		{"Unknown", "evt_missing", ops.ErrEventNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := b.hookctl(t, "replay", "stripe", tt.eventID)
			require.ErrorIs(t, err, tt.want)
			require.ErrorContains(t, err, "stripe/"+tt.eventID)
		})
	}
	t.Cleanup(func() {
		require.Empty(t, b.replayJobs(t))
		require.Zero(t, b.auditCount(t))
	})
}

func TestBulkReplayRefusesWithoutYesWhenNotOnATerminal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inboxID, jobID := b.addEvent(t, "stripe", "evt_1", "charge.succeeded")
	b.markProcessed(t, inboxID, jobID, time.Now())

	// Through the command itself, to give it a stdin that is surely not a
	// terminal, whatever go test was given.
	cmd := newReplayCmd(b.getenv)
	cmd.SetArgs([]string{"--source", "stripe", "--since", "1h"})
	cmd.SetIn(strings.NewReader("y\n"))
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := cmd.ExecuteContext(context.Background())
	require.ErrorContains(t, err, "refusing to replay 1 events")
	require.ErrorContains(t, err, "--yes")
	require.Empty(t, b.replayJobs(t))
}

func TestBulkReplayReplaysTheMatchingEventsAndSkipsQueuedAndPrunedOnes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var processed []int64
	for _, id := range []string{"evt_a", "evt_b"} {
		inboxID, jobID := b.addEvent(t, "stripe", id, "charge.succeeded")
		b.markProcessed(t, inboxID, jobID, time.Now())
		processed = append(processed, inboxID)
	}
	b.addEvent(t, "stripe", "evt_queued", "charge.succeeded")
	otherType, otherJob := b.addEvent(t, "stripe", "evt_refund", "charge.refunded")
	b.markProcessed(t, otherType, otherJob, time.Now())
	otherSource, otherSourceJob := b.addEvent(t, "bank", "tr_1", "charge.succeeded")
	b.markProcessed(t, otherSource, otherSourceJob, time.Now())
	old, oldJob := b.addEvent(t, "stripe", "evt_old", "charge.succeeded")
	b.markProcessed(t, old, oldJob, time.Now())
	b.exec(t, `UPDATE inbox_events SET received_at = now() - interval '3 hours' WHERE id = $1`, old)
	pruned, prunedJob := b.addEvent(t, "stripe", "evt_pruned", "charge.succeeded")
	b.markProcessed(t, pruned, prunedJob, time.Now())
	b.exec(t, `UPDATE inbox_events SET payload = '', pruned_at = now() WHERE id = $1`, pruned)

	var res ops.ReplayResult
	b.hookctlJSON(t, &res, "replay", "--source", "stripe", "--since", "1h", "--type", "charge.succeeded",
		"--yes", "--by", "bob", "--reason", "bulk", "--json")
	var replayed []string
	for _, r := range res.Replayed {
		replayed = append(replayed, r.EventID)
	}
	require.Equal(t, []string{"evt_a", "evt_b"}, replayed)
	skipped := map[string]string{}
	for _, s := range res.Skipped {
		skipped[s.EventID] = s.Reason
	}
	require.Equal(t, map[string]string{"evt_queued": ops.ErrQueued.Error(), "evt_pruned": ops.ErrPruned.Error()}, skipped)

	jobs := b.replayJobs(t)
	require.Len(t, jobs, 2)
	for i, j := range jobs {
		require.Equal(t, processed[i], j.Args.InboxID)
		require.True(t, j.Args.Replay)
		require.Equal(t, jobs[0].Xmin, j.Xmin, "one transaction for the whole replay")
	}
	require.Equal(t, 2, b.auditCount(t))

	stdout, _, err := b.hookctl(t, "replay", "--source", "stripe", "--since", "1h", "--type", "charge.succeeded", "--yes")
	require.NoError(t, err)
	require.Contains(t, stdout, "replayed 0 events")
	require.True(t, strings.Contains(stdout, "evt_a") && strings.Contains(stdout, "already has a job waiting to run"),
		"the first replay's jobs are still queued: %s", stdout)
}

func TestReplayNeedsEitherAnEventOrASourceAndATime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, args := range [][]string{
		{"replay"},
		{"replay", "stripe"},
		{"replay", "--source", "stripe"},
		{"replay", "--since", "1h"},
		{"replay", "stripe", "evt_1", "--source", "stripe", "--since", "1h"},
	} {
		_, _, err := b.hookctl(t, args...)
		require.Error(t, err, "%v", args)
	}
	_, _, err := b.hookctl(t, "replay", "--source", "stripe", "--since", "yesterday", "--yes")
	require.ErrorContains(t, err, "--since")
	out, _, err := b.hookctl(t, "replay", "--help")
	require.NoError(t, err)
	require.Contains(t, out, "one deliberate path that may apply an event's effect")
}

// addProcessedEvents stores n processed events of source, stripe-like, with
// no job left: what a bulk replay finds after its events were applied.
func (b *testBundle) addProcessedEvents(t *testing.T, source string, n int) {
	t.Helper()
	b.exec(t, `
		INSERT INTO inbox_events (source, event_id, event_type, payload, processed_at)
		SELECT $1, 'evt_' || g, 'charge.succeeded', '{}', now() FROM generate_series(1, $2::int) g`, source, n)
}

// bulkReplayFixture stores two processed events, one still queued and one
// pruned, of stripe, and returns the --since that picks them all.
func (b *testBundle) bulkReplayFixture(t *testing.T) string {
	t.Helper()
	for _, id := range []string{"evt_a", "evt_b"} {
		inboxID, jobID := b.addEvent(t, "stripe", id, "charge.succeeded")
		b.markProcessed(t, inboxID, jobID, time.Now())
	}
	b.addEvent(t, "stripe", "evt_queued", "charge.succeeded")
	pruned, prunedJob := b.addEvent(t, "stripe", "evt_pruned", "charge.succeeded")
	b.markProcessed(t, pruned, prunedJob, time.Now())
	b.exec(t, `UPDATE inbox_events SET payload = '', pruned_at = now() WHERE id = $1`, pruned)
	return time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
}

func TestBulkReplaySummaryPrintsTheCountsAndNoEvent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	since := b.bulkReplayFixture(t)

	stdout, stderr, err := b.hookctl(t, "replay", "--source", "stripe", "--since", since, "--yes", "--summary")
	require.NoError(t, err)
	require.Equal(t, "replayed 2 events of source stripe since "+since+"; skipped 2\n"+
		"  skipped 1: it already has a job waiting to run\n"+
		"  skipped 1: its payload was pruned\n", stdout)
	require.Empty(t, stderr)
	require.Len(t, b.replayJobs(t), 2, "--summary changes what is printed, not what is replayed")

	// Again: now evt_a and evt_b have replay jobs waiting too.
	var sum replaySummary
	b.hookctlJSON(t, &sum, "replay", "--source", "stripe", "--since", since, "--yes", "--summary", "--json")
	require.Equal(t, replaySummary{Replayed: 0, Skipped: 4, SkippedByReason: map[string]int{
		ops.ErrQueued.Error(): 3, ops.ErrPruned.Error(): 1,
	}}, sum)

	_, _, err = b.hookctl(t, "replay", "stripe", "evt_a", "--summary")
	require.ErrorContains(t, err, "--summary is for a bulk replay")
}

func TestBulkReplayPrintsNoProgressWhenItsOutputIsNotATerminal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	since := b.bulkReplayFixture(t)

	// Pipes, as a shell gives to `hookctl replay ... | tee log`: files, but
	// not terminals.
	outR, outW, err := os.Pipe()
	require.NoError(t, err)
	errR, errW, err := os.Pipe()
	require.NoError(t, err)
	read := func(r *os.File) <-chan string {
		c := make(chan string, 1)
		go func() {
			b, _ := io.ReadAll(r)
			c <- string(b)
		}()
		return c
	}
	stdout, stderr := read(outR), read(errR)
	err = run(context.Background(), []string{"hookctl", "replay", "--source", "stripe", "--since", since, "--yes"}, b.getenv, outW, errW)
	require.NoError(t, err)
	require.NoError(t, outW.Close())
	require.NoError(t, errW.Close())

	want := "replayed 2 events of source stripe since " + since + "; skipped 2\n"
	out := <-stdout
	require.True(t, strings.HasPrefix(out, want), "the result comes first, with nothing before it: %q", out)
	require.Equal(t, 1+1+2+1+2, strings.Count(out, "\n"), "the counts, a header and 2 rows, a header and 2 rows: %q", out)
	require.NotContains(t, out, "\r")
	require.NotContains(t, out, "replaying:")
	require.Empty(t, <-stderr)
}

func TestReplayPrinterRedrawsOneLineAndErasesIt(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	p := newReplayPrinter(&out, time.Now())
	p.show(ops.ReplayProgress{Total: 1200})
	p.show(ops.ReplayProgress{Total: 1200, Done: 500, Replayed: 498, Skipped: 2})
	require.NotContains(t, out.String(), "\n", "the line is redrawn, not repeated")
	require.Equal(t, 2, strings.Count(out.String(), "\r"))
	require.Contains(t, out.String(), "replaying: 500 of 1200 events checked (41%), 498 replayed, 2 skipped")
	p.finish()
	require.True(t, strings.HasSuffix(out.String(), "\r\x1b[K"), "the result then starts on a clean line")
	var nothing *replayPrinter
	nothing.finish()
}

func TestBulkReplayShowsItsProgressOnATerminalChunkByChunkInOneTransaction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Three of ops' chunks of 500.
	b.addProcessedEvents(t, "stripe", 1201)
	ctl, term := openPTY(t)
	screen := make(chan string, 1)
	go func() {
		// Reading ends with EIO once the terminal's end is closed.
		b, _ := io.ReadAll(ctl)
		screen <- string(b)
	}()
	err := run(context.Background(), []string{"hookctl", "replay", "--source", "stripe", "--since", "1h", "--yes", "--summary"}, b.getenv, term, io.Discard)
	require.NoError(t, err)
	require.NoError(t, term.Close())
	out := <-screen

	for _, want := range []string{
		"\rreplaying: 0 of 1201 events checked (0%), 0 replayed, 0 skipped, ",
		"\rreplaying: 500 of 1201 events checked (41%), 500 replayed, 0 skipped, ",
		"\rreplaying: 1000 of 1201 events checked (83%), 1000 replayed, 0 skipped, ",
		"\rreplaying: 1201 of 1201 events checked (100%), 1201 replayed, 0 skipped, ",
	} {
		require.Contains(t, out, want)
	}
	erased := strings.LastIndex(out, "\r\x1b[K")
	require.True(t, strings.HasPrefix(out[erased:], "\r\x1b[Kreplayed 1201 events of source stripe since "),
		"the line is erased before the result: %q", out[max(0, len(out)-200):])
	jobs := b.replayJobs(t)
	require.Len(t, jobs, 1201)
	for _, j := range jobs {
		require.Equal(t, jobs[0].Xmin, j.Xmin, "the chunks share one transaction")
	}
	require.Equal(t, 1201, b.auditCount(t))
}
