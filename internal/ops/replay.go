package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/riverdb"
)

// Reasons an event is not replayed.
var (
	// ErrPruned: its payload was pruned, so the handler would see an empty
	// body.
	ErrPruned = errors.New("its payload was pruned")
	// ErrQueued: it has a job that will still run. A replay job next to it
	// would apply the event twice, once by each job.
	ErrQueued = errors.New("it already has a job waiting to run")
)

// ReplayOpts describe who replays and why, for replay_audit, and who
// watches.
type ReplayOpts struct {
	// By names the operator; required.
	By string
	// Reason is free text, stored as given.
	Reason string
	// Progress, if set, is called once the events are locked and after
	// each chunk of replayChunk events, from the replaying goroutine. What
	// it reports is not committed until the replay returns without error.
	Progress func(ReplayProgress)
}

// ReplayProgress is how far a replay has got within its transaction.
type ReplayProgress struct {
	// Total is the number of events the replay picked and locked; Done of
	// them were checked, Replayed re-enqueued and Skipped left alone.
	Total, Done, Replayed, Skipped int
}

// replayChunk is how many events a replay checks and enqueues per
// statement: a bulk replay of 10,000 events reports its progress 20 times.
const replayChunk = 500

// ReplaySelector picks the events of a bulk replay: those of Source
// received at or after Since, of type Type if it is set.
type ReplaySelector struct {
	Source string
	Since  time.Time
	Type   string
}

func (s ReplaySelector) validate() error {
	if s.Source == "" || s.Since.IsZero() {
		return errors.New("a bulk replay needs a source and a start time")
	}
	return nil
}

func (s ReplaySelector) String() string {
	d := fmt.Sprintf("source %s since %s", s.Source, s.Since.UTC().Format(time.RFC3339))
	if s.Type != "" {
		d += " type " + s.Type
	}
	return d
}

// Replayed is one event that was re-enqueued.
type Replayed struct {
	InboxID int64  `json:"inbox_id"`
	Source  string `json:"source"`
	EventID string `json:"event_id"`
	Type    string `json:"type"`
	// JobID is the replay job, and AuditID its replay_audit row.
	JobID   int64 `json:"job_id"`
	AuditID int64 `json:"audit_id"`
	// Object and NewerApplied are set when the event is older than the
	// newest event an ordered handler applied for its object (that
	// event's id): the replay runs its handler anyway, as asked, which
	// may write the older state over the newer.
	Object       string `json:"object,omitempty"`
	NewerApplied string `json:"newer_applied,omitempty"`
}

// Skipped is one event a replay left alone, and why.
type Skipped struct {
	InboxID int64  `json:"inbox_id"`
	Source  string `json:"source"`
	EventID string `json:"event_id"`
	Reason  string `json:"reason"`
	err     error
}

// ReplayResult is the outcome of a bulk replay.
type ReplayResult struct {
	Replayed []Replayed `json:"replayed"`
	Skipped  []Skipped  `json:"skipped"`
}

// ReplayPreview counts what ReplayMatching would do now.
type ReplayPreview struct {
	Matching   int `json:"matching"`
	Replayable int `json:"replayable"`
}

// ReplayEvent re-enqueues the event (source, eventID) with a job whose
// Args.Replay is set, which makes the worker apply the event again even
// though it was processed: replay is the one deliberate way to apply an
// effect twice. The job and a replay_audit row are written in one
// transaction.
//
// It refuses, with an error wrapping ErrPruned or ErrQueued, an event whose
// payload was pruned or which still has a job waiting to run, and returns
// an error wrapping ErrEventNotFound for an unknown event.
func (c *Client) ReplayEvent(ctx context.Context, source, eventID string, opts ReplayOpts) (Replayed, error) {
	var out Replayed
	err := c.replay(ctx, opts, `e.source = $1 AND e.event_id = $2`, []any{source, eventID},
		func(replayed []Replayed, skipped []Skipped) error {
			switch {
			case len(replayed) == 1:
				out = replayed[0]
				return nil
			case len(skipped) == 1:
				return skipped[0].err
			default:
				return ErrEventNotFound
			}
		})
	if err != nil {
		return Replayed{}, fmt.Errorf("replay event %s/%s: %w", source, eventID, err)
	}
	return out, nil
}

