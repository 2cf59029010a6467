package dispatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/hookline/hookline/hooklinetype"
)

// StaleObserver is told of each event that an ordered handler completed as
// stale, once its transaction committed, for metrics.
type StaleObserver interface {
	ObserveStale(source, eventType string)
}

// objectKey is an object of a source.
type objectKey struct{ source, object string }

// mark is an object's high-water mark: the newest event applied for it.
type mark struct {
	time    time.Time
	eventID string
}

// after reports whether m is newer than (t, id), by the documented rule:
// time first, then the event id's bytes.
func (m mark) after(t time.Time, id string) bool {
	return cmp.Or(t.Compare(m.time), cmp.Compare(id, m.eventID)) < 0
}

// orderItem is a due event, whether a replay job claimed it, and, if the
// claim read it (known), its object's mark (nil: none).
type orderItem struct {
	ev     hooklinetype.Event
	replay bool
	known  bool
	mark   *mark
}

// sequence is what ordering decided for the events of one transaction.
type sequence struct {
	// order is the events' positions in the order their handlers run: as
	// given, except that each object's ordered events, in the positions
	// they held, are sorted by event time then id.
	order []int
	// stale[i] is the id of the newer applied event that makes event i
	// stale; "" if its handler runs.
	stale []string
	// marks are the objects' marks as the transaction leaves them, and
	// moved those it raised.
	marks map[objectKey]mark
	moved map[objectKey]int64 // -> inbox id of the event that set the mark
}

// ordered reports whether ev's handler is registered Ordered and ev has an
// object to order by.
func (w *Worker) ordered(ev hooklinetype.Event) bool {
	if ev.Object == "" {
		return false
	}
	_, opts, _ := w.mux.Route(ev.Source, ev.Type)
	return opts.Ordered
}

