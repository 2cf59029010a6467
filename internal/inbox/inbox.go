// Package inbox stores received events in the inbox_events table, the
// idempotency record of everything Hookline has acknowledged.
//
// Functions take a pgx.Tx rather than a pool: an inbox write is only ever
// meaningful together with another write in the same transaction (the
// River job on the way in, the business effect on the way out).
package inbox

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/riverdb"
)

// ErrNotFound is returned when no event has the requested id.
var ErrNotFound = errors.New("inbox event not found")

// NewEvent is an event as the receiver accepts it.
type NewEvent struct {
	Source     string
	EventID    string
	Type       string
	APIVersion string // empty is stored as NULL
	Payload    []byte
	Headers    map[string]string
	// Time is the provider's event time, or the received time for a
	// source that has none (envelope.Envelope.ClampTime); zero is stored
	// as NULL, which reads as the received time.
	Time time.Time
	// Object is the key of the object the event is about; empty is stored
	// as NULL.
	Object string
	// ReplayKey, if set, must also be new for the source: a digest of the
	// body (and maybe the type), for sources whose signature does not
	// cover the id. See receiver.ReplayGuard.
	ReplayKey []byte
	// Release, if set, is called once by whoever stores the event, when it
	// holds Payload no longer: after the commit, or when it drops the
	// event. It may be after the store call returns (a batch goes on
	// holding the body of a caller who gave up). The receiver returns the
	// body's memory to its budget with it.
	Release func()
}

// Insert stores ev unless an event with the same source and id, or the
// same source and replay key, is already there. It returns the new row, with
// its id and the job id reserved for it (see InsertMany), and true, or a zero
// row and false for a duplicate. A duplicate costs an index probe per key
// and writes nothing.
//
// The conflict clause names no constraint, so that either unique key makes
// a duplicate: the primary key (source, event_id) and the partial index on
// (source, replay_key). Any unique index added to the inbox later would
// make duplicates too, silently: add one only with that in mind. Callers
// inserting an event with a replay key take LockReplayKeys first.
func Insert(ctx context.Context, tx pgx.Tx, ev NewEvent) (Inserted, bool, error) {
	row := Inserted{Key: Key{Source: ev.Source, EventID: ev.EventID}, Type: ev.Type, Object: ev.Object}
	err := tx.QueryRow(ctx, `
		INSERT INTO inbox_events (source, event_id, event_type, api_version, payload, headers, replay_key, event_time, object_key, job_id)
		VALUES ($1, $2, $3, NULLIF($4, ''), $5, $6, $7, $8, NULLIF($9, ''), nextval('`+riverdb.JobIDSequence+`'))
		ON CONFLICT DO NOTHING
		RETURNING id, job_id`,
		ev.Source, ev.EventID, ev.Type, ev.APIVersion, ev.Payload, headersJSON(ev.Headers), ev.ReplayKey, timeOrNull(ev.Time), ev.Object,
	).Scan(&row.ID, &row.JobID)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Inserted{}, false, nil
	case err != nil:
		return Inserted{}, false, fmt.Errorf("insert event %s/%s: %w", ev.Source, ev.EventID, err)
	}
	return row, true, nil
}

// SetJobs records, in tx, the River job enqueued for each new row: jobs[i]
// for the row ids[i], when the job did not take the id that Insert reserved
// for it (an enqueuer without ingest.JobIDs). Call it in the transaction
// that inserted the rows and their jobs. It costs a second write of each
// row, which the reserved id saves the receiver.
func SetJobs(ctx context.Context, tx pgx.Tx, ids, jobs []int64) error {
	if len(ids) != len(jobs) {
		return fmt.Errorf("set jobs of %d events: got %d job ids", len(ids), len(jobs))
	}
	if len(ids) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `
		UPDATE inbox_events e SET job_id = u.job
		FROM unnest($1::bigint[], $2::bigint[]) AS u(id, job)
		WHERE e.id = u.id`, ids, jobs)
	if err != nil {
		return fmt.Errorf("set jobs of %d events (first %d): %w", len(ids), ids[0], err)
	}
	return nil
}

// Claim asks to apply an event: the job that would apply it, and whether
// that job is a replay.
type Claim struct {
	InboxID, JobID int64
	Replay         bool
	// Mark asks for the high-water mark of the event's object as well
	// (object_watermarks), for an ordered handler whose caller already
	// holds the object's lock: the claim's snapshot then sees every mark
	// committed before, and saves the statement that would read it.
	Mark bool
}

// Claimed is an event ClaimMany claimed, and, if its claim asked, its
// object's mark: the newest applied event's time and id, nil if none.
type Claimed struct {
	hooklinetype.Event
	MarkTime    *time.Time
	MarkEventID *string
}

