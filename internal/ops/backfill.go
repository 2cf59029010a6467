package ops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hookline/hookline/internal/inbox"
)

// DefaultBackfillBatch is the rows BackfillReplayKeys keys per transaction
// by default.
const DefaultBackfillBatch = 1000

// MaxSharedBodyExamples is how many rows sharing a body with another row a
// BackfillResult lists; it counts them all.
const MaxSharedBodyExamples = 20

// backfillAttempts bounds the tries of one batch that lost a race with a
// receiver. Each retry re-reads the batch, so one that fails this often is
// failing for another reason.
const backfillAttempts = 5

// BackfillOpts configures BackfillReplayKeys.
type BackfillOpts struct {
	// Source is the source whose rows get keys.
	Source string
	// WithType keys the type and the body (receiver.GuardBodyAndType)
	// rather than the body alone (receiver.GuardBody). It must match the
	// source's guard, or the keys will never meet the receiver's.
	WithType bool
	// Rekey also replaces keys that are not the guard's: those stored while
	// the source had the other guard (body before body_and_type, or the
	// reverse). It hashes every unpruned payload of the source, where a
	// plain run hashes only those without a key.
	Rekey bool
	// BatchSize is the rows keyed per transaction; DefaultBackfillBatch if
	// zero.
	BatchSize int
	// DryRun counts what would change, and changes nothing.
	DryRun bool
	// Progress, if set, is called with the totals so far after each
	// committed batch.
	Progress func(BackfillResult)
}

// Validate reports whether the options are usable.
func (o BackfillOpts) Validate() error {
	if o.Source == "" {
		return errors.New("a source is required")
	}
	if o.BatchSize < 0 {
		return fmt.Errorf("batch size must be positive, not %d", o.BatchSize)
	}
	return nil
}

// guard names the key space as the sources file does.
func (o BackfillOpts) guard() string {
	if o.WithType {
		return "body_and_type"
	}
	return "body"
}

// BackfillResult reports what BackfillReplayKeys did, or would do in a dry
// run, for one source.
type BackfillResult struct {
	Source string `json:"source"`
	// Guard is body or body_and_type: the key space filled.
	Guard  string `json:"guard"`
	DryRun bool   `json:"dry_run"`
	// Rekey is BackfillOpts.Rekey.
	Rekey bool `json:"rekey"`
	// Keyed counts the rows given a key. Rekeyed counts those of them whose
	// key, made under another guard, was replaced (only with Rekey).
	Keyed   int64 `json:"keyed"`
	Rekeyed int64 `json:"rekeyed"`
	// SharedBody counts the rows left without the guard's key because
	// another row of the source holds it: an older row with the same body
	// (and type), or a newer one the receiver stored with its key. Either
	// the provider sent one body twice, or a captured delivery was sent
	// again under a new id and applied again before the guard existed.
	// A later run reports them again; nothing here changes them.
	SharedBody int64 `json:"shared_body"`
	// SharedBodyExamples are the first MaxSharedBodyExamples of them, in
	// id order.
	SharedBodyExamples []SharedBody `json:"shared_body_examples"`
	// SkippedPruned counts the rows that have no key (or, with Rekey, any
	// key) and whose payload was pruned: an empty body has nothing to key.
	SkippedPruned int64 `json:"skipped_pruned"`
	// Retries counts batches tried again after a receiver stored the same
	// key first, or a deadlock.
	Retries int `json:"retries"`
}

// SharedBody is a row left without a key, and the row that holds it.
type SharedBody struct {
	ID         int64     `json:"id"`
	EventID    string    `json:"event_id"`
	ReceivedAt time.Time `json:"received_at"`
	// HeldBy is the row that holds the key.
	HeldByID         int64     `json:"held_by_id"`
	HeldByEventID    string    `json:"held_by_event_id"`
	HeldByReceivedAt time.Time `json:"held_by_received_at"`
}

// add counts one row that shares its body with the holder.
func (r *BackfillResult) add(s SharedBody) {
	r.SharedBody++
	if len(r.SharedBodyExamples) < MaxSharedBodyExamples {
		r.SharedBodyExamples = append(r.SharedBodyExamples, s)
	}
}

