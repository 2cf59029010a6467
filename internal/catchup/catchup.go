// Package catchup recovers the events a provider gave up delivering: it
// lists them from the provider's API and stores the ones the inbox lacks,
// through the receiver's own store-and-enqueue step (ingest.Store), so that
// deduplication by event id holds both ways. An event stored here and
// delivered later by webhook is a duplicate, and so is the reverse.
//
// Each recovered event gets a recovery_audit row (who, when, why, from
// where) in the transaction that stores it. Events are stored a page at a
// time, one transaction per page: a failure midway leaves every earlier
// page stored, and a rerun lists them again, finds them stored, and goes
// on.
package catchup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
)

// Event is one event as a provider's API lists it.
type Event struct {
	ID         string
	Type       string
	APIVersion string
	Created    time.Time
	// Payload is the event object, byte for byte as the API sent it but
	// for insignificant whitespace.
	Payload []byte
}

// Refusal is a listed event that the receiver would refuse (a malformed
// envelope), and so catch-up does not store either.
type Refusal struct {
	EventID string `json:"event_id"`
	Reason  string `json:"reason"`
}

// Page is one page of a listing.
type Page struct {
	Events  []Event
	Refused []Refusal
	// Next is the cursor of the next page; empty after the last page.
	Next string
}

// Lister lists a provider's events, a page at a time.
type Lister interface {
	// Page returns the page that follows cursor, or the first page for "".
	Page(ctx context.Context, cursor string) (Page, error)
}

// Options say where recovered events go and who recovers them, for the
// audit.
type Options struct {
	// Source is the inbox source the events are stored under: the name of
	// the receiver's source for the provider, such as stripe.
	Source string
	// Origin says where the events came from, such as stripe_api; it is
	// stored in recovery_audit.
	Origin string
	// By names who recovers (an operator, or the worker); required.
	By string
	// Reason is free text for the audit.
	Reason string
	// DryRun lists and compares with the inbox, and stores nothing.
	DryRun bool
	// Progress, if set, is called after each page with the totals so far.
	Progress func(Summary)
}

// Recovered is one event the inbox lacked: stored now, or, in a dry run,
// that would be.
type Recovered struct {
	EventID string    `json:"event_id"`
	Type    string    `json:"type"`
	Created time.Time `json:"created"`
	// InboxID, JobID and AuditID are the rows written; zero in a dry run.
	InboxID int64 `json:"inbox_id,omitempty"`
	JobID   int64 `json:"job_id,omitempty"`
	AuditID int64 `json:"audit_id,omitempty"`
}

// Summary counts what a run did. After an error it counts what was done
// before it, all of which is committed.
type Summary struct {
	Source string `json:"source"`
	DryRun bool   `json:"dry_run"`
	Pages  int    `json:"pages"`
	Listed int    `json:"listed"`
	// AlreadyStored were in the inbox already: delivered by webhook, or
	// recovered by an earlier run.
	AlreadyStored int `json:"already_stored"`
	// Stored were stored by this run (in a dry run: would have been).
	Stored  int `json:"stored"`
	Refused int `json:"refused"`
	// Oldest is the creation time of the oldest event listed so far. The
	// APIs list newest first, so it tells how far back a run has got.
	Oldest    time.Time   `json:"oldest,omitzero"`
	Recovered []Recovered `json:"recovered"`
	Refusals  []Refusal   `json:"refusals"`
}

// Store writes recovered events, with the receiver's store-and-enqueue
// step and an audit row each.
type Store struct {
	pool  *pgxpool.Pool
	river *river.Client[pgx.Tx]
}

// NewStore returns a Store that writes through pool and enqueues with rc,
// which may be an insert-only River client that is never started. rc
// should have the ingest.JobIDs middleware, as the receiver's has, or each
// stored row is written a second time to record its job (ingest.Enqueue).
func NewStore(pool *pgxpool.Pool, rc *river.Client[pgx.Tx]) *Store {
	return &Store{pool: pool, river: rc}
}

// Run lists every page of l and stores the events the inbox lacks, one
// transaction per page. It stops at the first error, returning it with the
// summary of what was done before, which is committed.
func Run(ctx context.Context, l Lister, s *Store, opts Options) (Summary, error) {
	sum := Summary{Source: opts.Source, DryRun: opts.DryRun, Recovered: []Recovered{}, Refusals: []Refusal{}}
	if opts.Source == "" || opts.Origin == "" {
		return sum, errors.New("catch-up needs a source and an origin")
	}
	if !opts.DryRun && strings.TrimSpace(opts.By) == "" {
		return sum, errors.New("say who recovers the events, for the audit")
	}
	cursor := ""
	for {
		page, err := l.Page(ctx, cursor)
		if err != nil {
			return sum, fmt.Errorf("list page %d of %s events: %w", sum.Pages+1, opts.Source, err)
		}
		var rec []Recovered
		if opts.DryRun {
			rec, err = s.missing(ctx, opts.Source, page.Events)
		} else {
			rec, err = s.store(ctx, page.Events, opts)
		}
		if err != nil {
			return sum, fmt.Errorf("store page %d of %s events: %w", sum.Pages+1, opts.Source, err)
		}
		sum.Pages++
		sum.Listed += len(page.Events) + len(page.Refused)
		sum.Stored += len(rec)
		sum.AlreadyStored += len(page.Events) - len(rec)
		sum.Refused += len(page.Refused)
		sum.Recovered = append(sum.Recovered, rec...)
		sum.Refusals = append(sum.Refusals, page.Refused...)
		for _, ev := range page.Events {
			if sum.Oldest.IsZero() || ev.Created.Before(sum.Oldest) {
				sum.Oldest = ev.Created
			}
		}
		if opts.Progress != nil {
			opts.Progress(sum)
		}
		if page.Next == "" {
			return sum, nil
		}
		// A server that hands back the cursor it was given would list the
		// same page forever.
		if page.Next == cursor {
			return sum, fmt.Errorf("list %s events: the API returned the same page twice (after %q)", opts.Source, cursor)
		}
		cursor = page.Next
	}
}

