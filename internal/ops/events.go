package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/rivertype"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/riverdb"
)

// ErrEventNotFound is returned, wrapped, when no inbox row has the
// requested source and event id.
var ErrEventNotFound = errors.New("event not found")

// An event's status is StatusProcessed once a worker applied it (its
// processed_at is set), or StatusStale if an ordered handler completed it
// without running, because a newer event of its object had already been
// applied (its superseded_by is set). Until then it is the River state of its latest job
// (available, running, retryable, scheduled, pending, discarded, cancelled,
// or completed), or StatusReceived when no job of it is left in river_job.
const (
	StatusProcessed = "processed"
	StatusStale     = "stale"
	StatusReceived  = "received"
)

// Statuses a list can be filtered by: the statuses above, plus
// "unprocessed" (any event not yet processed) and "failed" (its latest job
// is in riverdb.DeadStates, discarded or cancelled: it will not run again
// without an operator).
var Statuses = slices.Concat(
	[]string{StatusProcessed, StatusStale, "unprocessed", StatusReceived, "failed"},
	riverdb.Names(riverdb.LiveStates()),
	riverdb.Names(riverdb.FinalStates()),
)

// JobSummary is a River job of an event (riverdb.Job).
type JobSummary = riverdb.Job

// EventSummary is an inbox row with the state of its latest job.
type EventSummary struct {
	InboxID    int64     `json:"inbox_id"`
	Source     string    `json:"source"`
	EventID    string    `json:"event_id"`
	Type       string    `json:"type"`
	ReceivedAt time.Time `json:"received_at"`
	// Object is the key of the object the event is about, if its source
	// locates one, and EventTime the provider's time for it (else the
	// received time): what ordered handlers order by.
	Object      string     `json:"object,omitempty"`
	EventTime   time.Time  `json:"event_time"`
	ProcessedAt *time.Time `json:"processed_at"`
	// SupersededBy, for a stale event, is the id of the newer event of the
	// same object that had been applied when it came.
	SupersededBy string `json:"superseded_by,omitempty"`
	// PrunedAt is when prune emptied the payload, if it did.
	PrunedAt *time.Time `json:"pruned_at"`
	Status   string     `json:"status"`
	// Job is the latest job of the event, or nil when none is left.
	Job *JobSummary `json:"job"`
}

// EventFilter selects events for ListEvents. Zero fields do not filter.
type EventFilter struct {
	Source string
	Type   string
	// Object keeps the events of one object (with Source, through an
	// index; without, by reading each source's part of it).
	Object string
	// Since keeps events received at or after it.
	Since time.Time
	// Status is one of Statuses.
	Status string
	// Limit caps the events returned, newest first; 50 if zero.
	Limit int
	// Before, if set, keeps events with an inbox id below it: the next page
	// starts before the last event of the previous one (keyset
	// pagination), so a page costs the same however deep it is.
	Before int64
}

// columns of an EventSummary, over inbox_events e and a job j.
const eventSummaryColumns = `
	e.id, e.source, e.event_id, e.event_type, e.received_at, coalesce(e.object_key, ''),
	coalesce(e.event_time, e.received_at), e.processed_at, coalesce(e.superseded_by, ''), e.pruned_at, e.job_id IS NULL,
	` + riverdb.JobColumns