// replayKeyExpr is the SQL of receiver.ReplayGuard's key for the inbox row
// aliased e: sha256 of the body, or of the type, a NUL and the body when
// withTypeParam (a boolean placeholder) is true. The receiver hashes the
// type's UTF-8 bytes; convert_to yields them whatever the database's
// encoding. The payload is hashed where it lies and never sent.
func replayKeyExpr(withTypeParam string) string {
	return `sha256(CASE WHEN ` + withTypeParam + ` THEN convert_to(e.event_type, 'UTF8') || '\x00'::bytea ELSE '\x'::bytea END || e.payload)`
}

// candidates returns the FROM and WHERE of the rows of source $1 that need
// the guard's key (withTypeParam as in replayKeyExpr), each with its key as
// k.key. The lateral subquery's OFFSET 0 keeps Postgres from inlining it,
// so each payload is hashed once. Without rekey, the filter on a NULL key
// is applied by the scan, before any hashing.
func candidates(withTypeParam string, rekey bool) string {
	need := `e.replay_key IS NULL`
	if rekey {
		need = `e.replay_key IS DISTINCT FROM k.key`
	}
	return `FROM inbox_events e
		CROSS JOIN LATERAL (SELECT ` + replayKeyExpr(withTypeParam) + ` AS key OFFSET 0) k
		WHERE e.source = $1 AND e.pruned_at IS NULL AND ` + need
}

// BackfillReplayKeys gives a replay key to the stored events of a guarded
// source that lack the one the receiver now computes: events received
// before the guard existed, or under another guard. Without it, a delivery
// captured before then could be sent once more under a new id and be
// stored again.
//
// Keys are computed in SQL, as the receiver computes them in Go. The inbox
// allows one row per (source, key): when rows share a body, the oldest gets
// the key and the others are counted and listed in SharedBody, as is a row
// whose key a newer row already holds. Pruned rows are skipped: their
// payload is empty.
//
// It walks the source's rows in id order, in batches of BatchSize, each in
// its own transaction, so it can run while receivers store new events. A
// batch locks its rows in id order, as workers do, then takes the
// receivers' advisory locks on its keys (inbox.LockReplayKeys) before it
// looks for rows holding them: a receiver storing one of those keys has
// then committed, or waits for the batch. A batch that loses a race anyway
// (a unique violation, or a deadlock) is tried again.
//
// Events stored without a key while it runs, by a receiver that predates
// the guard, may be missed: run it once every receiver has the guard.
func (c *Client) BackfillReplayKeys(ctx context.Context, opts BackfillOpts) (BackfillResult, error) {
	if err := opts.Validate(); err != nil {
		return BackfillResult{}, fmt.Errorf("backfill replay keys: %w", err)
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultBackfillBatch
	}
	res := BackfillResult{Source: opts.Source, Guard: opts.guard(), DryRun: opts.DryRun, Rekey: opts.Rekey, SharedBodyExamples: []SharedBody{}}
	describe := fmt.Sprintf("backfill %s replay keys of source %q", res.Guard, opts.Source)

	err := c.pool.QueryRow(ctx, `
		SELECT count(*) FROM inbox_events
		WHERE source = $1 AND pruned_at IS NOT NULL AND (replay_key IS NULL OR $2)`,
		opts.Source, opts.Rekey).Scan(&res.SkippedPruned)
	if err != nil {
		return res, fmt.Errorf("%s: count pruned rows: %w", describe, err)
	}
	if opts.DryRun {
		if err := c.backfillDryRun(ctx, opts, &res); err != nil {
			return res, fmt.Errorf("%s (dry run): %w", describe, err)
		}
		return res, nil
	}

	var after int64
	for {
		var b keyBatch
		for attempt := 1; ; attempt++ {
			b, err = c.backfillBatch(ctx, opts, after)
			if err == nil || attempt == backfillAttempts || !raced(err) {
				break
			}
			res.Retries++
			select {
			case <-ctx.Done():
				return res, fmt.Errorf("%s: rows after id %d: %w", describe, after, ctx.Err())
			case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
			}
		}
		if err != nil {
			return res, fmt.Errorf("%s: %w", describe, err)
		}
		// A batch may hold fewer rows than asked while more remain (a
		// row pruned while the batch waited for its lock drops out), so
		// only an empty batch ends the walk.
		if b.locked == 0 {
			return res, nil
		}
		res.Keyed += b.keyed
		res.Rekeyed += b.rekeyed
		for _, s := range b.shared {
			res.add(s)
		}
		after = b.last
		if opts.Progress != nil {
			opts.Progress(res)
		}
	}
}