// ClaimMany marks, in tx, the claimed events that are due as applied by
// their claiming jobs, and returns those events; the handlers must then
// apply them in the same transaction. An event is due if it was never
// applied, or if a replay job claims it that has not applied it itself.
// Claims that are not due, or whose row is gone, are left out (see
// Existing to tell the two apart). Each event may be claimed once per call.
//
// One UPDATE both locks each due row and marks it: a second job for the
// same event, in another transaction, waits for the lock and then finds the
// row applied. Marking first costs nothing if a handler fails, since the
// whole transaction then rolls back, and halves the inbox's writes
// (a lock, then an update, each logged, cost twice one update).
func ClaimMany(ctx context.Context, tx pgx.Tx, claims []Claim) ([]Claimed, error) {
	n := len(claims)
	ids, jobs, replays, marks := make([]int64, n), make([]int64, n), make([]bool, n), make([]bool, n)
	for i, c := range claims {
		ids[i], jobs[i], replays[i], marks[i] = c.InboxID, c.JobID, c.Replay, c.Mark
	}
	// The columns follow hooklinetype.Event's fields, in order, then the
	// mark's; the mark is looked up only where asked (an index probe each).
	rows, err := tx.Query(ctx, `
		UPDATE inbox_events e SET processed_at = now(), processed_by_job = u.job, superseded_by = NULL
		FROM unnest($1::bigint[], $2::bigint[], $3::bool[], $4::bool[]) AS u(id, job, replay, mark)
		WHERE e.id = u.id AND (e.processed_at IS NULL OR (u.replay AND e.processed_by_job IS DISTINCT FROM u.job))
		RETURNING e.id, e.source, e.event_id, e.event_type, coalesce(e.api_version, ''), e.payload, e.headers, e.received_at,
			coalesce(e.object_key, ''), coalesce(e.event_time, e.received_at),
			CASE WHEN u.mark THEN (SELECT w.event_time FROM object_watermarks w WHERE w.source = e.source AND w.object_key = e.object_key) END,
			CASE WHEN u.mark THEN (SELECT w.event_id FROM object_watermarks w WHERE w.source = e.source AND w.object_key = e.object_key) END`,
		ids, jobs, replays, marks)
	if err != nil {
		return nil, fmt.Errorf("claim %d events: %w", len(claims), err)
	}
	evs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Claimed])
	if err != nil {
		return nil, fmt.Errorf("claim %d events: %w", len(claims), err)
	}
	return evs, nil
}

// timeOrNull stores a zero time as NULL.
func timeOrNull(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// headersJSON encodes h as the JSON object stored in inbox_events.headers,
// "{}" when there are none. Encoded here, as text, pgx sends a batch's
// headers as a text array rather than marshalling each map through its
// reflection-based array encoder.
func headersJSON(h map[string]string) string {
	if len(h) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(h) // a map of strings always encodes
	return string(b)
}

// Key identifies an event: the sender and the sender's event id.
type Key struct {
	Source  string
	EventID string
}

// Inserted is a row that Insert or InsertMany created.
type Inserted struct {
	ID int64
	Key
	Type string
	// Object is the event's object key, "" for none.
	Object string
	// JobID is the id reserved for the event's River job, from River's own
	// sequence, and stored as the row's job_id: hookctl events list and get
	// find an event's jobs by it, through river_job's primary key. The job
	// must be inserted with it (ingest.JobIDs), or the row updated with
	// SetJobs.
	JobID int64
}

// InsertMany stores every event of evs whose key is not yet in the inbox,
// in one statement, and returns the rows it created. Keys already present
// are skipped, as by Insert. The caller should pass keys in a consistent
// order (InsertMany does not sort): two transactions inserting overlapping
// keys in opposite orders could deadlock on the unique index.
//
// deliveries, if not nil, counts the requests per source that evs came
// from; the same statement records those that inserted no row as
// duplicates (see RecordDuplicates), which saves a batch a round trip.
func InsertMany(ctx context.Context, tx pgx.Tx, evs []NewEvent, deliveries map[string]int) ([]Inserted, error) {
	n := len(evs)
	sources, ids, types, versions := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	payloads, headers, replayKeys := make([][]byte, n), make([]string, n), make([][]byte, n)
	times, objects := make([]*time.Time, n), make([]string, n)
	for i, ev := range evs {
		sources[i], ids[i], types[i], versions[i] = ev.Source, ev.EventID, ev.Type, ev.APIVersion
		payloads[i], headers[i], replayKeys[i] = ev.Payload, headersJSON(ev.Headers), ev.ReplayKey
		times[i], objects[i] = timeOrNull(ev.Time), ev.Object
	}
	// As in Insert, either unique key makes a duplicate. Two rows of one
	// statement that share a key are fine with DO NOTHING: the second is
	// skipped.
	// A duplicate consumes a job id that no job will take: a gap in River's
	// sequence, which nothing relies on.
	deliverySources, deliveryCounts := make([]string, 0, len(deliveries)), make([]int32, 0, len(deliveries))
	for s, n := range deliveries {
		deliverySources, deliveryCounts = append(deliverySources, s), append(deliveryCounts, int32(n))
	}
	rows, err := tx.Query(ctx, `
		WITH inserted AS (
			INSERT INTO inbox_events (source, event_id, event_type, api_version, payload, headers, replay_key, event_time, object_key, job_id)
			SELECT s, e, t, NULLIF(v, ''), p, h, r, et, NULLIF(o, ''), nextval('`+riverdb.JobIDSequence+`')
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::jsonb[], $7::bytea[], $8::timestamptz[], $9::text[])
				AS u(s, e, t, v, p, h, r, et, o)
			ON CONFLICT DO NOTHING
			RETURNING id, source, event_id, event_type, coalesce(object_key, '') AS object_key, job_id
		), duplicates AS (
			INSERT INTO inbox_duplicates (source, count)
			SELECT d.s, d.n - c.inserted
			FROM unnest($10::text[], $11::int[]) AS d(s, n)
			CROSS JOIN LATERAL (SELECT count(*) AS inserted FROM inserted WHERE inserted.source = d.s) AS c
			WHERE d.n > c.inserted
		)
		SELECT id, source, event_id, event_type, object_key, job_id FROM inserted`,
		sources, ids, types, versions, payloads, headers, replayKeys, times, objects, deliverySources, deliveryCounts)
	if err != nil {
		return nil, fmt.Errorf("insert %d events: %w", n, err)
	}
	inserted, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Inserted, error) {
		var in Inserted
		err := row.Scan(&in.ID, &in.Source, &in.EventID, &in.Type, &in.Object, &in.JobID)
		return in, err
	})
	if err != nil {
		return nil, fmt.Errorf("insert %d events: %w", n, err)
	}
	return inserted, nil
}