// store stores, in one transaction, the events of evs that the inbox
// lacks, each with its job and its audit row, and returns them.
func (s *Store) store(ctx context.Context, evs []Event, opts Options) ([]Recovered, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	// Key order, as the receiver's batches insert: two transactions taking
	// the same keys in opposite orders could deadlock.
	sorted := slices.SortedFunc(slices.Values(evs), func(a, b Event) int { return cmp.Compare(a.ID, b.ID) })
	var out []Recovered
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		out = out[:0]
		for _, ev := range sorted {
			st, err := ingest.Store(ctx, tx, s.river, inbox.NewEvent{
				Source: opts.Source, EventID: ev.ID, Type: ev.Type, APIVersion: ev.APIVersion, Payload: ev.Payload,
			})
			if err != nil {
				return err
			}
			if st.Outcome == ingest.Accepted {
				out = append(out, Recovered{EventID: ev.ID, Type: ev.Type, Created: ev.Created, InboxID: st.InboxID, JobID: st.JobID})
			}
		}
		return s.audit(ctx, tx, out, opts)
	})
	if err != nil {
		return nil, err
	}
	// Reported in the API's order, as a dry run reports them.
	pos := make(map[string]int, len(evs))
	for i, ev := range evs {
		if _, seen := pos[ev.ID]; !seen {
			pos[ev.ID] = i
		}
	}
	slices.SortFunc(out, func(a, b Recovered) int { return cmp.Compare(pos[a.EventID], pos[b.EventID]) })
	return out, nil
}

// audit writes a recovery_audit row for each of rec, in tx, and sets their
// AuditIDs.
func (s *Store) audit(ctx context.Context, tx pgx.Tx, rec []Recovered, opts Options) error {
	if len(rec) == 0 {
		return nil
	}
	inboxIDs, jobIDs, eventIDs := make([]int64, len(rec)), make([]int64, len(rec)), make([]string, len(rec))
	for i, r := range rec {
		inboxIDs[i], jobIDs[i], eventIDs[i] = r.InboxID, r.JobID, r.EventID
	}
	rows, err := tx.Query(ctx, `
		INSERT INTO recovery_audit (inbox_id, source, event_id, job_id, origin, recovered_by, reason)
		SELECT i, $4, e, j, $5, $6, $7
		FROM unnest($1::bigint[], $2::text[], $3::bigint[]) WITH ORDINALITY AS u(i, e, j, n)
		ORDER BY n
		RETURNING id`, inboxIDs, eventIDs, jobIDs, opts.Source, opts.Origin, opts.By, opts.Reason)
	if err != nil {
		return fmt.Errorf("write recovery audit of %d events: %w", len(rec), err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("write recovery audit of %d events: %w", len(rec), err)
	}
	if len(ids) != len(rec) {
		return fmt.Errorf("write recovery audit: %d rows for %d events", len(ids), len(rec))
	}
	// An identity column hands out ids in insertion order, which ORDER BY
	// n makes the order of rec.
	slices.Sort(ids)
	for i := range rec {
		rec[i].AuditID = ids[i]
	}
	return nil
}

// missing returns the events of evs that the inbox lacks, writing nothing.
func (s *Store) missing(ctx context.Context, source string, evs []Event) ([]Recovered, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	keys := make([]inbox.Key, len(evs))
	for i, ev := range evs {
		keys[i] = inbox.Key{Source: source, EventID: ev.ID}
	}
	found, err := existing(ctx, s.pool, keys)
	if err != nil {
		return nil, err
	}
	var out []Recovered
	seen := make(map[string]bool, len(evs))
	for _, ev := range evs {
		if !found[inbox.Key{Source: source, EventID: ev.ID}] && !seen[ev.ID] {
			seen[ev.ID] = true
			out = append(out, Recovered{EventID: ev.ID, Type: ev.Type, Created: ev.Created})
		}
	}
	return out, nil
}

// existing returns which of keys the inbox holds, for a dry run or for
// GitHub's failed deliveries: a read that writes nothing.
func existing(ctx context.Context, pool *pgxpool.Pool, keys []inbox.Key) (map[inbox.Key]bool, error) {
	var found map[inbox.Key]bool
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		found, err = inbox.Existing(ctx, tx, keys)
		return err
	})
	return found, err
}