// raced reports whether err is a race that a new try of the batch can
// win: a receiver committed the key between the batch's check and its
// update (a receiver without the advisory locks), or a deadlock.
func raced(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == pgerrcode.UniqueViolation || pgErr.Code == pgerrcode.DeadlockDetected)
}

// keyBatch is what one batch did.
type keyBatch struct {
	locked         int
	last           int64
	keyed, rekeyed int64
	shared         []SharedBody
}

// keyRow is a row of a batch and the key it needs.
type keyRow struct {
	id         int64
	eventID    string
	receivedAt time.Time
	hadKey     bool
	key        []byte
}

// backfillBatch keys, in one transaction, the next BatchSize rows after
// id after that need a key.
func (c *Client) backfillBatch(ctx context.Context, opts BackfillOpts, after int64) (keyBatch, error) {
	var b keyBatch
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		b = keyBatch{}
		rows, err := tx.Query(ctx, `
			SELECT e.id, e.event_id, e.received_at, e.replay_key IS NOT NULL, k.key
			`+candidates("$4", opts.Rekey)+` AND e.id > $2
			ORDER BY e.id LIMIT $3
			FOR UPDATE OF e`, opts.Source, after, opts.BatchSize, opts.WithType)
		if err != nil {
			return fmt.Errorf("lock rows after id %d: %w", after, err)
		}
		batch, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (keyRow, error) {
			var r keyRow
			err := row.Scan(&r.id, &r.eventID, &r.receivedAt, &r.hadKey, &r.key)
			return r, err
		})
		if err != nil {
			return fmt.Errorf("lock rows after id %d: %w", after, err)
		}
		if b.locked = len(batch); b.locked == 0 {
			return nil
		}
		b.last = batch[len(batch)-1].id
		span := fmt.Sprintf("rows %d to %d", batch[0].id, b.last)

		// The first row of each key in the batch, the oldest, may take
		// it; the others share its body.
		first := map[string]int{}
		var firsts []int
		for i, r := range batch {
			if _, ok := first[string(r.key)]; !ok {
				first[string(r.key)] = i
				firsts = append(firsts, i)
			}
		}
		lock := make([]inbox.NewEvent, len(firsts))
		keys, ids := make([][]byte, len(firsts)), make([]int64, len(firsts))
		for j, i := range firsts {
			lock[j] = inbox.NewEvent{Source: opts.Source, ReplayKey: batch[i].key}
			keys[j], ids[j] = batch[i].key, batch[i].id
		}
		if err := inbox.LockReplayKeys(ctx, tx, lock); err != nil {
			return fmt.Errorf("%s: %w", span, err)
		}

		// Rows that already hold a key: from an earlier batch, or stored
		// by a receiver. A new statement, so it sees every receiver that
		// committed before the locks were granted.
		rows, err = tx.Query(ctx, `
			SELECT u.key, h.id, h.event_id, h.received_at
			FROM unnest($2::bytea[], $3::bigint[]) AS u(key, row_id)
			JOIN inbox_events h ON h.source = $1 AND h.replay_key = u.key AND h.id <> u.row_id`,
			opts.Source, keys, ids)
		if err != nil {
			return fmt.Errorf("%s: look up rows holding their keys: %w", span, err)
		}
		holders := map[string]SharedBody{}
		var key []byte
		var h SharedBody
		_, err = pgx.ForEachRow(rows, []any{&key, &h.HeldByID, &h.HeldByEventID, &h.HeldByReceivedAt}, func() error {
			holders[string(key)] = h
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s: look up rows holding their keys: %w", span, err)
		}

		var setIDs []int64
		var setKeys [][]byte
		for i, r := range batch {
			h, held := holders[string(r.key)]
			if !held && first[string(r.key)] == i {
				setIDs, setKeys = append(setIDs, r.id), append(setKeys, r.key)
				if r.hadKey {
					b.rekeyed++
				}
				continue
			}
			if !held {
				f := batch[first[string(r.key)]]
				h = SharedBody{HeldByID: f.id, HeldByEventID: f.eventID, HeldByReceivedAt: f.receivedAt}
			}
			h.ID, h.EventID, h.ReceivedAt = r.id, r.eventID, r.receivedAt
			b.shared = append(b.shared, h)
		}
		if len(setIDs) == 0 {
			return nil
		}
		tag, err := tx.Exec(ctx, `
			UPDATE inbox_events e SET replay_key = u.key
			FROM unnest($1::bigint[], $2::bytea[]) AS u(id, key)
			WHERE e.id = u.id`, setIDs, setKeys)
		if err != nil {
			return fmt.Errorf("%s: set %d keys: %w", span, len(setIDs), err)
		}
		b.keyed = tag.RowsAffected()
		return nil
	})
	return b, err
}