// ReplayMatching replays, as ReplayEvent does, every event that sel picks,
// in one transaction, replayChunk events at a time, telling
// opts.Progress after each chunk. Events that are pruned or still queued
// are skipped and reported.
func (c *Client) ReplayMatching(ctx context.Context, sel ReplaySelector, opts ReplayOpts) (ReplayResult, error) {
	if err := sel.validate(); err != nil {
		return ReplayResult{}, fmt.Errorf("replay events: %w", err)
	}
	res := ReplayResult{Replayed: []Replayed{}, Skipped: []Skipped{}}
	where, args := sel.where()
	err := c.replay(ctx, opts, where, args, func(replayed []Replayed, skipped []Skipped) error {
		res.Replayed = append(res.Replayed, replayed...)
		res.Skipped = append(res.Skipped, skipped...)
		return nil
	})
	if err != nil {
		return ReplayResult{}, fmt.Errorf("replay events of %s: %w", sel, err)
	}
	return res, nil
}

// PreviewReplay counts the events sel picks and how many of them a replay
// would re-enqueue now, without changing anything.
func (c *Client) PreviewReplay(ctx context.Context, sel ReplaySelector) (ReplayPreview, error) {
	if err := sel.validate(); err != nil {
		return ReplayPreview{}, fmt.Errorf("preview replay: %w", err)
	}
	where, args := sel.where()
	var p ReplayPreview
	err := c.readTx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `
			SELECT count(*), count(*) FILTER (WHERE e.pruned_at IS NULL AND NOT `+riverdb.HasLiveJob("$4", "$5")+`)
			FROM inbox_events e WHERE `+where, append(args, hooklinetype.JobKind, liveStates)...,
		).Scan(&p.Matching, &p.Replayable)
	})
	if err != nil {
		return ReplayPreview{}, fmt.Errorf("preview replay of %s: %w", sel, err)
	}
	return p, nil
}

// where returns the selector's condition on inbox_events e, with
// parameters $1 to $3.
func (s ReplaySelector) where() (string, []any) {
	return `e.source = $1 AND e.received_at >= $2 AND ($3 = '' OR e.event_type = $3)`, []any{s.Source, s.Since, s.Type}
}

// replay re-enqueues the events that where (a condition on inbox_events e
// over args) picks, and passes what it did to done before committing; an
// error from done rolls everything back.
func (c *Client) replay(ctx context.Context, opts ReplayOpts, where string, args []any,
	done func([]Replayed, []Skipped) error,
) error {
	if strings.TrimSpace(opts.By) == "" {
		return errors.New("say who replays (ReplayOpts.By)")
	}
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		// Lock the rows first. A worker holds an event's row while it
		// applies it, and prune locks rows before emptying them, so once
		// the locks are held, the checks below (a new statement, so a new
		// snapshot) see every job and prune committed before.
		rows, err := tx.Query(ctx, `SELECT e.id FROM inbox_events e WHERE `+where+` ORDER BY e.id FOR UPDATE`, args...)
		if err != nil {
			return fmt.Errorf("lock events: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("lock events: %w", err)
		}
		progress := ReplayProgress{Total: len(ids)}
		report := func() {
			if opts.Progress != nil {
				opts.Progress(progress)
			}
		}
		report()
		var replayed []Replayed
		var skipped []Skipped
		for chunk := range slices.Chunk(ids, replayChunk) {
			r, s, err := c.replayLocked(ctx, tx, chunk, opts)
			if err != nil {
				return err
			}
			replayed, skipped = append(replayed, r...), append(skipped, s...)
			progress.Done += len(chunk)
			progress.Replayed += len(r)
			progress.Skipped += len(s)
			report()
		}
		return done(replayed, skipped)
	})
}