// LockReplayKeys takes, in tx, a transaction-scoped advisory lock for each
// replay key of evs, in a fixed order, before their rows are inserted.
//
// An insert locks an entry in each unique index it touches: the primary
// key and the replay key. Sorting a batch by (source, event id) orders the
// first, not the second, so two batches whose replay keys come in opposite
// orders would deadlock (one captured delivery sent under new ids does it).
// With these locks taken first, in one order, a transaction that would
// touch another's replay key waits before it has inserted anything.
func LockReplayKeys(ctx context.Context, tx pgx.Tx, evs []NewEvent) error {
	var locks []int64
	for _, ev := range evs {
		if len(ev.ReplayKey) < 8 {
			continue
		}
		// The key is a SHA-256; its first 8 bytes, mixed with the source,
		// are as good a lock id as any. A collision only serialises two
		// unrelated batches.
		h := fnv.New64a()
		h.Write([]byte(ev.Source))
		locks = append(locks, int64(binary.BigEndian.Uint64(ev.ReplayKey)^h.Sum64()))
	}
	if len(locks) == 0 {
		return nil
	}
	slices.Sort(locks)
	locks = slices.Compact(locks)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k`, locks); err != nil {
		return fmt.Errorf("lock %d replay keys: %w", len(locks), err)
	}
	return nil
}

// ExistingIDs returns which of the row ids are in the inbox.
func ExistingIDs(ctx context.Context, tx pgx.Tx, ids []int64) (map[int64]bool, error) {
	rows, err := tx.Query(ctx, `SELECT id FROM inbox_events WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("look up %d events: %w", len(ids), err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("look up %d events: %w", len(ids), err)
	}
	out := make(map[int64]bool, len(found))
	for _, id := range found {
		out[id] = true
	}
	return out, nil
}

// Existing returns which of keys are in the inbox. After an insert skipped
// some events, it tells a duplicate id (the key is there) from a body
// stored before under another id (it is not: the replay key conflicted).
func Existing(ctx context.Context, tx pgx.Tx, keys []Key) (map[Key]bool, error) {
	sources, ids := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		sources[i], ids[i] = k.Source, k.EventID
	}
	rows, err := tx.Query(ctx, `
		SELECT u.s, u.e FROM unnest($1::text[], $2::text[]) AS u(s, e)
		WHERE EXISTS (SELECT 1 FROM inbox_events i WHERE i.source = u.s AND i.event_id = u.e)`, sources, ids)
	if err != nil {
		return nil, fmt.Errorf("look up %d events: %w", len(keys), err)
	}
	found, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Key, error) {
		var k Key
		err := row.Scan(&k.Source, &k.EventID)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("look up %d events: %w", len(keys), err)
	}
	out := make(map[Key]bool, len(found))
	for _, k := range found {
		out[k] = true
	}
	return out, nil
}

// RecordDuplicates counts duplicate deliveries per source, in tx, so that
// they roll back with it. It writes nothing when counts is empty.
func RecordDuplicates(ctx context.Context, tx pgx.Tx, counts map[string]int) error {
	if len(counts) == 0 {
		return nil
	}
	sources, ns := make([]string, 0, len(counts)), make([]int32, 0, len(counts))
	for s, n := range counts {
		sources, ns = append(sources, s), append(ns, int32(n))
	}
	_, err := tx.Exec(ctx, `INSERT INTO inbox_duplicates (source, count) SELECT * FROM unnest($1::text[], $2::int[])`, sources, ns)
	if err != nil {
		return fmt.Errorf("record %d sources' duplicates: %w", len(counts), err)
	}
	return nil
}