// backfillDryRun counts, in one read-only statement, what the batches would
// do. Batches see the keys earlier batches set; this sees none, so it
// ranks the rows sharing a key itself, oldest first.
func (c *Client) backfillDryRun(ctx context.Context, opts BackfillOpts, res *BackfillResult) error {
	return c.readTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			WITH c AS MATERIALIZED (
				SELECT e.id, e.event_id, e.received_at, e.replay_key IS NOT NULL AS had_key, k.key
				`+candidates("$2", opts.Rekey)+`
			), r AS MATERIALIZED (
				SELECT c.id, c.event_id, c.received_at, c.had_key,
				       h.id IS NULL AND c.id = first_value(c.id) OVER w AS keyed,
				       coalesce(h.id, first_value(c.id) OVER w) AS held_by_id,
				       coalesce(h.event_id, first_value(c.event_id) OVER w) AS held_by_event_id,
				       coalesce(h.received_at, first_value(c.received_at) OVER w) AS held_by_received_at
				FROM c LEFT JOIN inbox_events h ON h.source = $1 AND h.replay_key = c.key AND h.id <> c.id
				WINDOW w AS (PARTITION BY c.key ORDER BY c.id)
			), n AS (
				SELECT count(*) FILTER (WHERE keyed) AS keyed,
				       count(*) FILTER (WHERE keyed AND had_key) AS rekeyed,
				       count(*) FILTER (WHERE NOT keyed) AS shared
				FROM r
			)
			SELECT n.keyed, n.rekeyed, n.shared,
			       s.id, s.event_id, s.received_at, s.held_by_id, s.held_by_event_id, s.held_by_received_at
			FROM n LEFT JOIN LATERAL (
				SELECT * FROM r WHERE NOT keyed ORDER BY id LIMIT $3
			) s ON true
			ORDER BY s.id`, opts.Source, opts.WithType, MaxSharedBodyExamples)
		if err != nil {
			return fmt.Errorf("count rows needing keys: %w", err)
		}
		var (
			id, heldByID           *int64
			eventID, heldByEventID *string
			receivedAt, heldByAt   *time.Time
		)
		_, err = pgx.ForEachRow(rows, []any{&res.Keyed, &res.Rekeyed, &res.SharedBody,
			&id, &eventID, &receivedAt, &heldByID, &heldByEventID, &heldByAt}, func() error {
			if id != nil {
				res.SharedBodyExamples = append(res.SharedBodyExamples, SharedBody{
					ID: *id, EventID: *eventID, ReceivedAt: *receivedAt,
					HeldByID: *heldByID, HeldByEventID: *heldByEventID, HeldByReceivedAt: *heldByAt,
				})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("count rows needing keys: %w", err)
		}
		return nil
	})
}