// replayLocked re-enqueues, within tx, the events ids (locked by tx) that
// are neither pruned nor still queued, with their audit rows, and says
// which it replayed and which it skipped.
func (c *Client) replayLocked(ctx context.Context, tx pgx.Tx, ids []int64, opts ReplayOpts) ([]Replayed, []Skipped, error) {
	type candidate struct {
		ID                    int64
		Source, EventID, Type string
		Pruned, Queued        bool
		Object, Newer         string
	}
	// The mark's comparison is the worker's: event time, then the event
	// id's bytes (COLLATE "C").
	rows, err := tx.Query(ctx, `
		SELECT e.id, e.source, e.event_id, e.event_type, e.pruned_at IS NOT NULL, `+riverdb.HasLiveJob("$1", "$3")+`,
		       coalesce(e.object_key, ''), coalesce(w.event_id, '')
		FROM inbox_events e
		LEFT JOIN object_watermarks w ON w.source = e.source AND w.object_key = e.object_key
			AND (coalesce(e.event_time, e.received_at), e.event_id COLLATE "C") < (w.event_time, w.event_id COLLATE "C")
		WHERE e.id = ANY($2) ORDER BY e.id`, hooklinetype.JobKind, ids, liveStates)
	if err != nil {
		return nil, nil, fmt.Errorf("check events: %w", err)
	}
	candidates, err := pgx.CollectRows(rows, pgx.RowToStructByPos[candidate])
	if err != nil {
		return nil, nil, fmt.Errorf("check events: %w", err)
	}

	var replayed []Replayed
	var skipped []Skipped
	var params []river.InsertManyParams
	for _, cd := range candidates {
		switch {
		case cd.Pruned:
			skipped = append(skipped, Skipped{cd.ID, cd.Source, cd.EventID, ErrPruned.Error(), ErrPruned})
		case cd.Queued:
			skipped = append(skipped, Skipped{cd.ID, cd.Source, cd.EventID, ErrQueued.Error(), ErrQueued})
		default:
			r := Replayed{InboxID: cd.ID, Source: cd.Source, EventID: cd.EventID, Type: cd.Type}
			if cd.Newer != "" {
				r.Object, r.NewerApplied = cd.Object, cd.Newer
			}
			replayed = append(replayed, r)
			params = append(params, river.InsertManyParams{Args: hooklinetype.JobArgs{
				InboxID: cd.ID, Source: cd.Source, EventID: cd.EventID, Type: cd.Type, Object: cd.Object, Replay: true,
			}})
		}
	}
	if len(params) > 0 {
		results, err := c.river.InsertManyTx(ctx, tx, params)
		if err != nil {
			return nil, nil, fmt.Errorf("insert %d replay jobs: %w", len(params), err)
		}
		inboxIDs, jobIDs := make([]int64, len(replayed)), make([]int64, len(replayed))
		sources, eventIDs := make([]string, len(replayed)), make([]string, len(replayed))
		for i, r := range results {
			replayed[i].JobID = r.Job.ID
			inboxIDs[i], jobIDs[i], sources[i], eventIDs[i] = replayed[i].InboxID, r.Job.ID, replayed[i].Source, replayed[i].EventID
		}
		rows, err := tx.Query(ctx, `
			INSERT INTO replay_audit (inbox_id, source, event_id, job_id, replayed_by, reason)
			SELECT i, s, e, j, $5, $6
			FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[]) AS u(i, s, e, j)
			RETURNING job_id, id`, inboxIDs, sources, eventIDs, jobIDs, opts.By, opts.Reason)
		if err != nil {
			return nil, nil, fmt.Errorf("write replay audit: %w", err)
		}
		auditIDs := make(map[int64]int64, len(replayed))
		var jobID, auditID int64
		if _, err := pgx.ForEachRow(rows, []any{&jobID, &auditID}, func() error {
			auditIDs[jobID] = auditID
			return nil
		}); err != nil {
			return nil, nil, fmt.Errorf("write replay audit: %w", err)
		}
		for i := range replayed {
			replayed[i].AuditID = auditIDs[replayed[i].JobID]
		}
	}
	return replayed, skipped, nil
}