// sequence locks the objects of items' ordered events, reads their marks,
// and decides, in tx, which events run and in what order. Locks are taken
// in one global order (by lock key), so transactions that share objects
// wait for each other rather than deadlock; they are held until tx ends.
// Those in held, taken before (tryLockObjects), are not taken again.
func (w *Worker) sequence(ctx context.Context, tx pgx.Tx, items []orderItem, held map[int64]bool) (*sequence, error) {
	seq := &sequence{order: make([]int, len(items)), stale: make([]string, len(items))}
	for i := range items {
		seq.order[i] = i
	}
	byObject := map[objectKey][]int{}
	for i, it := range items {
		if w.ordered(it.ev) {
			k := objectKey{it.ev.Source, it.ev.Object}
			byObject[k] = append(byObject[k], i)
		}
	}
	if len(byObject) == 0 {
		return seq, nil
	}
	// A mark the claim read is current if the object's lock was held
	// before the claim's snapshot; any other is read after the locks.
	seq.marks, seq.moved = map[objectKey]mark{}, map[objectKey]int64{}
	var keys []objectKey
	locks := make([]int64, 0, len(byObject))
	for k, idx := range byObject {
		l := lockKey(k)
		if !held[l] {
			locks = append(locks, l)
		}
		if it := items[idx[0]]; held[l] && it.known {
			if it.mark != nil {
				seq.marks[k] = *it.mark
			}
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(locks)
	locks = slices.Compact(locks)
	// One statement, the locks in the array's order (a function scan
	// returns its rows in order and the select list is evaluated per row).
	if len(locks) > 0 {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k`, locks); err != nil {
			return nil, fmt.Errorf("lock %d objects: %w", len(locks), err)
		}
	}
	// A new statement, after the locks: it sees the marks that every
	// transaction that held them committed.
	if len(keys) > 0 {
		marks, err := readMarks(ctx, tx, keys)
		if err != nil {
			return nil, err
		}
		maps.Copy(seq.marks, marks)
	}
	for k, idx := range byObject {
		sorted := slices.Clone(idx)
		slices.SortFunc(sorted, func(a, b int) int {
			ea, eb := items[a].ev, items[b].ev
			return cmp.Or(ea.Time.Compare(eb.Time), cmp.Compare(ea.EventID, eb.EventID))
		})
		for j, pos := range idx { // idx is ascending: the positions the object held
			seq.order[pos] = sorted[j]
		}
		for _, i := range sorted {
			ev := items[i].ev
			m, seen := seq.marks[k]
			switch {
			case !seen || !m.after(ev.Time, ev.EventID):
				seq.marks[k] = mark{ev.Time, ev.EventID}
				seq.moved[k] = ev.InboxID
			case items[i].replay:
				// The operator asked for this event to be applied again:
				// its handler runs, and the mark keeps the newest.
				w.logger.Info("replaying an event older than the newest applied for its object; its ordered handler runs, as asked",
					"source", ev.Source, "event_id", ev.EventID, "object", ev.Object, "newest_event_id", m.eventID)
			default:
				seq.stale[i] = m.eventID
			}
		}
	}
	return seq, nil
}

// lockObject takes in tx, waiting, the lock of the object job names for an
// ordered handler (JobArgs.Object), and returns it as held; none for other
// jobs, whose lock, if any, sequence takes after the claim.
func (w *Worker) lockObject(ctx context.Context, tx pgx.Tx, job *river.Job[hooklinetype.JobArgs]) (map[int64]bool, error) {
	a := job.Args
	if a.Object == "" {
		return nil, nil
	}
	if _, opts, _ := w.mux.Route(a.Source, a.Type); !opts.Ordered {
		return nil, nil
	}
	l := lockKey(objectKey{a.Source, a.Object})
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, l); err != nil {
		return nil, fmt.Errorf("lock object %s of event %s/%s: %w", a.Object, a.Source, a.EventID, err)
	}
	return map[int64]bool{l: true}, nil
}

// tryLockObjects takes in tx, without waiting, the locks of the objects
// that jobs name for ordered handlers (JobArgs.Object), in one sorted
// statement. It returns the locks it holds, and the jobs (by index) whose
// object another transaction holds. Those are left out of a group and
// applied alone after it, where they wait for the lock: a group that
// waited instead would hold every other event's row and slot until the
// busy object's transaction ended, and groups sharing objects would run
// one after the other.
func (w *Worker) tryLockObjects(ctx context.Context, tx pgx.Tx, jobs []*river.Job[hooklinetype.JobArgs]) (held map[int64]bool, busy map[int]bool, err error) {
	byLock := map[int64][]int{}
	for i, j := range jobs {
		if j.Args.Object == "" {
			continue
		}
		if _, opts, _ := w.mux.Route(j.Args.Source, j.Args.Type); opts.Ordered {
			l := lockKey(objectKey{j.Args.Source, j.Args.Object})
			byLock[l] = append(byLock[l], i)
		}
	}
	if len(byLock) == 0 {
		return nil, nil, nil
	}
	locks := slices.Sorted(maps.Keys(byLock))
	rows, err := tx.Query(ctx, `SELECT k, pg_try_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k`, locks)
	if err != nil {
		return nil, nil, fmt.Errorf("try to lock %d objects: %w", len(locks), err)
	}
	held, busy = map[int64]bool{}, map[int]bool{}
	var l int64
	var got bool
	_, err = pgx.ForEachRow(rows, []any{&l, &got}, func() error {
		if got {
			held[l] = true
			return nil
		}
		for _, i := range byLock[l] {
			busy[i] = true
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("try to lock %d objects: %w", len(locks), err)
	}
	return held, busy, nil
}

// holdPoll is how long a held event's job sleeps before it looks again.
const holdPoll = time.Second

// hold returns how long to snooze job, whose handler asks to hold its
// events (HandlerOpts.HoldFor) while an older event of their object is
// stored and not applied: 0 to run it now. Jobs enqueued without the
// object in their args, and replays, are never held.
func (w *Worker) hold(ctx context.Context, job *river.Job[hooklinetype.JobArgs]) (time.Duration, error) {
	if job.Args.Object == "" || job.Args.Replay {
		return 0, nil
	}
	_, opts, _ := w.mux.Route(job.Args.Source, job.Args.Type)
	left := opts.HoldFor - time.Since(job.CreatedAt)
	if !opts.Ordered || opts.HoldFor <= 0 || left <= 0 {
		return 0, nil
	}
	// Through the inbox's (source, object_key) index. A pruned event
	// cannot be applied, so it is not waited for. The query takes a
	// transaction slot, so that held jobs, however many, use no more
	// connections than the handlers' budget.
	release, err := w.acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("wait for a connection to look for older events of event %d: %w", job.Args.InboxID, err)
	}
	defer release()
	var older string
	err = w.pool.QueryRow(ctx, `
		SELECT o.event_id FROM inbox_events e
		JOIN inbox_events o ON o.source = e.source AND o.object_key = e.object_key
		WHERE e.id = $1 AND o.id <> e.id AND o.processed_at IS NULL AND o.pruned_at IS NULL
		  AND (coalesce(o.event_time, o.received_at), o.event_id COLLATE "C")
		    < (coalesce(e.event_time, e.received_at), e.event_id COLLATE "C")
		LIMIT 1`, job.Args.InboxID).Scan(&older)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("look for older events of event %s/%s: %w", job.Args.Source, job.Args.EventID, err)
	}
	w.logger.Info("holding event: an older event of its object is not applied yet",
		"source", job.Args.Source, "event_id", job.Args.EventID, "object", job.Args.Object,
		"older_event_id", older, "hold_left", left.Round(time.Millisecond))
	return min(left, holdPoll), nil
}

// ObjectLock is the transaction-scoped advisory lock that an ordered
// handler's transaction holds on an object of a source while it runs: in
// pg_locks, locktype advisory with classid and objid the high and low
// halves of this number. It is a 64-bit hash of source and object; two
// objects that collide only wait for each other, as their marks are kept
// apart by their full keys.
func ObjectLock(source, object string) int64 { return lockKey(objectKey{source, object}) }

func lockKey(k objectKey) int64 {
	h := fnv.New64a()
	h.Write([]byte(k.source))
	h.Write([]byte{0})
	h.Write([]byte(k.object))
	return int64(h.Sum64())
}

func readMarks(ctx context.Context, tx pgx.Tx, keys []objectKey) (map[objectKey]mark, error) {
	sources, objects := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		sources[i], objects[i] = k.source, k.object
	}
	rows, err := tx.Query(ctx, `
		SELECT w.source, w.object_key, w.event_time, w.event_id
		FROM unnest($1::text[], $2::text[]) AS u(s, o)
		JOIN object_watermarks w ON w.source = u.s AND w.object_key = u.o`, sources, objects)
	if err != nil {
		return nil, fmt.Errorf("read the marks of %d objects: %w", len(keys), err)
	}
	marks := make(map[objectKey]mark, len(keys))
	var k objectKey
	var m mark
	_, err = pgx.ForEachRow(rows, []any{&k.source, &k.object, &m.time, &m.eventID}, func() error {
		marks[k] = m
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the marks of %d objects: %w", len(keys), err)
	}
	return marks, nil
}

// finish writes, in tx, the marks the events raised and the stale events'
// record, after their handlers ran.
func (seq *sequence) finish(ctx context.Context, tx pgx.Tx, items []orderItem) error {
	if len(seq.moved) > 0 {
		n := len(seq.moved)
		sources, objects, times, ids, inboxIDs := make([]string, 0, n), make([]string, 0, n), make([]time.Time, 0, n), make([]string, 0, n), make([]int64, 0, n)
		for k, inboxID := range seq.moved {
			m := seq.marks[k]
			sources, objects, times = append(sources, k.source), append(objects, k.object), append(times, m.time)
			ids, inboxIDs = append(ids, m.eventID), append(inboxIDs, inboxID)
		}
		// GREATEST-like: a mark only moves forward, whatever wrote it.
		_, err := tx.Exec(ctx, `
			INSERT INTO object_watermarks AS w (source, object_key, event_time, event_id, inbox_id)
			SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::bigint[])
			ON CONFLICT (source, object_key) DO UPDATE
			SET event_time = excluded.event_time, event_id = excluded.event_id, inbox_id = excluded.inbox_id, updated_at = now()
			WHERE (w.event_time, w.event_id COLLATE "C") < (excluded.event_time, excluded.event_id COLLATE "C")`,
			sources, objects, times, ids, inboxIDs)
		if err != nil {
			return fmt.Errorf("write the marks of %d objects: %w", n, err)
		}
	}
	var staleIDs []int64
	var newer []string
	for i, by := range seq.stale {
		if by != "" {
			staleIDs, newer = append(staleIDs, items[i].ev.InboxID), append(newer, by)
		}
	}
	if len(staleIDs) > 0 {
		_, err := tx.Exec(ctx, `UPDATE inbox_events e SET superseded_by = u.by
			FROM unnest($1::bigint[], $2::text[]) AS u(id, by) WHERE e.id = u.id`, staleIDs, newer)
		if err != nil {
			return fmt.Errorf("record %d stale events: %w", len(staleIDs), err)
		}
	}
	return nil
}

// logStale logs a stale event with the newer one that made it so; log
// already names the event (source, event_id) and its job.
func logStale(log *slog.Logger, ev hooklinetype.Event, newer string) {
	log.Info("stale event: a newer event of its object was already applied; completing without running its ordered handler",
		"type", ev.Type, "object", ev.Object, "event_time", ev.Time, "newer_event_id", newer)
}