// ListEvents returns the events that match f, newest (highest inbox id)
// first.
//
// Without a status, or with "processed", "unprocessed" or "received", it
// walks the inbox backwards from the newest event (or from f.Before) and
// reads each listed event's jobs by primary key, so a page costs the same
// at any size of the inbox or of river_job; a filter that few events match
// reads further back: bound it with Since. Statuses that are River states
// are found from river_job, through River's (state, queue) index, so
// listing the dead letters reads only the jobs in that state.
func (c *Client) ListEvents(ctx context.Context, f EventFilter) ([]EventSummary, error) {
	if f.Status != "" && !slices.Contains(Statuses, f.Status) {
		return nil, fmt.Errorf("list events: unknown status %q: want one of %s", f.Status, strings.Join(Statuses, ", "))
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	args := []any{hooklinetype.JobKind}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	var where []string
	if f.Source != "" {
		where = append(where, "e.source = "+arg(f.Source))
	}
	if f.Type != "" {
		where = append(where, "e.event_type = "+arg(f.Type))
	}
	if f.Object != "" {
		where = append(where, "e.object_key = "+arg(f.Object))
	}
	if !f.Since.IsZero() {
		where = append(where, "e.received_at >= "+arg(f.Since))
	}
	below := ""
	if f.Before > 0 {
		below = arg(f.Before)
		where = append(where, "e.id < "+below)
	}

	var from string
	switch states := jobStatesFor(f.Status); {
	case states != nil:
		// The event's latest job is in one of the states: find the jobs in
		// those states, keep the latest of their event, and join the inbox.
		from = riverdb.JobsInStatesWithInbox("$1", arg(c.queue), arg(riverdb.Names(states)), below)
		where = append(where, riverdb.IsLatestJob, "e.processed_at IS NULL")
	default:
		switch f.Status {
		case StatusProcessed:
			where = append(where, "e.processed_at IS NOT NULL", "e.superseded_by IS NULL")
		case StatusStale:
			where = append(where, "e.processed_at IS NOT NULL", "e.superseded_by IS NOT NULL")
		case "unprocessed":
			where = append(where, "e.processed_at IS NULL")
		case StatusReceived:
			where = append(where, "e.processed_at IS NULL", "j.id IS NULL")
		}
		if len(where) == 0 {
			where = append(where, "true")
		}
		from = riverdb.InboxWithLatestJob("$1")
	}
	sql := `SELECT ` + eventSummaryColumns + `
		FROM ` + from + `
		WHERE ` + strings.Join(where, " AND ") + `
		ORDER BY e.id DESC LIMIT ` + arg(f.Limit)

	var events []EventSummary
	err := c.readTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		var listed []listedEvent
		if listed, err = pgx.CollectRows(rows, scanEventSummary); err != nil {
			return err
		}
		events = make([]EventSummary, 0, len(listed))
		for _, l := range listed {
			if l.legacy && l.Job == nil {
				// Stored before the inbox recorded its job: look the job up
				// through args, one indexed lookup per such event on the page.
				jobs, err := riverdb.JobsOf(ctx, tx, hooklinetype.JobKind, l.InboxID)
				if err != nil {
					return err
				}
				if len(jobs) > 0 {
					l.Job = &jobs[0]
				}
				l.Status = statusOf(l.ProcessedAt, l.SupersededBy, l.Job)
				if !matchesStatus(f.Status, l.EventSummary) {
					continue
				}
			}
			events = append(events, l.EventSummary)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list events (%s): %w", describeFilter(f), err)
	}
	return events, nil
}

// matchesStatus reports whether ev, whose job was looked up after the
// query, still has a status the filter asked for. Only "received" depends
// on the job among the statuses that walk the inbox; the River states' query
// found the job itself.
func matchesStatus(status string, ev EventSummary) bool {
	return status != StatusReceived || ev.Status == StatusReceived
}

// jobStatesFor returns the River states that status stands for, or nil
// when status is not about the latest job's state.
func jobStatesFor(status string) []rivertype.JobState {
	if status == "failed" {
		return riverdb.DeadStates()
	}
	if state := rivertype.JobState(status); slices.Contains(rivertype.JobStates(), state) {
		return []rivertype.JobState{state}
	}
	return nil
}

func describeFilter(f EventFilter) string {
	parts := []string{fmt.Sprintf("limit %d", f.Limit)}
	if f.Source != "" {
		parts = append(parts, "source "+f.Source)
	}
	if f.Type != "" {
		parts = append(parts, "type "+f.Type)
	}
	if f.Object != "" {
		parts = append(parts, "object "+f.Object)
	}
	if !f.Since.IsZero() {
		parts = append(parts, "since "+f.Since.Format(time.RFC3339))
	}
	if f.Before > 0 {
		parts = append(parts, fmt.Sprintf("before %d", f.Before))
	}
	if f.Status != "" {
		parts = append(parts, "status "+f.Status)
	}
	return strings.Join(parts, ", ")
}

// listedEvent is a row of the list query. legacy is set for a row stored
// before the inbox recorded its job (job_id NULL).
type listedEvent struct {
	EventSummary
	legacy bool
}

func scanEventSummary(row pgx.CollectableRow) (listedEvent, error) {
	var l listedEvent
	ev := &l.EventSummary
	var (
		jobID                  *int64
		state, lastError       *string
		attempt, maxAttempts   *int16
		replay                 bool
		createdAt, finalizedAt *time.Time
	)
	err := row.Scan(&ev.InboxID, &ev.Source, &ev.EventID, &ev.Type, &ev.ReceivedAt, &ev.Object, &ev.EventTime,
		&ev.ProcessedAt, &ev.SupersededBy, &ev.PrunedAt, &l.legacy,
		&jobID, &state, &attempt, &maxAttempts, &replay, &createdAt, &finalizedAt, &lastError)
	if err != nil {
		return l, err
	}
	if jobID != nil {
		ev.Job = &JobSummary{
			ID: *jobID, State: deref(state), Attempt: int(deref(attempt)), MaxAttempts: int(deref(maxAttempts)),
			Replay: replay, CreatedAt: deref(createdAt), FinalizedAt: finalizedAt, LastError: deref(lastError),
		}
	}
	ev.Status = statusOf(ev.ProcessedAt, ev.SupersededBy, ev.Job)
	return l, nil
}

func statusOf(processedAt *time.Time, supersededBy string, latest *JobSummary) string {
	switch {
	case processedAt != nil && supersededBy != "":
		return StatusStale
	case processedAt != nil:
		return StatusProcessed
	case latest != nil:
		return latest.State
	default:
		return StatusReceived
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// ReplayRecord is a row of replay_audit.
type ReplayRecord struct {
	ID         int64     `json:"id"`
	InboxID    int64     `json:"inbox_id"`
	JobID      int64     `json:"job_id"`
	ReplayedBy string    `json:"replayed_by"`
	ReplayedAt time.Time `json:"replayed_at"`
	Reason     string    `json:"reason"`
}

// RecoveryRecord is a row of recovery_audit: the event was stored by
// catch-up, from the provider's API, not from a signed delivery.
type RecoveryRecord struct {
	ID          int64     `json:"id"`
	JobID       int64     `json:"job_id"`
	Origin      string    `json:"origin"`
	RecoveredBy string    `json:"recovered_by"`
	RecoveredAt time.Time `json:"recovered_at"`
	Reason      string    `json:"reason"`
}

// EventDetail is one event with all its jobs and replays.
type EventDetail struct {
	EventSummary
	APIVersion string `json:"api_version"`
	// PayloadBytes is the stored body's size: 0 once pruned.
	PayloadBytes int `json:"payload_bytes"`
	// Payload and Headers are only loaded when asked for.
	Payload []byte            `json:"-"`
	Headers map[string]string `json:"headers,omitempty"`
	// Jobs are every job of the event still in river_job, newest first.
	Jobs []JobSummary `json:"jobs"`
	// Replays are the event's replay_audit rows, oldest first.
	Replays []ReplayRecord `json:"replays"`
	// Watermark is the newest event of the event's object that an ordered
	// handler has applied, or nil if none has.
	Watermark *Watermark `json:"watermark,omitempty"`
	// Recovery is set when catch-up stored the event from the provider's
	// API; nil for an event that came by signed delivery.
	Recovery *RecoveryRecord `json:"recovery"`
}

// Watermark is a row of object_watermarks: the newest event, by event time
// then event id, that an ordered handler applied for an object.
type Watermark struct {
	EventID   string    `json:"event_id"`
	EventTime time.Time `json:"event_time"`
	UpdatedAt time.Time `json:"updated_at"`
}

// GetEvent returns the event (source, eventID), with its jobs and replays.
// Its payload and headers (which hold the signature) are only read when
// withPayload is set. It returns an error wrapping ErrEventNotFound if
// there is no such event.
func (c *Client) GetEvent(ctx context.Context, source, eventID string, withPayload bool) (EventDetail, error) {
	var d EventDetail
	err := c.readTx(ctx, func(tx pgx.Tx) error {
		var apiVersion *string
		var jobID *int64
		err := tx.QueryRow(ctx, `
			SELECT id, source, event_id, event_type, api_version, received_at, coalesce(object_key, ''),
			       coalesce(event_time, received_at), processed_at, coalesce(superseded_by, ''), pruned_at, job_id,
			       octet_length(payload),
			       CASE WHEN $3 THEN payload END,
			       CASE WHEN $3 THEN headers END
			FROM inbox_events WHERE source = $1 AND event_id = $2`, source, eventID, withPayload,
		).Scan(&d.InboxID, &d.Source, &d.EventID, &d.Type, &apiVersion, &d.ReceivedAt, &d.Object, &d.EventTime,
			&d.ProcessedAt, &d.SupersededBy, &d.PrunedAt, &jobID, &d.PayloadBytes, &d.Payload, &d.Headers)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrEventNotFound
		}
		if err != nil {
			return fmt.Errorf("read inbox row: %w", err)
		}
		d.APIVersion = deref(apiVersion)

		if d.Object != "" {
			var w Watermark
			err := tx.QueryRow(ctx, `SELECT event_id, event_time, updated_at FROM object_watermarks
				WHERE source = $1 AND object_key = $2`, source, d.Object).Scan(&w.EventID, &w.EventTime, &w.UpdatedAt)
			switch {
			case err == nil:
				d.Watermark = &w
			case !errors.Is(err, pgx.ErrNoRows):
				return fmt.Errorf("read the watermark of object %s: %w", d.Object, err)
			}
		}

		rows, err := tx.Query(ctx, `
			SELECT id, inbox_id, job_id, replayed_by, replayed_at, reason
			FROM replay_audit WHERE source = $1 AND event_id = $2 ORDER BY id`, source, eventID)
		if err != nil {
			return fmt.Errorf("list replays: %w", err)
		}
		d.Replays, err = pgx.CollectRows(rows, pgx.RowToStructByPos[ReplayRecord])
		if err != nil {
			return fmt.Errorf("list replays: %w", err)
		}

		// By the inbox id too: the key of an event pruned and delivered
		// again names a row that catch-up did not store.
		rows, err = tx.Query(ctx, `
			SELECT id, job_id, origin, recovered_by, recovered_at, reason
			FROM recovery_audit WHERE source = $1 AND event_id = $2 AND inbox_id = $3`, source, eventID, d.InboxID)
		if err != nil {
			return fmt.Errorf("read recovery: %w", err)
		}
		rec, err := pgx.CollectRows(rows, pgx.RowToStructByPos[RecoveryRecord])
		if err != nil {
			return fmt.Errorf("read recovery: %w", err)
		}
		if len(rec) > 0 {
			d.Recovery = &rec[0]
		}

		if jobID == nil {
			// Stored before the inbox recorded its job: search args.
			d.Jobs, err = riverdb.JobsOf(ctx, tx, hooklinetype.JobKind, d.InboxID)
			return err
		}
		// The receiver's job and the replays' of this row; a replay of an
		// earlier row with the same key (deleted, then delivered again) is
		// listed among the replays but is not this row's job.
		ids := []int64{*jobID}
		for _, r := range d.Replays {
			if r.InboxID == d.InboxID {
				ids = append(ids, r.JobID)
			}
		}
		d.Jobs, err = riverdb.JobsByID(ctx, tx, hooklinetype.JobKind, ids)
		return err
	})
	if err != nil {
		return EventDetail{}, fmt.Errorf("get event %s/%s: %w", source, eventID, err)
	}
	if d.Jobs == nil {
		d.Jobs = []JobSummary{}
	}
	if d.Replays == nil {
		d.Replays = []ReplayRecord{}
	}
	var latest *JobSummary
	if len(d.Jobs) > 0 {
		latest = &d.Jobs[0]
		d.Job = latest
	}
	d.Status = statusOf(d.ProcessedAt, d.SupersededBy, latest)
	return d, nil
}
